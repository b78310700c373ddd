package server

import (
	"crypto/sha256"
	"crypto/subtle"
	"sync/atomic"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// room is one call room of this server (spec/12-calls.md section 12.3): its
// member connections and linked domains. Its fields are guarded by
// relay.mu, except view, which forwarding reads without it.
type room struct {
	id       [wire.RoomIDLen]byte
	handle   uint32
	verifier [sha256.Size]byte
	// token is kept for fed-call-join to the domains call-join names; it
	// never reaches a log or an error.
	token   []byte
	created time.Time
	members map[*conn]*membership
	// accounts counts the member connections of each account.
	accounts map[string]int
	// links are the linked domains with their handles of the room;
	// pending the domains being linked.
	links   map[string]*roomLink
	pending map[string]bool
	// idle closes the room once it has had no member for the idle time.
	idle *time.Timer
	// done is closed when the room closes.
	done   chan struct{}
	closed bool
	peak   int // most members at once, for the closing log line

	view      atomic.Pointer[roomView]
	forwarded atomic.Uint64
}

// roomLink is a linked domain of a room.
type roomLink struct {
	handle uint32 // the domain's handle of the room
	// inbound is set when the domain linked itself with fed-call-join;
	// such links count against its rooms (Limits.MaxCallPeerRooms).
	inbound bool
}

// roomView is what forwarding needs of a room, replaced whole on every
// change.
type roomView struct {
	members []*conn
	links   []viewLink
	pending int // domains named by call-join and not linked yet
}

type viewLink struct {
	domain string
	handle uint32
}

// membership is a connection's place in a room, with its send budgets in
// it. The budgets are used only by the connection's datagram reader.
type membership struct {
	room            *room
	account         string
	frames, packets tokenBucket
}

// newRoom opens a room. r.mu is held.
func (r *relay) newRoom(id [wire.RoomIDLen]byte, token []byte) *room {
	rm := &room{
		id: id, handle: r.newHandle(), verifier: verifier(token), token: append([]byte(nil), token...),
		created: time.Now(), members: make(map[*conn]*membership), accounts: make(map[string]int),
		links: make(map[string]*roomLink), pending: make(map[string]bool), done: make(chan struct{}),
	}
	rm.view.Store(&roomView{})
	r.rooms[rm.handle] = rm
	r.byID[id] = rm
	r.openRooms.Add(1)
	return rm
}

// refresh publishes the room's current members and links to forwarding.
// r.mu is held.
func (rm *room) refresh() {
	v := &roomView{pending: len(rm.pending)}
	for c := range rm.members {
		v.members = append(v.members, c)
	}
	for d, l := range rm.links {
		v.links = append(v.links, viewLink{domain: d, handle: l.handle})
	}
	rm.view.Store(v)
}

// matches reports in constant time whether token is the room's.
func (rm *room) matches(token []byte) bool {
	v := verifier(token)
	return subtle.ConstantTimeCompare(v[:], rm.verifier[:]) == 1
}

// join admits c, authenticated as a device of account, to the room of req
// (spec/12-calls.md section 12.3) and starts linking the domains it names.
func (r *relay) join(c *conn, account string, req *wire.CallJoin) (uint32, error) {
	var id [wire.RoomIDLen]byte
	copy(id[:], req.Room)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return 0, wire.Errorf(wire.CodeUnavailable, "server shutting down")
	}
	if c.callsEnded {
		// The connection closed while this request was in flight: a
		// member that no one will ever take out would keep the room open
		// and count against the account's rooms.
		return 0, wire.Errorf(wire.CodeUnavailable, "the connection is closing")
	}
	rm := r.byID[id]
	if rm != nil {
		if !rm.matches(req.Token) {
			return 0, wire.Errorf(wire.CodeRoomDenied, "the room token does not match")
		}
		if _, in := rm.members[c]; in {
			return rm.handle, nil
		}
		if len(rm.members) >= r.lim.MaxCallMembers {
			return 0, wire.Errorf(wire.CodeCallFull, "the room holds %d devices of this server, the most it admits", len(rm.members))
		}
	}
	if (rm == nil || rm.accounts[account] == 0) && r.lim.MaxCallRooms > 0 && r.accountRooms[account] >= r.lim.MaxCallRooms {
		return 0, wire.Errorf(wire.CodeLimitExceeded, "the account's devices are in %d call rooms, the most allowed", r.accountRooms[account])
	}
	if rm == nil {
		rm = r.newRoom(id, req.Token)
	}
	c.startCallSender(r)
	m := &membership{room: rm, account: account,
		frames: newTokenBucket(r.lim.CallFrameRate), packets: newTokenBucket(r.lim.CallPacketRate)}
	rm.members[c] = m
	rm.peak = max(rm.peak, len(rm.members))
	if rm.accounts[account]++; rm.accounts[account] == 1 {
		r.accountRooms[account]++
	}
	c.callMu.Lock()
	if c.calls == nil {
		c.calls = make(map[uint32]*membership)
	}
	c.calls[rm.handle] = m
	c.callMu.Unlock()
	r.joined.Add(1)
	if rm.idle != nil {
		rm.idle.Stop()
		rm.idle = nil
	}
	for _, d := range req.Domains {
		if d == r.s.cfg.Domain || rm.links[d] != nil || rm.pending[d] {
			continue
		}
		if len(rm.links)+len(rm.pending) >= wire.MaxCallDomains {
			// A room's domains are those of one group: members that
			// leave and join again naming new domains each time get no
			// more link goroutines, each retrying for as long as the room
			// has members, nor more copies of every packet.
			break
		}
		rm.pending[d] = true
		r.links.Add(1)
		go r.link(rm, d)
	}
	rm.refresh()
	return rm.handle, nil
}

