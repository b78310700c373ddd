package server_test

import (
	"bytes"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// callDevice registers a new account on s over a connection with DATAGRAMs.
func callDevice(t *testing.T, s *servertest.Server, address string) *servertest.Raw {
	t.Helper()
	r := servertest.DialDatagrams(t, s)
	if err := r.Register(servertest.NewDevice(t, address), nil); err != nil {
		t.Fatalf("register %s: %v", address, err)
	}
	return r
}

// newRoom returns a random room identifier and token.
func newRoom() (room, token []byte) {
	room, token = make([]byte, wire.RoomIDLen), make([]byte, wire.RoomTokenLen)
	rand.Read(room)
	rand.Read(token)
	return room, token
}

func mustJoin(t *testing.T, r *servertest.Raw, room, token []byte, domains ...string) uint32 {
	t.Helper()
	h, err := r.CallJoin(room, token, domains...)
	if err != nil {
		t.Fatalf("call-join: %v", err)
	}
	return h
}

// packet returns a media packet of handle whose data names the sender.
func packet(handle, source, seq uint32, index, count uint8, size int) []byte {
	data := make([]byte, size)
	binary.BigEndian.PutUint32(data, source)
	binary.BigEndian.PutUint32(data[4:], seq)
	return wire.AppendMediaPacket(nil, &wire.MediaPacket{Handle: handle, Source: source, Seq: seq, Index: index, Count: count, Data: data})
}

func send(t *testing.T, r *servertest.Raw, pkt []byte) {
	t.Helper()
	if err := r.QC.SendDatagram(pkt); err != nil {
		t.Fatalf("send datagram: %v", err)
	}
}

// expectPacket requires the next datagram r receives to be want.
func expectPacket(t *testing.T, r *servertest.Raw, want []byte) {
	t.Helper()
	got, err := r.NextDatagram(20 * time.Second)
	if err != nil {
		t.Fatalf("no datagram: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("got packet %x..., want %x...", got[:min(len(got), 16)], want[:16])
	}
}

// waitStats waits, up to 20 s, until cond holds for the server's call
// counters.
func waitStats(t *testing.T, s *servertest.Server, what string, cond func(server.CallStats) bool) server.CallStats {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st := s.CallStats()
		if cond(st) {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: never; counters %+v", what, st)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// call-join admits an authenticated connection with DATAGRAMs and a
// matching token (spec/12-calls.md section 12.3), and server-info
// announces keys 16 and 17.
func TestCallJoinAdmission(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	room, token := newRoom()

	anon := servertest.DialDatagrams(t, s)
	_, err := anon.CallJoin(room, token)
	servertest.MustCode(t, err, wire.CodeUnauthenticated)

	var info wire.ServerInfoOK
	if err := anon.Request(&wire.ServerInfo{}, &info); err != nil {
		t.Fatal(err)
	}
	if info.Limits.MaxCallMembers != wire.MaxCallMembers || info.Limits.MaxCallRooms != wire.MaxCallRooms {
		t.Fatalf("server-info keys 16, 17: %d, %d; want %d, %d", info.Limits.MaxCallMembers, info.Limits.MaxCallRooms, wire.MaxCallMembers, wire.MaxCallRooms)
	}

	noDatagrams := servertest.Dial(t, s)
	if err := noDatagrams.Register(servertest.NewDevice(t, "plain@a.test"), nil); err != nil {
		t.Fatal(err)
	}
	_, err = noDatagrams.CallJoin(room, token)
	servertest.MustCode(t, err, wire.CodeMalformed)

	a := callDevice(t, s, "alice@a.test")
	h := mustJoin(t, a, room, token)
	if again := mustJoin(t, a, room, token); again != h {
		t.Fatalf("joining again answered handle %d, want %d", again, h)
	}
	b := callDevice(t, s, "bob@a.test")
	wrong := bytes.Clone(token)
	wrong[0] ^= 1
	_, err = b.CallJoin(room, wrong)
	servertest.MustCode(t, err, wire.CodeRoomDenied)
	if hb := mustJoin(t, b, room, token); hb != h {
		t.Fatalf("second member got handle %d, want the room's %d", hb, h)
	}
	other, otherToken := newRoom()
	if h2 := mustJoin(t, a, other, otherToken); h2 == h {
		t.Fatalf("two rooms share handle %d", h)
	}
	if st := s.CallStats(); st.Rooms != 2 || st.Members != 3 {
		t.Fatalf("counters %+v, want 2 rooms and 3 members", st)
	}
	if err := a.CallLeave(12345); err != nil {
		t.Fatalf("call-leave of a room not joined: %v", err)
	}
}

// A server that does not relay calls answers unknown_request and announces
// neither key 16 nor 17.
func TestCallsDisabled(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{MaxCallMembers: -1}})
	a := callDevice(t, s, "alice@a.test")
	var info wire.ServerInfoOK
	if err := a.Request(&wire.ServerInfo{}, &info); err != nil {
		t.Fatal(err)
	}
	if info.Limits.MaxCallMembers != 0 || info.Limits.MaxCallRooms != 0 {
		t.Fatalf("keys 16, 17 announced: %d, %d", info.Limits.MaxCallMembers, info.Limits.MaxCallRooms)
	}
	room, token := newRoom()
	_, err := a.CallJoin(room, token)
	servertest.MustCode(t, err, wire.CodeUnknownRequest)
	servertest.MustCode(t, a.CallLeave(1), wire.CodeUnknownRequest)
	if _, err := s.Homeserver().PeerCallJoin("b.test", room, token, 1); err == nil {
		t.Fatal("fed-call-join admitted on a server without calls")
	}
}

// A room holding the announced number of devices refuses the next with
// call_full; an account in the announced number of rooms gets
// limit_exceeded for another, but not for a room it is already in.
func TestCallLimits(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{MaxCallMembers: 2, MaxCallRooms: 2}})
	room, token := newRoom()
	a := callDevice(t, s, "alice@a.test")
	b := callDevice(t, s, "bob@a.test")
	c := callDevice(t, s, "carol@a.test")
	mustJoin(t, a, room, token)
	hb := mustJoin(t, b, room, token)
	_, err := c.CallJoin(room, token)
	servertest.MustCode(t, err, wire.CodeCallFull)
	if err := b.CallLeave(hb); err != nil {
		t.Fatal(err)
	}
	mustJoin(t, c, room, token)

	r2, t2 := newRoom()
	r3, t3 := newRoom()
	mustJoin(t, a, r2, t2)
	_, err = a.CallJoin(r3, t3)
	servertest.MustCode(t, err, wire.CodeLimitExceeded)
	mustJoin(t, a, room, token) // already in it: the same handle
	if st := s.CallStats(); st.Rooms != 2 {
		t.Fatalf("%d rooms open, want 2 (the refused one not created)", st.Rooms)
	}
}

