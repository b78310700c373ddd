package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// callsTests are the tests of section 12, voice and video calls: rooms on
// the server (call-join, call-leave), their links with the peer's rooms
// (fed-call-join, fed-call-leave, with the suite as the peer) and the
// forwarding of media packets in QUIC DATAGRAMs. The suite's connections
// announce max_datagram_frame_size; it sends packets of random bytes, since
// a relay does not read past the 14-byte header.
var callsTests = []*Test{
	{ID: "12.3/1", Level: MUST, Summary: "call-join on an unauthenticated connection is unauthenticated; on a server that does not relay calls, unknown_request",
		Cite: "The server MUST refuse a call-join on an unauthenticated connection with unauthenticated, and MUST answer it with unknown_request when it does not relay calls (server-info key 16 absent).",
		run:  test12_3_1_JoinUnauthenticated},
	{ID: "12.3/2", Level: MUST, Summary: "call-join with another token than the room's is room_denied, and the denied connection's packets are not forwarded",
		Cite: "When it has one, it compares the SHA-256 of the presented token with the verifier in constant time and MUST refuse a mismatch with room_denied (35), admitting nothing.",
		run:  test12_3_2_RoomDenied},
	{ID: "12.3/3", Level: MUST, Summary: "call-join to a room holding the announced number of devices is call_full; a device already in it keeps its handle",
		Cite: "A room already holding the announced number of devices (server-info key 16) is refused with call_full (36)",
		run:  test12_3_3_CallFull},
	{ID: "12.3/4", Level: MUST, Summary: "call-join past the announced rooms per account is limit_exceeded; a room already joined answers its handle; leaving or closing frees a place",
		Cite: "an account whose devices are in the announced number of rooms (key 17) is refused with limit_exceeded ... Joining a room the connection is already in answers the same handle and changes nothing.",
		run:  test12_3_4_RoomsPerAccount},
	{ID: "12.3/5", Level: MUST, Summary: "members of one room get one handle; rooms get distinct handles, not near one another",
		Cite: "the server MUST NOT give the same handle to another room while a member or linked domain may still use it, and MUST choose handles so that knowing one's own does not tell another room's",
		run:  test12_3_5_Handles},
	{ID: "12.3/6", Level: MUST, Summary: "call-join naming the peer's domain answers at once, then sends fed-call-join with the room, token and handle; members' packets reach the peer",
		Cite: "For each domain of key 3 other than its own that the room has not linked, the server links the room with that domain by fed-call-join (section 12.4), after answering and without delaying the answer.",
		run:  test12_3_6_LinksDomains, Needs: []Need{NeedPeer}},
	{ID: "12.4/1", Level: MUST, Summary: "fed-call-join from the peer links the room: the server's handle answered, packets both ways, a later origin handle replaces the first",
		Cite: "record the origin as a linked domain of the room with the origin's handle, replacing an earlier handle of the same origin, and answer fed-call-join-ok with its own handle of the room",
		run:  test12_4_1_FedJoin, Needs: []Need{NeedPeer}},
	{ID: "12.4/2", Level: MUST, Summary: "fed-call-join with another token than the room's is room_denied, and the peer's packets are not forwarded",
		Cite: "create the room when it has none of that identifier (with the token's verifier, no members and no linked domain), or refuse a token that does not match the room's verifier with room_denied",
		run:  test12_4_2_FedRoomDenied, Needs: []Need{NeedPeer}},
	{ID: "12.5/1", Level: MUST, Summary: "a member's packets reach every other member unchanged (15 and 1,200 bytes, fragments) and never the sender",
		Cite: "to every other member connection of the room, unchanged (its handle is already the one those devices know), and never back to the sender",
		run:  test12_5_1_ForwardToMembers},
	{ID: "12.5/2", Level: MUST, Summary: "a member's packets reach the linked peer with the peer's handle; the peer's reach members only, not the peer again",
		Cite: "when it came from one of its members, to every linked domain, with the handle replaced by that domain's handle of the room; a packet that came from a linked domain is forwarded to members only, never to another domain",
		run:  test12_5_2_ForwardToDomains, Needs: []Need{NeedPeer}},
	{ID: "12.5/3", Level: MUST, Summary: "packets that do not parse (under 15 bytes, count 0 or above 111, index not below count) are dropped",
		Cite: "A server MUST drop, and count by reason, a packet that does not parse (fewer than 15 bytes, a count of 0 or above 111, an index not below the count)",
		run:  test12_5_3_DropMalformed},
	{ID: "12.5/4", Level: MUST, Summary: "a packet with the handle of a room the sender is not in, or of no room, is dropped",
		Cite: "A server MUST drop, and count by reason, ... one whose handle names no room the connection is a member of",
		run:  test12_5_4_DropOtherRoom},
	{ID: "12.5/5", Level: MUST, Summary: "after call-leave the connection's packets are dropped and it gets none; call-leave of a room not joined succeeds",
		Cite: "one whose handle names no room the connection is a member of (or, from a federation connection",
		run:  test12_5_5_Leave},
	{ID: "12.5/6", Level: MUST, Summary: "the peer's packets are dropped before fed-call-join and after fed-call-leave; fed-call-leave of a room not linked succeeds",
		Cite: "(or, from a federation connection, no room its origin is linked to)",
		run:  test12_5_6_FedLeave, Needs: []Need{NeedPeer}},
}