// leave takes c out of the room of handle, if it is in it.
func (r *relay) leave(c *conn, handle uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.callMu.Lock()
	m := c.calls[handle]
	delete(c.calls, handle)
	c.callMu.Unlock()
	if m != nil {
		r.removeMember(m.room, c, m)
	}
}

// leaveAll takes c out of every room, when it closes.
func (r *relay) leaveAll(c *conn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	c.callMu.Lock()
	ms := c.calls
	c.calls = nil
	c.callMu.Unlock()
	c.callsEnded = true
	for _, m := range ms {
		r.removeMember(m.room, c, m)
	}
}

// removeMember removes c from rm and closes rm, or starts its idle timer,
// when it has no member left. r.mu is held.
func (r *relay) removeMember(rm *room, c *conn, m *membership) {
	if rm.members[c] != m {
		return
	}
	delete(rm.members, c)
	r.joined.Add(-1)
	if rm.accounts[m.account]--; rm.accounts[m.account] <= 0 {
		delete(rm.accounts, m.account)
		if r.accountRooms[m.account]--; r.accountRooms[m.account] <= 0 {
			delete(r.accountRooms, m.account)
		}
	}
	rm.refresh()
	r.checkEmpty(rm)
}

// checkEmpty closes a room with neither members nor linked domains, and
// starts the idle timer of one with links but no members. r.mu is held.
func (r *relay) checkEmpty(rm *room) {
	if rm.closed || len(rm.members) > 0 {
		return
	}
	if len(rm.links) == 0 {
		r.close(rm, "empty")
		return
	}
	if rm.idle != nil || r.stopped {
		return
	}
	var t *time.Timer
	t = time.AfterFunc(r.lim.CallRoomIdle, func() {
		r.mu.Lock()
		defer r.mu.Unlock()
		if rm.idle == t && !rm.closed && len(rm.members) == 0 {
			r.close(rm, "idle")
		}
	})
	rm.idle = t
}

// close closes rm and unlinks it from its linked domains with
// fed-call-leave, in the background. r.mu is held.
func (r *relay) close(rm *room, reason string) {
	rm.closed = true
	close(rm.done)
	if rm.idle != nil {
		rm.idle.Stop()
		rm.idle = nil
	}
	delete(r.rooms, rm.handle)
	delete(r.byID, rm.id)
	r.openRooms.Add(-1)
	for d, l := range rm.links {
		if l.inbound {
			r.unlinkPeer(d)
		}
		r.sendLeave(d, l.handle)
	}
	r.log.Info("call room closed", "handle", rm.handle, "reason", reason,
		"lasted", time.Since(rm.created).Round(time.Millisecond), "peak_members", rm.peak,
		"linked_domains", len(rm.links), "forwarded", rm.forwarded.Load())
	rm.links = nil
	rm.view.Store(&roomView{})
}

// unlinkPeer counts one room fewer linked by domain. r.mu is held.
func (r *relay) unlinkPeer(domain string) {
	if r.peerRooms[domain]--; r.peerRooms[domain] <= 0 {
		delete(r.peerRooms, domain)
	}
}

// peerJoin links origin to the room id (fed-call-join, section 12.4).
func (r *relay) peerJoin(origin string, room, token []byte, originHandle uint32) (uint32, error) {
	var id [wire.RoomIDLen]byte
	copy(id[:], room)
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.stopped {
		return 0, wire.Errorf(wire.CodeUnavailable, "server shutting down")
	}
	rm := r.byID[id]
	if rm != nil && !rm.matches(token) {
		return 0, wire.Errorf(wire.CodeRoomDenied, "the room token does not match")
	}
	var l *roomLink
	if rm != nil {
		l = rm.links[origin]
	}
	if (l == nil || !l.inbound) && r.lim.MaxCallPeerRooms > 0 && r.peerRooms[origin] >= r.lim.MaxCallPeerRooms {
		return 0, wire.Errorf(wire.CodeLimitExceeded, "%s has linked %d call rooms here, the most allowed", origin, r.peerRooms[origin])
	}
	if rm == nil {
		rm = r.newRoom(id, token)
	}
	if l == nil {
		l = &roomLink{}
		rm.links[origin] = l
	}
	l.handle = originHandle
	if !l.inbound {
		l.inbound = true
		r.peerRooms[origin]++
	}
	rm.refresh()
	// A room a peer created waits for its members for the idle time.
	r.checkEmpty(rm)
	return rm.handle, nil
}

// peerLeave unlinks origin from the room of handle (fed-call-leave).
func (r *relay) peerLeave(origin string, handle uint32) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rm := r.rooms[handle]
	if rm == nil {
		return
	}
	l := rm.links[origin]
	if l == nil {
		return
	}
	delete(rm.links, origin)
	if l.inbound {
		r.unlinkPeer(origin)
	}
	rm.refresh()
	if len(rm.members) == 0 && len(rm.links) == 0 {
		r.close(rm, "unlinked")
	}
}
