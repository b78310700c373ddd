package bench

import (
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// The bare relay is the baseline of the calls scenario: the same QUIC
// library and TLS certificate as a homeserver, QUIC DATAGRAMs on loopback,
// and nothing but the forwarding. A device joins a room by opening a
// bidirectional stream and writing the room's 16-byte identifier; the
// relay answers the room's 4-byte handle and closes the stream. Then each
// DATAGRAM the device sends whose first four bytes are the handle of a
// room it joined goes, unchanged, to every other member of that room
// through a bounded queue per member (a full queue drops the packet), as
// spec/12-calls.md section 12.5 asks of a homeserver. No registration, no
// token, no rates, no counters per reason.

// bareQueue is how many packets wait for one member of the bare relay
// before it drops.
const bareQueue = 256

// bareRelay is the state of ServeCallRelay.
type bareRelay struct {
	mu      sync.Mutex
	rooms   map[[wire.RoomIDLen]byte]*bareRoom
	handles uint32
	dropped atomic.Int64
}

// bareRoom is one room of the bare relay: its members, replaced whole on
// a change so that the forwarding reads them without a lock.
type bareRoom struct {
	handle  uint32
	members atomic.Pointer[[]*bareMember]
}

// bareMember is one connection of the bare relay with its send queue.
type bareMember struct {
	qc *quic.Conn
	q  chan []byte

	mu    sync.Mutex
	rooms map[uint32]*bareRoom
}

// ServeCallRelay serves the bare relay on pc with the certificate and key
// in certFile and keyFile until ctx ends. ready, when not nil, is called
// once it accepts connections.
func ServeCallRelay(ctx context.Context, pc net.PacketConn, certFile, keyFile string, ready func()) error {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return err
	}
	tr := &quic.Transport{Conn: pc}
	defer tr.Close()
	ln, err := tr.Listen(&tls.Config{Certificates: []tls.Certificate{cert}, NextProtos: []string{wire.ALPN}, MinVersion: tls.VersionTLS13},
		&quic.Config{MaxIdleTimeout: wire.IdleTimeout, EnableDatagrams: true, MaxIncomingStreams: 16})
	if err != nil {
		return err
	}
	defer ln.Close()
	if ready != nil {
		ready()
	}
	r := &bareRelay{rooms: make(map[[wire.RoomIDLen]byte]*bareRoom)}
	for {
		qc, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		m := &bareMember{qc: qc, q: make(chan []byte, bareQueue), rooms: make(map[uint32]*bareRoom)}
		go r.serveJoins(ctx, m)
		go r.forward(m)
		go m.send()
	}
}

// serveJoins answers m's join streams until its connection ends, then
// takes it out of its rooms.
func (r *bareRelay) serveJoins(ctx context.Context, m *bareMember) {
	defer r.leave(m)
	for {
		st, err := m.qc.AcceptStream(ctx)
		if err != nil {
			return
		}
		var id [wire.RoomIDLen]byte
		st.SetDeadline(time.Now().Add(wire.RequestDeadline))
		if _, err := io.ReadFull(st, id[:]); err != nil {
			st.CancelRead(0)
			st.CancelWrite(0)
			continue
		}
		room := r.join(m, id)
		st.Write(binary.BigEndian.AppendUint32(nil, room.handle))
		st.Close()
	}
}

func (r *bareRelay) join(m *bareMember, id [wire.RoomIDLen]byte) *bareRoom {
	r.mu.Lock()
	defer r.mu.Unlock()
	room := r.rooms[id]
	if room == nil {
		r.handles++
		room = &bareRoom{handle: r.handles}
		room.members.Store(&[]*bareMember{})
		r.rooms[id] = room
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.rooms[room.handle] == nil {
		m.rooms[room.handle] = room
		old := *room.members.Load()
		room.members.Store(ptr(append(old[:len(old):len(old)], m)))
	}
	return room
}

func ptr[T any](v T) *T { return &v }

// leave takes m out of every room it joined.
func (r *bareRelay) leave(m *bareMember) {
	r.mu.Lock()
	defer r.mu.Unlock()
	m.mu.Lock()
	defer m.mu.Unlock()
	for h, room := range m.rooms {
		var left []*bareMember
		for _, x := range *room.members.Load() {
			if x != m {
				left = append(left, x)
			}
		}
		room.members.Store(&left)
		delete(m.rooms, h)
	}
}

// forward reads m's datagrams and queues each for the other members of
// its room.
func (r *bareRelay) forward(m *bareMember) {
	for {
		b, err := m.qc.ReceiveDatagram(context.Background())
		if err != nil {
			return
		}
		h, ok := wire.PacketHandle(b)
		if !ok {
			continue
		}
		m.mu.Lock()
		room := m.rooms[h]
		m.mu.Unlock()
		if room == nil {
			continue
		}
		for _, to := range *room.members.Load() {
			if to == m {
				continue
			}
			if !to.enqueue(b) {
				r.dropped.Add(1)
			}
		}
	}
}

// enqueue queues b for m, and returns false when m's queue is full.
func (m *bareMember) enqueue(b []byte) bool {
	select {
	case m.q <- b:
		return true
	default:
		return false
	}
}

// send sends m's queue on its connection until the connection ends.
func (m *bareMember) send() {
	done := m.qc.Context().Done()
	for {
		select {
		case b := <-m.q:
			if m.qc.SendDatagram(b) != nil {
				return
			}
		case <-done:
			return
		}
	}
}

// joinBareRoom joins the bare relay's room id on qc and returns its handle.
func joinBareRoom(ctx context.Context, qc *quic.Conn, id []byte) (uint32, error) {
	if len(id) != wire.RoomIDLen {
		return 0, fmt.Errorf("room identifier of %d bytes", len(id))
	}
	st, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return 0, err
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	if _, err := st.Write(id); err != nil {
		return 0, err
	}
	if err := st.Close(); err != nil {
		return 0, err
	}
	var h [4]byte
	if _, err := io.ReadFull(st, h[:]); err != nil {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("bare relay join: %w", err)
	}
	return binary.BigEndian.Uint32(h[:]), nil
}

// errNoDatagrams is returned when a connection did not negotiate QUIC
// DATAGRAMs.
var errNoDatagrams = errors.New("the connection did not negotiate QUIC DATAGRAMs")