// Keys of server-info's limits (section 15.2) about calls.
const (
	limitCallMembers = 16
	limitCallRooms   = 17
)

// Waits of the tests of calls.
const (
	// packetWait bounds the wait for a packet that must arrive.
	packetWait = 10 * time.Second
	// resendEvery is how often a packet that must arrive is sent again:
	// DATAGRAMs may be lost.
	resendEvery = 100 * time.Millisecond
)

// callRoom is a room identifier and its token.
type callRoom struct{ id, token []byte }

func newRoom() callRoom {
	r := callRoom{id: make([]byte, wire.RoomIDLen), token: make([]byte, wire.RoomTokenLen)}
	rand.Read(r.id)
	rand.Read(r.token)
	return r
}

// withToken is r with another token.
func (r callRoom) withToken() callRoom {
	o := newRoom()
	o.id = r.id
	return o
}

func (r callRoom) join(domains ...string) *wire.CallJoin {
	return &wire.CallJoin{Room: r.id, Token: r.token, Domains: append([]string{}, domains...)}
}

// needCalls skips t on a server that does not relay calls.
func (t *T) needCalls() {
	if _, ok := t.env.limit(limitCallMembers); !ok {
		t.Skipf("the server does not relay calls (server-info limits key %d absent)", limitCallMembers)
	}
}

// join admits c to r and returns the room's handle; the connection leaves
// the room when t ends.
func (t *T) join(c *conn, r callRoom, domains ...string) uint32 {
	c.received() // read DATAGRAMs from now on
	var ok wire.CallJoinOK
	if err := c.request(t.ctx, r.join(domains...), &ok); err != nil {
		t.Fatalf("call-join: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 5*time.Second)
		defer cancel()
		c.request(ctx, &wire.CallLeave{Handle: ok.Handle}, &wire.OK{})
	})
	return ok.Handle
}

// leave takes c out of the room of handle.
func (t *T) leave(c *conn, handle uint32) { t.do(c, &wire.CallLeave{Handle: handle}, nil) }

// packet is an encoded media packet with data random bytes.
func packet(handle, source, seq uint32, index, count uint8, data int) []byte {
	d := make([]byte, data)
	rand.Read(d)
	return wire.AppendMediaPacket(nil, &wire.MediaPacket{Handle: handle, Source: source, Seq: seq, Index: index, Count: count, Data: d})
}

// randomPacket is a packet of one fragment with data random bytes, from a
// random source.
func randomPacket(handle uint32, data int) []byte {
	return packet(handle, randomU32(), randomU32(), 0, 1, data)
}

func randomU32() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

// withHandle is a copy of pkt with its handle replaced.
func withHandle(pkt []byte, h uint32) []byte {
	out := slices.Clone(pkt)
	wire.SetPacketHandle(out, h)
	return out
}

// dgrams are the DATAGRAMs a connection received.
type dgrams struct {
	mu     sync.Mutex
	got    [][]byte
	notify chan struct{}
}

// received returns the DATAGRAMs c has received, reading them from the
// first call on.
func (c *conn) received() *dgrams {
	c.dgOnce.Do(func() {
		d := &dgrams{notify: make(chan struct{})}
		c.dg = d
		go func() {
			for {
				b, err := c.qc.ReceiveDatagram(context.Background())
				if err != nil {
					return
				}
				d.mu.Lock()
				d.got = append(d.got, b)
				close(d.notify)
				d.notify = make(chan struct{})
				d.mu.Unlock()
			}
		}()
	})
	return c.dg
}

// has reports whether p was received.
func (d *dgrams) has(p []byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.ContainsFunc(d.got, func(b []byte) bool { return bytes.Equal(b, p) })
}

