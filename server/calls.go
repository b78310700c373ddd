package server

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// DefaultCallQueue is the default of Config.CallQueue: media packets
// waiting for one destination connection.
const DefaultCallQueue = 256

// relay is the homeserver's call relay (spec/12-calls.md sections 12.3 to
// 12.5): the rooms, by handle and by identifier, and the counters.
//
// Structural changes (joins, leaves, links, closes) take mu; forwarding
// does not: it reads a room's destinations from an immutable view
// (room.view) and the sending connection's memberships (conn.calls).
type relay struct {
	s               *Server
	lim             Limits
	log             *slog.Logger
	queueLen        int
	retry, maxRetry time.Duration
	links           sync.WaitGroup // background link and leave goroutines
	stats           callCounters
	// openRooms and joined count the open rooms and their member
	// connections, for CallStats.
	openRooms, joined atomic.Int64

	mu           sync.RWMutex
	ctx          context.Context // ends when the server stops
	cancel       context.CancelFunc
	rooms        map[uint32]*room // by handle
	byID         map[[wire.RoomIDLen]byte]*room
	accountRooms map[string]int // rooms with a member of the account
	peerRooms    map[string]int // rooms linked by each origin domain
	stopped      bool
}

func newRelay(s *Server) *relay {
	r := &relay{
		s: s, lim: s.cfg.Limits, log: s.log.With("component", "calls"),
		queueLen: s.cfg.CallQueue, retry: s.cfg.CallRetry, maxRetry: s.cfg.CallMaxRetry,
		rooms: make(map[uint32]*room), byID: make(map[[wire.RoomIDLen]byte]*room),
		accountRooms: make(map[string]int), peerRooms: make(map[string]int),
	}
	if r.queueLen <= 0 {
		r.queueLen = DefaultCallQueue
	}
	if r.retry <= 0 {
		r.retry = time.Second
	}
	if r.maxRetry <= 0 {
		r.maxRetry = 300 * time.Second
	}
	r.maxRetry = max(r.maxRetry, r.retry)
	// Until Serve starts the relay, links have nothing to run on.
	r.ctx, r.cancel = context.WithCancel(context.Background())
	return r
}

// start makes the relay's background work (links, fed-call-leave) run
// until ctx ends or stop is called.
func (r *relay) start(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cancel()
	r.ctx, r.cancel = context.WithCancel(ctx)
}

// closeAll closes every room at shutdown, while the federation still runs,
// so that linked domains get their fed-call-leave rather than keeping the
// rooms for the idle time; it waits for those at most wait. Rooms that
// connections close afterwards send nothing.
func (r *relay) closeAll(wait time.Duration) {
	r.mu.Lock()
	for _, rm := range r.rooms {
		r.close(rm, "shutdown")
	}
	r.stopped = true
	r.mu.Unlock()
	done := make(chan struct{})
	go func() {
		r.links.Wait()
		close(done)
	}()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-done:
	case <-t.C:
	}
}

// stop ends the relay's background work and waits for it.
func (r *relay) stop() {
	r.mu.Lock()
	r.stopped = true
	r.cancel()
	for _, rm := range r.rooms {
		if rm.idle != nil {
			rm.idle.Stop()
		}
	}
	r.mu.Unlock()
	r.links.Wait()
}

// CallStats are the call relay's counters since the server started.
type CallStats struct {
	Rooms   int // rooms open now
	Members int // member connections of all rooms now
	// Received counts the packets read from members and linked domains.
	Received uint64
	// Forwarded counts the copies handed to QUIC for a member connection or
	// to the federation for a linked domain.
	Forwarded uint64
	Dropped   CallDrops
}

// CallDrops counts dropped media packets by reason.
type CallDrops struct {
	Malformed  uint64 // did not parse (spec/12-calls.md section 12.5)
	NotMember  uint64 // handle of no room the sender is in (or, from a domain, linked to)
	FrameRate  uint64 // past the sender's frame rate in the room
	PacketRate uint64 // past the sender's packet rate in the room
	QueueFull  uint64 // the destination connection's queue was full
	Unlinked   uint64 // for a domain named by call-join but not linked yet
	Federation uint64 // the federation did not take it (no connection, queue full)
	SendFailed uint64 // QUIC refused it (connection closed, too large for the path)
}

type callCounters struct {
	received, forwarded                                    atomic.Uint64
	malformed, notMember, frameRate, packetRate, queueFull atomic.Uint64
	unlinked, federation, sendFailed                       atomic.Uint64
}

// CallStats returns the call relay's counters; all zero when the server
// does not relay calls.
func (s *Server) CallStats() CallStats {
	r := s.calls
	if r == nil {
		return CallStats{}
	}
	c := &r.stats
	return CallStats{
		Rooms: int(r.openRooms.Load()), Members: int(r.joined.Load()),
		Received: c.received.Load(), Forwarded: c.forwarded.Load(),
		Dropped: CallDrops{
			Malformed: c.malformed.Load(), NotMember: c.notMember.Load(),
			FrameRate: c.frameRate.Load(), PacketRate: c.packetRate.Load(),
			QueueFull: c.queueFull.Load(), Unlinked: c.unlinked.Load(),
			Federation: c.federation.Load(), SendFailed: c.sendFailed.Load(),
		},
	}
}

// newHandle returns a random handle that names no open room. r.mu is held.
func (r *relay) newHandle() uint32 {
	var b [4]byte
	for {
		rand.Read(b[:])
		h := binary.BigEndian.Uint32(b[:])
		if _, taken := r.rooms[h]; !taken {
			return h
		}
	}
}

// verifier returns the room verifier of token: its SHA-256.
func verifier(token []byte) [sha256.Size]byte { return sha256.Sum256(token) }

// PeerCallJoin links origin to the local call room of the identifier room,
// creating the room when there is none (spec/12-calls.md section 12.4), and
// returns the local handle of the room. It implements federation.Local.
func (s *Server) PeerCallJoin(origin string, room, token []byte, originHandle uint32) (uint32, error) {
	if s.calls == nil {
		return 0, wire.Errorf(wire.CodeUnknownRequest, "calls are not relayed here")
	}
	if len(room) != wire.RoomIDLen || len(token) != wire.RoomTokenLen {
		return 0, wire.Errorf(wire.CodeMalformed, "room identifier or token of the wrong length")
	}
	return s.calls.peerJoin(origin, room, token, originHandle)
}

// PeerCallLeave unlinks origin from the local room of handle. It
// implements federation.Local.
func (s *Server) PeerCallLeave(origin string, handle uint32) {
	if s.calls != nil {
		s.calls.peerLeave(origin, handle)
	}
}

// PeerPacket takes a call media packet that arrived from origin and
// forwards it to the members of its room, when origin is linked to it. It
// keeps pkt, never blocks, and implements federation.Local.
func (s *Server) PeerPacket(origin string, pkt []byte) {
	if s.calls != nil {
		s.calls.fromPeer(origin, pkt)
	}
}