// Packets reach every other member unchanged and never come back to the
// sender.
func TestCallForwarding(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	room, token := newRoom()
	devs := []*servertest.Raw{callDevice(t, s, "a@a.test"), callDevice(t, s, "b@a.test"), callDevice(t, s, "c@a.test")}
	var h uint32
	for _, d := range devs {
		h = mustJoin(t, d, room, token)
	}
	for i, from := range devs {
		p := packet(h, uint32(i+1), 7, 0, 1, 160)
		send(t, from, p)
		for j, to := range devs {
			if j != i {
				expectPacket(t, to, p)
			}
		}
	}
	// Had device 0 got its own packet back, it would have come before
	// those of devices 1 and 2, which it did receive first.
	st := waitStats(t, s, "six copies forwarded", func(st server.CallStats) bool { return st.Forwarded == 6 })
	if st.Received != 3 || st.Dropped != (server.CallDrops{}) {
		t.Fatalf("counters %+v, want 3 received and nothing dropped", st)
	}
	// A fragmented frame passes packet by packet.
	for idx := range uint8(3) {
		p := packet(h, 1, 8, idx, 3, wire.MaxPacketData)
		send(t, devs[0], p)
		expectPacket(t, devs[1], p)
	}
}

// Packets that do not parse, name a room the sender is not in, or pass
// the sender's rates are dropped and counted by reason.
func TestCallDrops(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{CallFrameRate: 5, CallPacketRate: 20}})
	room, token := newRoom()
	a := callDevice(t, s, "a@a.test")
	b := callDevice(t, s, "b@a.test")
	out := callDevice(t, s, "out@a.test")
	h := mustJoin(t, a, room, token)
	mustJoin(t, b, room, token)

	send(t, a, make([]byte, 14))            // no data
	send(t, a, packet(h, 1, 1, 2, 2, 10))   // index not below the count
	send(t, a, packet(h, 1, 1, 0, 0, 10))   // count 0
	send(t, a, packet(h, 1, 1, 0, 112, 10)) // count above 111
	send(t, a, packet(h+1, 1, 1, 0, 1, 10)) // a room a is not in
	send(t, out, packet(h, 9, 1, 0, 1, 10)) // a non-member
	waitStats(t, s, "malformed and non-member packets counted", func(st server.CallStats) bool {
		return st.Dropped.Malformed == 4 && st.Dropped.NotMember == 2
	})

	// Frames: a burst of 5, then 5 a second. Sent far faster than that,
	// most of 40 frames are dropped.
	for seq := range uint32(40) {
		send(t, a, packet(h, 1, 100+seq, 0, 1, 10))
	}
	st := waitStats(t, s, "frames past the rate dropped", func(st server.CallStats) bool {
		return st.Received-4-2 >= 40 || st.Dropped.FrameRate >= 20
	})
	if st.Dropped.FrameRate == 0 {
		t.Fatalf("no frame dropped for the rate: %+v", st)
	}
	// Packets that start no frame count against the packet rate only.
	for seq := range uint32(100) {
		send(t, a, packet(h, 1, 200+seq, 1, 2, 10))
	}
	st = waitStats(t, s, "packets past the rate dropped", func(st server.CallStats) bool { return st.Dropped.PacketRate >= 20 })
	if st.Dropped.QueueFull != 0 || st.Dropped.SendFailed != 0 {
		t.Fatalf("unexpected drops: %+v", st)
	}
	// b got the first packet that passed, never a malformed one.
	got, err := b.NextDatagram(20 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := wire.ParseMediaPacket(got); err != nil {
		t.Fatalf("forwarded a bad packet: %v", err)
	}
}