// wait waits until p is received or ctx ends.
func (d *dgrams) wait(ctx context.Context, p []byte) bool {
	for {
		d.mu.Lock()
		ok := slices.ContainsFunc(d.got, func(b []byte) bool { return bytes.Equal(b, p) })
		ch := d.notify
		d.mu.Unlock()
		if ok {
			return true
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
}

// sendPacket sends pkt as a DATAGRAM on c.
func (t *T) sendPacket(c *conn, pkt []byte) {
	if !c.qc.ConnectionState().SupportsDatagrams.Remote {
		t.Fatalf("the server does not allow DATAGRAMs (max_datagram_frame_size) on this connection")
	}
	if err := c.qc.SendDatagram(pkt); err != nil {
		t.Fatalf("send a DATAGRAM of %d bytes: %v", len(pkt), err)
	}
}

// resendUntil sends pkt on from, again every resendEvery, until arrived
// reports (waiting at most until its context ends) that it arrived where
// it must; it fails t after packetWait.
func (t *T) resendUntil(what string, from *conn, pkt []byte, arrived func(ctx context.Context) bool) {
	deadline := time.Now().Add(packetWait)
	for {
		t.sendPacket(from, pkt)
		ctx, cancel := context.WithTimeout(t.ctx, resendEvery)
		ok := arrived(ctx)
		cancel()
		if ok {
			return
		}
		if time.Now().After(deadline) || t.ctx.Err() != nil {
			t.Fatalf("%s: not received within %s", what, packetWait)
		}
	}
}

// deliver sends pkt on from until every connection of to has received it
// unchanged.
func (t *T) deliver(what string, from *conn, pkt []byte, to ...*conn) {
	t.resendUntil(what, from, pkt, func(ctx context.Context) bool {
		for _, c := range to {
			if !c.received().wait(ctx, pkt) {
				return false
			}
		}
		return true
	})
}

// deliverToPeer sends pkt on from until the peer has received want on a
// connection the server under test dialled.
func (t *T) deliverToPeer(what string, from *conn, pkt, want []byte) {
	p := t.env.peer
	mark := p.mark()
	t.resendUntil(what, from, pkt, func(ctx context.Context) bool {
		_, _, err := p.await(ctx, mark, func(ev peerEvent) bool { return ev.kind == "datagram" && bytes.Equal(ev.raw, want) })
		return err == nil
	})
}

// peerGot reports whether the peer received pkt at or after position from.
func (p *peer) peerGot(from int, pkt []byte) bool {
	return slices.ContainsFunc(p.between(from, p.mark()), func(ev peerEvent) bool { return ev.kind == "datagram" && bytes.Equal(ev.raw, pkt) })
}

// notReceived fails t when one of the connections received pkt.
func (t *T) notReceived(what string, pkt []byte, cs ...*conn) {
	for i, c := range cs {
		if c.received().has(pkt) {
			t.Fatalf("%s: forwarded to connection %d", what, i)
		}
	}
}

// fedLink links the suite's peer to r with fed-call-join on fc, naming
// handle as the peer's, and returns the server's handle; the link is
// removed when t ends.
func (t *T) fedLink(fc *conn, r callRoom, handle uint32) uint32 {
	var ok wire.FedCallJoinOK
	t.do(fc, &wire.FedCallJoin{Room: r.id, Token: r.token, Handle: handle}, &ok)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 5*time.Second)
		defer cancel()
		fc.request(ctx, &wire.FedCallLeave{Handle: ok.Handle}, &wire.OK{})
	})
	return ok.Handle
}

// test12_3_1_JoinUnauthenticated checks 12.3/1: call-join on an unauthenticated connection is unauthenticated; on a server that does not relay calls, unknown_request.
func test12_3_1_JoinUnauthenticated(t *T) {
	c := t.dial()
	r := newRoom()
	t.expectErr(c, r.join(), wire.CodeUnauthenticated)
	t.expectErr(c, &wire.CallLeave{Handle: randomU32()}, wire.CodeUnauthenticated)
	_, members := t.env.limit(limitCallMembers)
	_, rooms := t.env.limit(limitCallRooms)
	if members != rooms {
		t.Errorf("server-info announces limits key 16 (%v) without key 17 (%v), or key 17 without key 16", members, rooms)
	}
	if !members {
		t.expectErr(t.connect(t.account()), r.join(), wire.CodeUnknownRequest)
	}
}

// test12_3_2_RoomDenied checks 12.3/2: call-join with another token than the room's is room_denied, and the denied connection's packets are not forwarded.
func test12_3_2_RoomDenied(t *T) {
	t.needCalls()
	as := t.accountsWhere(3, unspent)
	ca, cb, cc := t.connect(as[0]), t.connect(as[1]), t.connect(as[2])
	r := newRoom()
	h := t.join(ca, r)
	if hc := t.join(cc, r); hc != h {
		t.Fatalf("two members of one room got handles %08x and %08x", h, hc)
	}
	cb.received()
	t.expectErr(cb, r.withToken().join(), wire.CodeRoomDenied)
	t.expectErr(cb, r.withToken().join(), wire.CodeRoomDenied)
	bad := randomPacket(h, 40)
	t.sendPacket(cb, bad)
	// cc's packet, after cb's, reaches ca: cb's would have reached it too.
	t.deliver("a member's packet", cc, randomPacket(h, 40), ca)
	t.notReceived("a packet of a connection refused with room_denied", bad, ca, cc)
	// The refused token left the room as it was: the right token admits.
	if hb := t.join(cb, r); hb != h {
		t.Fatalf("call-join with the room's token after a room_denied: handle %08x, the room's is %08x", hb, h)
	}
	t.deliver("a packet of a member admitted after a room_denied", cb, randomPacket(h, 40), ca, cc)
	t.notReceived("a packet of a connection refused with room_denied", bad, ca, cc)
}

// test12_3_3_CallFull checks 12.3/3: call-join to a room holding the announced number of devices is call_full; a device already in it keeps its handle.
func test12_3_3_CallFull(t *T) {
	t.needCalls()
	n, _ := t.env.limit(limitCallMembers)
	const reach = 4 // three accounts of the pool, one with a linked device
	if n+1 > reach {
		t.Skipf("filling a room takes %d devices (server-info limits key %d); the suite has %d", n+1, limitCallMembers, reach)
	}
	var as []*account
	if n+1 <= 3 {
		as = t.accountsWhere(int(n+1), unspent)
	} else {
		as = t.accountsFirst(3, func(a *account) bool { return len(a.extra) > 0 && !a.spent })
	}
	var devs []*account
	for _, a := range as {
		devs = append(devs, a)
		for _, l := range a.extra {
			devs = append(devs, a.as(l))
		}
	}
	if uint64(len(devs)) < n+1 {
		t.Skipf("filling a room takes %d devices; the suite's accounts have %d", n+1, len(devs))
	}
	r := newRoom()
	var cs []*conn
	var h uint32
	for i := range n {
		c := t.connect(devs[i])
		cs = append(cs, c)
		hi := t.join(c, r)
		if i == 0 {
			h = hi
		}
	}
	last := t.connect(devs[n])
	t.expectErr(last, r.join(), wire.CodeCallFull)
	var again wire.CallJoinOK
	t.do(cs[0], r.join(), &again)
	if again.Handle != h {
		t.Fatalf("call-join of a full room by a member: handle %08x, the room's is %08x", again.Handle, h)
	}
	t.leave(cs[0], h)
	if hl := t.join(last, r); hl != h {
		t.Fatalf("call-join after a member left a full room: handle %08x, the room's is %08x", hl, h)
	}
}