// A member that left, or whose connection closed, gets nothing more; the
// room closes with its last member, and a closed room's identifier can be
// used again with another token.
func TestCallLeaveAndClose(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	room, token := newRoom()
	a := callDevice(t, s, "a@a.test")
	b := callDevice(t, s, "b@a.test")
	h := mustJoin(t, a, room, token)
	mustJoin(t, b, room, token)
	if err := b.CallLeave(h); err != nil {
		t.Fatal(err)
	}
	send(t, b, packet(h, 2, 1, 0, 1, 10))
	waitStats(t, s, "packet of a former member dropped", func(st server.CallStats) bool { return st.Dropped.NotMember == 1 })
	mustJoin(t, b, room, token)
	b.QC.CloseWithError(0, "")
	waitStats(t, s, "closed connection left", func(st server.CallStats) bool { return st.Members == 1 })
	if err := a.CallLeave(h); err != nil {
		t.Fatal(err)
	}
	waitStats(t, s, "empty room closed", func(st server.CallStats) bool { return st.Rooms == 0 && st.Members == 0 })
	if !bytes.Contains(s.Logs(), []byte("call room closed")) {
		t.Fatal("no log line for the closed room")
	}
	if bytes.Contains(s.Logs(), fmt.Appendf(nil, "%x", token)) {
		t.Fatal("the log holds the room token")
	}
	_, other := newRoom()
	mustJoin(t, a, room, other)
}

// freezable is a UDP socket whose reading a test can stop: a QUIC
// connection over it gets no more acknowledgments through, so its peer's
// sending stalls as towards a congested receiver.
type freezable struct {
	net.PacketConn
	frozen atomic.Bool
}

func (f *freezable) ReadFrom(b []byte) (int, net.Addr, error) {
	for {
		n, addr, err := f.PacketConn.ReadFrom(b)
		if err != nil || !f.frozen.Load() {
			return n, addr, err
		}
	}
}