// test12_3_4_RoomsPerAccount checks 12.3/4: call-join past the announced rooms per account is limit_exceeded; a room already joined answers its handle; leaving or closing frees a place.
func test12_3_4_RoomsPerAccount(t *T) {
	t.needCalls()
	m, announced := t.env.limit(limitCallRooms)
	if !announced {
		t.Fatalf("server-info announces limits key %d without key %d", limitCallMembers, limitCallRooms)
	}
	if m > 64 {
		t.Skipf("the server allows %d rooms per account; the suite joins at most 64", m)
	}
	a := t.accountsWhere(1, unspent)[0]
	c, err := t.env.connect(t.ctx, a)
	t.must(err, "connect")
	closed := false
	t.Cleanup(func() {
		if !closed {
			c.close()
		}
	})
	rooms := make([]callRoom, m)
	handles := make([]uint32, m)
	for i := range rooms {
		rooms[i] = newRoom()
		var ok wire.CallJoinOK
		t.do(c, rooms[i].join(), &ok)
		handles[i] = ok.Handle
	}
	t.expectErr(c, newRoom().join(), wire.CodeLimitExceeded)
	// A second device of the account counts too (when the account has
	// one).
	if len(a.extra) > 0 {
		t.expectErr(t.connect(a.as(a.extra[0])), newRoom().join(), wire.CodeLimitExceeded)
	}
	var again wire.CallJoinOK
	t.do(c, rooms[0].join(), &again)
	if again.Handle != handles[0] {
		t.Fatalf("call-join of a room the connection is in: handle %08x, first %08x", again.Handle, handles[0])
	}
	t.expectErr(c, newRoom().join(), wire.CodeLimitExceeded)
	// call-leave frees a place.
	t.leave(c, handles[0])
	var ok wire.CallJoinOK
	t.do(c, newRoom().join(), &ok)
	t.expectErr(c, newRoom().join(), wire.CodeLimitExceeded)
	// Closing the connection leaves its rooms: another connection of the
	// account can join once the server has seen the close.
	c.close()
	closed = true
	c2 := t.connect(a)
	deadline := time.Now().Add(packetWait)
	for {
		err := c2.request(t.ctx, newRoom().join(), &ok)
		var pe *wire.Error
		if err == nil {
			t.leave(c2, ok.Handle)
			return
		}
		if !errors.As(err, &pe) || pe.Code != wire.CodeLimitExceeded || time.Now().After(deadline) {
			t.Fatalf("call-join after the connection in %d rooms closed: %v", m, err)
		}
		select {
		case <-time.After(resendEvery):
		case <-t.ctx.Done():
			t.Fatalf("call-join after the connection in %d rooms closed: %v", m, err)
		}
	}
}

// test12_3_5_Handles checks 12.3/5: members of one room get one handle; rooms get distinct handles, not near one another.
func test12_3_5_Handles(t *T) {
	t.needCalls()
	m, _ := t.env.limit(limitCallRooms)
	as := t.accountsWhere(2, unspent)
	ca, cb := t.connect(as[0]), t.connect(as[1])
	var hs []uint32
	// Rooms held at once.
	held := min(int(m), 3)
	for range held {
		r := newRoom()
		h := t.join(ca, r)
		if hb := t.join(cb, r); hb != h {
			t.Fatalf("two members of one room got handles %08x and %08x", h, hb)
		}
		hs = append(hs, h)
	}
	// Rooms created one after another, each closed when its member leaves.
	c := ca
	if held == int(m) {
		c = t.connect(as[0])
		for _, h := range hs {
			t.leave(ca, h)
			t.leave(cb, h)
		}
	}
	for range 8 {
		var ok wire.CallJoinOK
		t.do(c, newRoom().join(), &ok)
		hs = append(hs, ok.Handle)
		t.leave(c, ok.Handle)
	}
	for i := range hs[:held] {
		for j := range hs[:held] {
			if i != j && hs[i] == hs[j] {
				t.Fatalf("two rooms with members got the same handle %08x", hs[i])
			}
		}
	}
	// Handles chosen at random are this close with a probability of
	// about 1e-5; a counter, or a counter with a fixed offset, is caught.
	for i := range hs {
		for j := i + 1; j < len(hs); j++ {
			if d := hs[i] - hs[j]; d < 256 || -d < 256 {
				t.Fatalf("rooms got handles %08x and %08x: a room's handle tells others' (handles %08x)", hs[i], hs[j], hs)
			}
		}
	}
}

// test12_3_6_LinksDomains checks 12.3/6: call-join naming the peer's domain answers at once, then sends fed-call-join with the room, token and handle; members' packets reach the peer.
func test12_3_6_LinksDomains(t *T) {
	t.needCalls()
	p := t.usePeer()
	a := t.accountsWhere(1, unspent)[0]
	c := t.connect(a)
	release := make(chan struct{})
	var once sync.Once
	free := func() { once.Do(func() { close(release) }) }
	t.Cleanup(free)
	joins := make(chan *wire.FedCallJoin, 8)
	ph := randomU32()
	p.behave(func(p *peer) {
		p.onCallJoin = func(r *wire.FedCallJoin) []byte {
			select {
			case joins <- r:
			default:
			}
			select { // the peer answers only after the member got its answer
			case <-release:
			case <-time.After(30 * time.Second):
			}
			f, err := wire.EncodeSuccess(&wire.FedCallJoinOK{Handle: ph})
			if err != nil {
				return wire.EncodeError(err)
			}
			return f
		}
	})
	r := newRoom()
	c.received()
	ctx, cancel := context.WithTimeout(t.ctx, packetWait)
	var ok wire.CallJoinOK
	err := c.request(ctx, r.join(t.env.c.Domain, p.c.Domain), &ok)
	cancel()
	if err != nil {
		t.Fatalf("call-join naming the peer's domain, with the peer's fed-call-join-ok held back: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 5*time.Second)
		defer cancel()
		c.request(ctx, &wire.CallLeave{Handle: ok.Handle}, &wire.OK{})
	})
	var fj *wire.FedCallJoin
	select {
	case fj = <-joins:
	case <-time.After(packetWait):
		t.Fatalf("no fed-call-join reached the peer within %s of the call-join naming it", packetWait)
	case <-t.ctx.Done():
		t.Fatalf("no fed-call-join reached the peer: %v", t.ctx.Err())
	}
	free()
	if !bytes.Equal(fj.Room, r.id) || !bytes.Equal(fj.Token, r.token) || fj.Handle != ok.Handle {
		t.Fatalf("fed-call-join with room %x, token of %d bytes (the member's: %v), handle %08x; want room %x and the handle %08x answered to the member",
			fj.Room, len(fj.Token), bytes.Equal(fj.Token, r.token), fj.Handle, r.id, ok.Handle)
	}
	pkt := randomPacket(ok.Handle, 100)
	t.deliverToPeer("a member's packet to the peer's domain the call-join named", c, pkt, withHandle(pkt, ph))
}

// test12_4_1_FedJoin checks 12.4/1: fed-call-join from the peer links the room: the server's handle answered, packets both ways, a later origin handle replaces the first.
func test12_4_1_FedJoin(t *T) {
	t.needCalls()
	p := t.usePeer()
	c := t.connect(t.accountsWhere(1, unspent)[0])
	fc := t.fedConn(p.c.Domain)
	r := newRoom()
	ph := randomU32()
	sh := t.fedLink(fc, r, ph) // the peer creates the room
	if h := t.join(c, r); h != sh {
		t.Fatalf("call-join of the room the peer created: handle %08x; fed-call-join-ok answered %08x", h, sh)
	}
	t.deliver("the peer's packet with the server's handle, to the member", fc, randomPacket(sh, 200), c)
	pkt := randomPacket(sh, 300)
	t.deliverToPeer("the member's packet to the linked peer", c, pkt, withHandle(pkt, ph))
	// A second fed-call-join of the origin replaces its handle.
	ph2 := ph ^ 0x5a5a5a5a
	if h := t.fedLink(fc, r, ph2); h != sh {
		t.Fatalf("a second fed-call-join of the room: handle %08x, first %08x", h, sh)
	}
	pkt = randomPacket(sh, 300)
	t.deliverToPeer("the member's packet after the peer's new handle", c, pkt, withHandle(pkt, ph2))
	mark := p.mark()
	pkt = randomPacket(sh, 300)
	t.deliverToPeer("the member's packet after the peer's new handle", c, pkt, withHandle(pkt, ph2))
	if p.peerGot(mark, withHandle(pkt, ph)) {
		t.Fatalf("a packet reached the peer with its replaced handle %08x", ph)
	}
}

// test12_4_2_FedRoomDenied checks 12.4/2: fed-call-join with another token than the room's is room_denied, and the peer's packets are not forwarded.
func test12_4_2_FedRoomDenied(t *T) {
	t.needCalls()
	p := t.usePeer()
	as := t.accountsWhere(2, unspent)
	ca, cb := t.connect(as[0]), t.connect(as[1])
	fc := t.fedConn(p.c.Domain)
	r := newRoom()
	h := t.join(ca, r)
	t.join(cb, r)
	o := r.withToken()
	t.expectErr(fc, &wire.FedCallJoin{Room: o.id, Token: o.token, Handle: randomU32()}, wire.CodeRoomDenied)
	bad := randomPacket(h, 50)
	t.sendPacket(fc, bad)
	t.deliver("a member's packet", cb, randomPacket(h, 50), ca)
	t.notReceived("a packet of a peer refused with room_denied", bad, ca, cb)
	// The room is as it was: the right token links.
	if sh := t.fedLink(fc, r, randomU32()); sh != h {
		t.Fatalf("fed-call-join with the room's token after a room_denied: handle %08x, the room's is %08x", sh, h)
	}
	t.deliver("the peer's packet once linked", fc, randomPacket(h, 50), ca, cb)
	t.notReceived("a packet of a peer refused with room_denied", bad, ca, cb)
}