// A receiver that takes no packets fills its own queue, whose excess is
// dropped and counted; the other members keep getting every packet.
func TestCallSlowReceiver(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{CallFrameRate: -1, CallPacketRate: -1}})
	room, token := newRoom()
	a := callDevice(t, s, "a@a.test")
	b := callDevice(t, s, "b@a.test")
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	fz := &freezable{PacketConn: pc}
	slow := servertest.DialOver(t, s, fz, &quic.Config{EnableDatagrams: true})
	if err := slow.Register(servertest.NewDevice(t, "slow@a.test"), nil); err != nil {
		t.Fatal(err)
	}
	h := mustJoin(t, a, room, token)
	mustJoin(t, b, room, token)
	mustJoin(t, slow, room, token)
	fz.frozen.Store(true)
	// Each packet must reach b while slow's queue fills and overflows:
	// it holds DefaultCallQueue packets, quic-go's 32 more, and the
	// congestion window about as many.
	for seq := uint32(0); s.CallStats().Dropped.QueueFull == 0; seq++ {
		if seq == 2000 {
			t.Fatalf("no packet dropped for the frozen receiver after %d: %+v", seq, s.CallStats())
		}
		p := packet(h, 1, seq, 0, 1, 1000)
		send(t, a, p)
		expectPacket(t, b, p)
	}
}

// What federation calls: fed-call-join creates or joins a room by
// identifier and token, packets from a linked domain reach the members
// only, packets from a domain not linked are dropped, a member's packets
// go to the linked domain, the rooms one origin may link are bounded, and
// a room without members closes after the idle time.
func TestPeerCalls(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{MaxCallPeerRooms: 2, CallRoomIdle: 300 * time.Millisecond}})
	hs := s.Homeserver()
	a := callDevice(t, s, "a@a.test")
	room, token := newRoom()
	h, err := hs.PeerCallJoin("b.test", room, token, 77)
	if err != nil {
		t.Fatal(err)
	}
	wrong := bytes.Clone(token)
	wrong[1] ^= 1
	if _, err := hs.PeerCallJoin("c.test", room, wrong, 5); !isCode(err, wire.CodeRoomDenied) {
		t.Fatalf("fed-call-join with a wrong token: %v, want room_denied", err)
	}
	if ha := mustJoin(t, a, room, token); ha != h {
		t.Fatalf("member got handle %d, the peer %d", ha, h)
	}
	p := packet(h, 9, 1, 0, 1, 100)
	hs.PeerPacket("b.test", p)
	expectPacket(t, a, p)
	hs.PeerPacket("c.test", packet(h, 9, 2, 0, 1, 100))
	hs.PeerPacket("b.test", []byte{1, 2, 3})
	waitStats(t, s, "packets of a domain not linked, and malformed ones, dropped", func(st server.CallStats) bool {
		return st.Dropped.NotMember == 1 && st.Dropped.Malformed == 1
	})
	before := s.CallStats()
	send(t, a, packet(h, 1, 1, 0, 1, 100))
	waitStats(t, s, "member's packet handed to the federation", func(st server.CallStats) bool {
		return st.Forwarded+st.Dropped.Federation == before.Forwarded+before.Dropped.Federation+1
	})

	// Rooms per origin domain.
	r2, t2 := newRoom()
	if _, err := hs.PeerCallJoin("b.test", r2, t2, 78); err != nil {
		t.Fatal(err)
	}
	r3, t3 := newRoom()
	if _, err := hs.PeerCallJoin("b.test", r3, t3, 79); !isCode(err, wire.CodeLimitExceeded) {
		t.Fatalf("third room of b.test: %v, want limit_exceeded", err)
	}
	if _, err := hs.PeerCallJoin("b.test", room, token, 80); err != nil {
		t.Fatalf("linking a room again (new handle): %v", err)
	}
	if _, err := hs.PeerCallJoin("c.test", r3, t3, 81); err != nil {
		t.Fatal(err)
	}
	// r2 and r3 have no members: closed after the idle time. room has a.
	waitStats(t, s, "rooms without members closed when idle", func(st server.CallStats) bool { return st.Rooms == 1 })
	// Unlinked and left: room closes at once.
	hs.PeerCallLeave("b.test", h)
	if err := a.CallLeave(h); err != nil {
		t.Fatal(err)
	}
	waitStats(t, s, "room without members or links closed", func(st server.CallStats) bool { return st.Rooms == 0 })
}

func isCode(err error, code wire.Code) bool {
	pe, ok := errors.AsType[*wire.Error](err)
	return ok && pe.Code == code
}

// Two homeservers: a call-join naming the other domain links the rooms,
// and packets of each domain's member reach the other's.
func TestCallAcrossDomains(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	room, token := newRoom()
	a := callDevice(t, fed["a.test"], "a@a.test")
	b := callDevice(t, fed["b.test"], "b@b.test")
	ha := mustJoin(t, a, room, token, "b.test")
	hb := mustJoin(t, b, room, token, "a.test")
	deadline := time.Now().Add(30 * time.Second)
	for seq := uint32(0); ; seq++ {
		if time.Now().After(deadline) {
			t.Fatalf("no packet crossed: a %+v, b %+v", fed["a.test"].CallStats(), fed["b.test"].CallStats())
		}
		send(t, a, packet(ha, 1, seq, 0, 1, 100))
		got, err := b.NextDatagram(200 * time.Millisecond)
		if err != nil {
			continue
		}
		if h, _ := wire.PacketHandle(got); h != hb {
			t.Fatalf("b got handle %d, want its server's %d", h, hb)
		}
		break
	}
	p := packet(hb, 2, 1, 0, 1, 100)
	for {
		send(t, b, p)
		got, err := a.NextDatagram(time.Second)
		if err == nil {
			if h, _ := wire.PacketHandle(got); h != ha {
				t.Fatalf("a got handle %d, want %d", h, ha)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no packet from b reached a")
		}
	}
}

// Whatever a peer sends as a media packet is counted, never a panic.
func FuzzPeerPacket(f *testing.F) {
	s := servertest.Start(f, servertest.Options{})
	hs := s.Homeserver()
	room, token := newRoom()
	h, err := hs.PeerCallJoin("b.test", room, token, 1)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(packet(h, 1, 1, 0, 1, 10))
	f.Add(packet(h, 1, 1, 110, 111, 1186))
	f.Add([]byte{0, 0, 0, 0})
	f.Add(make([]byte, 15))
	f.Fuzz(func(t *testing.T, b []byte) {
		before := s.CallStats().Received
		hs.PeerPacket("b.test", b)
		hs.PeerPacket("c.test", b)
		if got := s.CallStats().Received; got != before+2 {
			t.Fatalf("received counter %d, want %d", got, before+2)
		}
	})
}

// A server that shuts down unlinks its rooms from the linked domains with
// fed-call-leave (spec/12-calls.md section 12.3), so that a peer's room
// with no member left closes at once, not after the room idle time.
func TestCallShutdownUnlinks(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	room, token := newRoom()
	a := callDevice(t, fed["a.test"], "a@a.test")
	b := callDevice(t, fed["b.test"], "b@b.test")
	ha := mustJoin(t, a, room, token, "b.test")
	hb := mustJoin(t, b, room, token)
	// Once b's packets reach a, a's fed-call-join linked both rooms.
	deadline := time.Now().Add(30 * time.Second)
	for seq := uint32(0); ; seq++ {
		if time.Now().After(deadline) {
			t.Fatalf("no packet crossed: a %+v, b %+v", fed["a.test"].CallStats(), fed["b.test"].CallStats())
		}
		send(t, b, packet(hb, 1, seq, 0, 1, 100))
		if got, err := a.NextDatagram(200 * time.Millisecond); err == nil {
			if h, _ := wire.PacketHandle(got); h != ha {
				t.Fatalf("a got handle %d, want %d", h, ha)
			}
			break
		}
	}
	if err := b.CallLeave(hb); err != nil {
		t.Fatal(err)
	}
	if n := fed["b.test"].CallStats().Rooms; n != 1 {
		t.Fatalf("b has %d rooms after its member left, want 1 (linked, waiting for the idle time)", n)
	}
	fed["a.test"].Stop()
	for fed["b.test"].CallStats().Rooms != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("b's room still open after a shut down: %+v", fed["b.test"].CallStats())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