// test12_5_1_ForwardToMembers checks 12.5/1: a member's packets reach every other member unchanged (15 and 1,200 bytes, fragments) and never the sender.
func test12_5_1_ForwardToMembers(t *T) {
	t.needCalls()
	as := t.accountsWhere(3, unspent)
	ca, cb, cc := t.connect(as[0]), t.connect(as[1]), t.connect(as[2])
	r := newRoom()
	h := t.join(ca, r)
	t.join(cb, r)
	t.join(cc, r)
	src, seq := randomU32(), randomU32()
	var sent [][]byte
	for _, pkt := range [][]byte{
		packet(h, src, seq, 0, 1, 1),                                                      // the smallest packet: 15 bytes
		packet(h, src, seq+1, 0, 1, wire.MaxPacketData),                                   // the largest: 1,200 bytes
		packet(h, src, seq+2, 0, 3, wire.MaxPacketData),                                   // a frame of three fragments
		packet(h, src, seq+2, 2, 3, 7),                                                    // out of order
		packet(h, src, seq+2, 1, 3, wire.MaxPacketData),                                   //
		packet(h, src, 0xffffffff, wire.MaxPacketFragments-1, wire.MaxPacketFragments, 9), // the last fragment of the most
	} {
		t.deliver(fmt.Sprintf("a member's packet of %d bytes", len(pkt)), ca, pkt, cb, cc)
		sent = append(sent, pkt)
	}
	// A packet of cb after ca's reaches ca: the server has forwarded ca's.
	t.deliver("another member's packet", cb, randomPacket(h, 20), ca, cc)
	for _, pkt := range sent {
		t.notReceived("a packet sent back to its sender", pkt, ca)
	}
}

// test12_5_2_ForwardToDomains checks 12.5/2: a member's packets reach the linked peer with the peer's handle; the peer's reach members only, not the peer again.
func test12_5_2_ForwardToDomains(t *T) {
	t.needCalls()
	p := t.usePeer()
	as := t.accountsWhere(2, unspent)
	ca, cb := t.connect(as[0]), t.connect(as[1])
	fc := t.fedConn(p.c.Domain)
	r := newRoom()
	h := t.join(ca, r)
	t.join(cb, r)
	ph := randomU32()
	if sh := t.fedLink(fc, r, ph); sh != h {
		t.Fatalf("fed-call-join of a room with members: handle %08x, the members' %08x", sh, h)
	}
	mark := p.mark()
	from := randomPacket(h, 500)
	t.deliver("the peer's packet to the members", fc, from, ca, cb)
	// A member's packet reaches the peer after the peer's own would have.
	pkt := randomPacket(h, 500)
	t.deliverToPeer("a member's packet to the linked peer", ca, pkt, withHandle(pkt, ph))
	t.deliver("a member's packet to the other member", ca, pkt, cb)
	if p.peerGot(mark, withHandle(from, ph)) || p.peerGot(mark, from) {
		t.Fatalf("the peer's packet was forwarded back to the peer's domain")
	}
	t.notReceived("a member's packet sent back to its sender", pkt, ca)
}

// test12_5_3_DropMalformed checks 12.5/3: packets that do not parse (under 15 bytes, count 0 or above 111, index not below count) are dropped.
func test12_5_3_DropMalformed(t *T) {
	t.needCalls()
	as := t.accountsWhere(2, unspent)
	ca, cb := t.connect(as[0]), t.connect(as[1])
	r := newRoom()
	h := t.join(ca, r)
	t.join(cb, r)
	src, seq := randomU32(), randomU32()
	header := packet(h, src, seq, 0, 1, 1)[:wire.CallPacketHeader]
	bad := map[string][]byte{
		"the 14-byte header alone":        header,
		"4 bytes":                         header[:4],
		"a fragment count of 0":           packet(h, src, seq, 0, 0, 20),
		"a fragment count of 112":         packet(h, src, seq, 0, wire.MaxPacketFragments+1, 20),
		"a fragment count of 255":         packet(h, src, seq, 3, 255, 20),
		"a fragment index equal to count": packet(h, src, seq, 2, 2, 20),
		"a fragment index above count":    packet(h, src, seq, 9, 4, 20),
	}
	for _, b := range bad {
		t.sendPacket(ca, b)
	}
	// A valid packet of the same sender, sent after them, arrives.
	t.deliver("a valid packet after malformed ones", ca, randomPacket(h, 20), cb)
	for what, b := range bad {
		t.notReceived("a packet of "+what, b, cb)
	}
}

// test12_5_4_DropOtherRoom checks 12.5/4: a packet with the handle of a room the sender is not in, or of no room, is dropped.
func test12_5_4_DropOtherRoom(t *T) {
	t.needCalls()
	as := t.accountsWhere(3, unspent)
	ca, cb, cc := t.connect(as[0]), t.connect(as[1]), t.connect(as[2])
	r1, r2 := newRoom(), newRoom()
	h1 := t.join(ca, r1)
	t.join(cb, r1)
	h2 := t.join(cb, r2)
	t.join(cc, r2)
	if h1 == h2 {
		t.Fatalf("two rooms with members got the same handle %08x", h1)
	}
	other := randomPacket(h2, 30) // ca is not in r2
	none := randomPacket(h1^h2^0x80000001, 30)
	t.sendPacket(ca, other)
	t.sendPacket(ca, none)
	// cb is in both rooms; ca's packet of r1, sent after, reaches it.
	t.deliver("a member's packet after packets for other rooms", ca, randomPacket(h1, 30), cb)
	t.deliver("a member of the other room's packet", cb, randomPacket(h2, 30), cc)
	t.notReceived("a packet with the handle of a room its sender is not in", other, cb, cc)
	t.notReceived("a packet with a handle of no room", none, cb, cc)
}

// test12_5_5_Leave checks 12.5/5: after call-leave the connection's packets are dropped and it gets none; call-leave of a room not joined succeeds.
func test12_5_5_Leave(t *T) {
	t.needCalls()
	as := t.accountsWhere(3, unspent)
	ca, cb, cc := t.connect(as[0]), t.connect(as[1]), t.connect(as[2])
	r := newRoom()
	h := t.join(ca, r)
	t.join(cb, r)
	t.join(cc, r)
	t.deliver("a member's packet before call-leave", ca, randomPacket(h, 30), cb, cc)
	t.leave(ca, h)
	t.leave(ca, h)               // not in it any more
	t.leave(ca, h^0x01000000)    // a handle it never had
	t.leave(t.connect(as[0]), h) // another connection, never in it
	after := randomPacket(h, 30)
	t.sendPacket(ca, after)
	toLeaver := randomPacket(h, 30)
	t.deliver("a member's packet after another left", cb, toLeaver, cc)
	t.deliver("a member's packet after another left", cc, randomPacket(h, 30), cb)
	t.notReceived("a packet of a connection that left the room", after, cb, cc)
	t.notReceived("a packet to a connection that left the room", toLeaver, ca)
	// Once every member has left, the room is closed: the identifier is
	// free for a room with another token.
	t.leave(cb, h)
	t.leave(cc, h)
	t.join(ca, r.withToken())
}

// test12_5_6_FedLeave checks 12.5/6: the peer's packets are dropped before fed-call-join and after fed-call-leave; fed-call-leave of a room not linked succeeds.
func test12_5_6_FedLeave(t *T) {
	t.needCalls()
	p := t.usePeer()
	as := t.accountsWhere(2, unspent)
	ca, cb := t.connect(as[0]), t.connect(as[1])
	fc := t.fedConn(p.c.Domain)
	r := newRoom()
	h := t.join(ca, r)
	t.join(cb, r)
	before := randomPacket(h, 30)
	t.sendPacket(fc, before)
	t.deliver("a member's packet", cb, randomPacket(h, 30), ca)
	t.notReceived("a packet of a peer not linked to the room", before, ca, cb)
	ph := randomU32()
	var ok wire.FedCallJoinOK
	t.do(fc, &wire.FedCallJoin{Room: r.id, Token: r.token, Handle: ph}, &ok)
	if ok.Handle != h {
		t.Fatalf("fed-call-join of a room with members: handle %08x, the members' %08x", ok.Handle, h)
	}
	t.deliver("the peer's packet once linked", fc, randomPacket(h, 30), ca, cb)
	t.do(fc, &wire.FedCallLeave{Handle: h}, nil)
	t.do(fc, &wire.FedCallLeave{Handle: h}, nil)              // not linked any more
	t.do(fc, &wire.FedCallLeave{Handle: h ^ 0x00100000}, nil) // a handle of no room
	after := randomPacket(h, 30)
	t.sendPacket(fc, after)
	mark := p.mark()
	pkt := randomPacket(h, 30)
	t.deliver("a member's packet after the peer left", cb, pkt, ca)
	t.notReceived("a packet of a peer after fed-call-leave", after, ca, cb)
	if p.peerGot(mark, withHandle(pkt, ph)) {
		t.Fatalf("a member's packet reached the peer after its fed-call-leave")
	}
}
