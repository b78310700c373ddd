package federation_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/federation"
	"github.com/xchat-im/xchat/server/devca"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/sqlite"
	"github.com/xchat-im/xchat/spec/wire"
)

// The call tests run two federating endpoints on loopback, each a real
// Federation with its own QUIC listener, store and certificate, whose
// Local records what federation hands it: the homeserver's call rooms are
// not what these tests look at.

// callLocal is a federation.Local that records the call requests and
// packets federation passes on.
type callLocal struct {
	mu      sync.Mutex
	handle  uint32 // answered to fed-call-join
	joinErr error  // answered instead, when set
	joins   []peerJoin
	leaves  []peerLeave
	packets []peerPacket
	discard atomic.Bool // PeerPacket only counts (the probe)
}

type peerJoin struct {
	origin       string
	room, token  []byte
	originHandle uint32
}

type peerLeave struct {
	origin string
	handle uint32
}

type peerPacket struct {
	origin string
	pkt    []byte
}

func (l *callLocal) PeerCallJoin(origin string, room, token []byte, originHandle uint32) (uint32, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.joins = append(l.joins, peerJoin{origin, room, token, originHandle})
	if l.joinErr != nil {
		return 0, l.joinErr
	}
	return l.handle, nil
}

func (l *callLocal) PeerCallLeave(origin string, handle uint32) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.leaves = append(l.leaves, peerLeave{origin, handle})
}

func (l *callLocal) PeerPacket(origin string, pkt []byte) {
	if l.discard.Load() {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.packets = append(l.packets, peerPacket{origin, pkt})
}

func (l *callLocal) received() []peerPacket {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]peerPacket(nil), l.packets...)
}

func (l *callLocal) AdmitRelay(context.Context, string, []wire.Envelope) ([]wire.Code, error) {
	return nil, errors.New("no relays in call tests")
}

func (l *callLocal) GetDevices(context.Context, *wire.GetDevices) (*wire.GetDevicesOK, error) {
	return nil, wire.Errorf(wire.CodeUnknownAccount, "no accounts in call tests")
}

func (l *callLocal) ClaimKeyPackage(context.Context, *wire.ClaimKeyPackage) (*wire.ClaimKeyPackageOK, error) {
	return nil, wire.Errorf(wire.CodeUnknownAccount, "no accounts in call tests")
}

func (l *callLocal) ServerInfo() *wire.ServerInfoOK { return &wire.ServerInfoOK{} }
func (l *callLocal) Notify(store.Mailbox)           {}
func (l *callLocal) ReadBlob(context.Context, []byte, uint64, uint64) ([]byte, error) {
	return nil, wire.Errorf(wire.CodeUnknownBlob, "no blobs in call tests")
}

// callNode is one federating endpoint.
type callNode struct {
	domain string
	addr   string
	f      *federation.Federation
	local  *callLocal
	caDir  string
}

// startCallNodes starts an endpoint for each domain on loopback, with
// certificates from one development CA and static peer entries for each
// other, plus extra peer entries for all of them. Their listeners take
// DATAGRAMs, as the homeserver's quicConfig does.
func startCallNodes(t *testing.T, extra map[string]string, domains ...string) map[string]*callNode {
	t.Helper()
	caDir := filepath.Join(t.TempDir(), "ca")
	ca, err := devca.LoadOrCreate(caDir)
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(devca.CertPath(caDir))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	trs := make(map[string]*quic.Transport)
	addrs := make(map[string]string)
	for _, d := range domains {
		if err := ca.Issue(caDir, d); err != nil {
			t.Fatal(err)
		}
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		tr := &quic.Transport{Conn: pc}
		t.Cleanup(func() { tr.Close() })
		trs[d], addrs[d] = tr, pc.LocalAddr().String()
	}
	nodes := make(map[string]*callNode)
	for i, d := range domains {
		cert, err := tls.LoadX509KeyPair(devca.DomainCertPath(caDir, d), devca.DomainKeyPath(caDir, d))
		if err != nil {
			t.Fatal(err)
		}
		peers := make(map[string]string)
		for p, a := range extra {
			peers[p] = a
		}
		for p, a := range addrs {
			if p != d {
				peers[p] = a
			}
		}
		ctx, cancel := context.WithCancel(context.Background())
		st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "xchat.db"), store.Limits{}, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		local := &callLocal{handle: uint32(0xB0B0_0000 + i)}
		f, err := federation.New(federation.Config{
			Domain: d, Certificate: cert, Roots: roots, Peers: peers, Deny: []string{"evil.test"},
			Store: st, Local: local, Retry: 50 * time.Millisecond, MaxRetry: time.Second,
		})
		if err != nil {
			t.Fatal(err)
		}
		ln, err := trs[d].Listen(f.ListenTLS(cert), &quic.Config{
			HandshakeIdleTimeout: wire.HandshakeDeadline / 2,
			MaxIdleTimeout:       wire.IdleTimeout,
			MaxIncomingStreams:   wire.MaxConcurrentStreams,
			EnableDatagrams:      true, // as server.quicConfig
		})
		if err != nil {
			t.Fatal(err)
		}
		var serving sync.WaitGroup
		serving.Go(func() {
			for {
				qc, err := ln.Accept(ctx)
				if err != nil {
					return
				}
				serving.Go(func() { f.ServeConn(ctx, qc) })
			}
		})
		if err := f.Start(ctx, trs[d]); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cancel()
			ln.Close()
			f.Stop()
			serving.Wait()
		})
		nodes[d] = &callNode{domain: d, addr: addrs[d], f: f, local: local, caDir: caDir}
	}
	return nodes
}

// dialRaw opens a federation connection to n with the certificate of
// certDomain, taking DATAGRAMs, without fed-hello.
func dialRaw(t *testing.T, n *callNode, certDomain string) *quic.Conn {
	t.Helper()
	cert, err := tls.LoadX509KeyPair(devca.DomainCertPath(n.caDir, certDomain), devca.DomainKeyPath(n.caDir, certDomain))
	if err != nil {
		t.Fatal(err)
	}
	caPEM, err := os.ReadFile(devca.CertPath(n.caDir))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	qc, err := quic.DialAddr(servertest.Context(t), n.addr, &tls.Config{
		Certificates: []tls.Certificate{cert}, RootCAs: roots, ServerName: n.domain,
		NextProtos: []string{wire.ALPNFederation}, MinVersion: tls.VersionTLS13,
	}, &quic.Config{EnableDatagrams: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	return qc
}

// eventually waits until cond holds, for at most d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("no %s after %s", what, d)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = seed + byte(i)
	}
	return b
}

// packet returns a media packet for handle, numbered seq, of n bytes.
func packet(handle, seq uint32, n int) []byte {
	return wire.AppendMediaPacket(nil, &wire.MediaPacket{Handle: handle, Source: 0x5050, Seq: seq, Count: 1,
		Data: randomBytes(n-wire.CallPacketHeader, byte(seq))})
}

// fed-call-join answers the listener's handle and tells the listener the
// origin the connection proved; fed-call-leave names the listener's
// handle; the listener's refusal comes back as its *wire.Error.
func TestFedCallJoinAndLeave(t *testing.T) {
	t.Parallel()
	nodes := startCallNodes(t, nil, "a.test", "b.test")
	a, b := nodes["a.test"], nodes["b.test"]
	ctx := servertest.Context(t)
	room, token := randomBytes(wire.RoomIDLen, 1), randomBytes(wire.RoomTokenLen, 2)

	h, err := a.f.CallJoin(ctx, "b.test", room, token, 0xA1)
	if err != nil {
		t.Fatal(err)
	}
	if h != b.local.handle {
		t.Fatalf("fed-call-join answered handle %#x, want the listener's %#x", h, b.local.handle)
	}
	b.local.mu.Lock()
	joins := append([]peerJoin(nil), b.local.joins...)
	b.local.mu.Unlock()
	if len(joins) != 1 || joins[0].origin != "a.test" || !bytes.Equal(joins[0].room, room) ||
		!bytes.Equal(joins[0].token, token) || joins[0].originHandle != 0xA1 {
		t.Fatalf("PeerCallJoin got %+v, want one from a.test with the room, token and handle 0xA1", joins)
	}

	if err := a.f.CallLeave(ctx, "b.test", h); err != nil {
		t.Fatal(err)
	}
	b.local.mu.Lock()
	leaves := append([]peerLeave(nil), b.local.leaves...)
	b.local.mu.Unlock()
	if len(leaves) != 1 || leaves[0] != (peerLeave{"a.test", h}) {
		t.Fatalf("PeerCallLeave got %+v, want one from a.test for %#x", leaves, h)
	}

	// The listener's refusal passes through.
	b.local.mu.Lock()
	b.local.joinErr = wire.Errorf(wire.CodeRoomDenied, "token mismatch")
	b.local.mu.Unlock()
	_, err = a.f.CallJoin(ctx, "b.test", room, randomBytes(wire.RoomTokenLen, 3), 0xA2)
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeRoomDenied {
		t.Fatalf("refused fed-call-join: %v, want a *wire.Error room_denied", err)
	}

	// The domain policy: no call with a denied domain, nor with itself.
	_, err = a.f.CallJoin(ctx, "evil.test", room, token, 0xA3)
	servertest.MustCode(t, err, wire.CodeDomainRefused)
	servertest.MustCode(t, a.f.CallLeave(ctx, "evil.test", 1), wire.CodeDomainRefused)
	if _, err := a.f.CallJoin(ctx, "a.test", room, token, 0xA4); err == nil {
		t.Fatal("a call link to the local domain was made")
	}
	if a.f.SendPacket("evil.test", packet(1, 1, 100)) || a.f.SendPacket("a.test", packet(1, 1, 100)) {
		t.Fatal("a packet was sent to a denied domain or to the local domain")
	}
	if a.f.SendPacket("b.test", make([]byte, wire.MaxCallPacket+1)) {
		t.Fatal("a packet larger than a media packet was sent")
	}
	if s := a.f.CallStats(); s.DroppedRefused != 3 {
		t.Fatalf("%d packets refused, want 3", s.DroppedRefused)
	}
}

// Packets sent with SendPacket arrive, unchanged, at the other side's
// PeerPacket with the origin the sender proved; a side without an
// outbound connection drops its first packets and dials in the
// background.
func TestFedCallPackets(t *testing.T) {
	t.Parallel()
	nodes := startCallNodes(t, nil, "a.test", "b.test", "c.test")
	a, b, c := nodes["a.test"], nodes["b.test"], nodes["c.test"]
	ctx := servertest.Context(t)
	h, err := a.f.CallJoin(ctx, "b.test", randomBytes(wire.RoomIDLen, 1), randomBytes(wire.RoomTokenLen, 2), 0xA1)
	if err != nil {
		t.Fatal(err)
	}
	const n = 32
	sent := map[string]bool{}
	for i := range uint32(n) {
		size := 100
		if i%4 == 0 {
			size = wire.MaxCallPacket // the largest media packet fits in a datagram
		}
		p := packet(h, i, size)
		sent[string(p)] = true
		if !a.f.SendPacket("b.test", p) {
			t.Fatalf("packet %d not sent: %+v", i, a.f.CallStats())
		}
	}
	// Datagrams are unreliable, also on loopback under load: wait for all,
	// accept most.
	waitPackets(t, b.local, n)
	got := b.local.received()
	for _, p := range got {
		if p.origin != "a.test" || !sent[string(p.pkt)] {
			t.Fatalf("PeerPacket got a packet of %d bytes from %q that a.test did not send", len(p.pkt), p.origin)
		}
	}
	t.Logf("%d of %d packets arrived; a.test: %+v", len(got), n, a.f.CallStats())
	if len(got) < n*3/4 {
		t.Fatalf("%d of %d packets arrived; a.test: %+v", len(got), n, a.f.CallStats())
	}
	if s := b.f.CallStats(); s.Received != uint64(len(got)) {
		t.Fatalf("b.test counted %d packets received, PeerPacket got %d", s.Received, len(got))
	}

	// b.test, linked by a.test's fed-call-join, dials a.test for the
	// room's packets without waiting for the first.
	var back []byte
	eventually(t, 20*time.Second, "connection from b.test to a.test", func() bool {
		back = packet(0xA1, 1, 200)
		return b.f.SendPacket("a.test", back)
	})
	waitPackets(t, a.local, 1)
	checkOnly(t, a.local, "b.test", back)

	// a.test has not dialled c.test: its first packet is dropped and a
	// connection is dialled in the background.
	if a.f.SendPacket("c.test", packet(0xC1, 0, 200)) {
		t.Fatal("a.test sent a packet without a connection to c.test")
	}
	if s := a.f.CallStats(); s.DroppedNoConn != 1 {
		t.Fatalf("a.test: %+v, want one packet dropped for want of a connection", s)
	}
	eventually(t, 20*time.Second, "connection from a.test to c.test", func() bool {
		back = packet(0xC1, 1, 200)
		return a.f.SendPacket("c.test", back)
	})
	waitPackets(t, c.local, 1)
	checkOnly(t, c.local, "a.test", back)
}

// checkOnly checks that l received one packet, want, from origin.
func checkOnly(t *testing.T, l *callLocal, origin string, want []byte) {
	t.Helper()
	got := l.received()
	if len(got) != 1 || got[0].origin != origin || !bytes.Equal(got[0].pkt, want) {
		t.Fatalf("PeerPacket got %d packets, want one from %s", len(got), origin)
	}
}

// waitPackets waits until l has n packets, for at most a few seconds, and
// returns without failing when fewer came.
func waitPackets(t *testing.T, l *callLocal, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(l.received()) < n && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
}

// SendPacket never waits: not for a dial to a peer that does not answer,
// nor for a destination whose queue is full, whose packets it drops and
// counts.
func TestFedCallSendPacketNeverBlocks(t *testing.T) {
	t.Parallel()
	// silent.test's address takes UDP and never answers: its dial lasts
	// the handshake timeout (10 s).
	silent, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	nodes := startCallNodes(t, map[string]string{"silent.test": silent.LocalAddr().String()}, "a.test", "b.test")
	a := nodes["a.test"]

	done := make(chan int)
	go func() {
		dropped := 0
		for i := range 1000 {
			if !a.f.SendPacket("silent.test", packet(1, uint32(i), 200)) {
				dropped++
			}
		}
		done <- dropped
	}()
	select {
	case dropped := <-done:
		if dropped != 1000 {
			t.Fatalf("%d of 1000 packets to a peer without a connection dropped", dropped)
		}
	case <-time.After(wire.HandshakeDeadline / 2):
		t.Fatal("SendPacket waited for a dial")
	}

	// A full queue drops: packets offered faster than QUIC sends them.
	ctx := servertest.Context(t)
	h, err := a.f.CallJoin(ctx, "b.test", randomBytes(wire.RoomIDLen, 1), randomBytes(wire.RoomTokenLen, 2), 0xA1)
	if err != nil {
		t.Fatal(err)
	}
	p := packet(h, 0, wire.MaxCallPacket)
	refused := 0
	for i := 0; i < 200_000 && a.f.CallStats().DroppedFull == 0; i++ {
		if !a.f.SendPacket("b.test", p) {
			refused++
		}
	}
	s := a.f.CallStats()
	if s.DroppedFull == 0 {
		t.Fatalf("200,000 packets of %d bytes offered at once and none dropped: %+v", len(p), s)
	}
	if uint64(refused) != s.DroppedFull {
		t.Fatalf("SendPacket reported %d packets dropped, counted %d full", refused, s.DroppedFull)
	}
	t.Logf("a.test: %+v", s)
	// What was queued drains to b.test.
	waitPackets(t, nodes["b.test"].local, 1)
	if len(nodes["b.test"].local.received()) == 0 {
		t.Fatalf("nothing arrived at b.test: %+v", a.f.CallStats())
	}
}

// A federation connection's packets before fed-hello are dropped; so are
// its call requests, refused like every other request; after fed-hello,
// its packets reach PeerPacket with the origin it proved.
func TestFedCallBeforeHello(t *testing.T) {
	t.Parallel()
	nodes := startCallNodes(t, nil, "a.test", "b.test")
	b := nodes["b.test"]
	ctx := servertest.Context(t)
	qc := dialRaw(t, b, "a.test")
	if !qc.ConnectionState().SupportsDatagrams.Remote {
		t.Fatal("the federation listener does not take datagrams")
	}

	var ok wire.FedCallJoinOK
	err := wire.RoundTrip(ctx, qc, &wire.FedCallJoin{Room: randomBytes(wire.RoomIDLen, 1), Token: randomBytes(wire.RoomTokenLen, 2), Handle: 1}, &ok)
	servertest.MustCode(t, err, wire.CodePeerUnauthenticated)
	servertest.MustCode(t, wire.RoundTrip(ctx, qc, &wire.FedCallLeave{Handle: 1}, &wire.OK{}), wire.CodePeerUnauthenticated)

	const early = 5
	for i := range uint32(early) {
		if err := qc.SendDatagram(packet(b.local.handle, i, 100)); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, 10*time.Second, fmt.Sprintf("%d packets dropped before fed-hello", early), func() bool {
		return b.f.CallStats().DroppedUnproved == early
	})
	var hello wire.FedHelloOK
	if err := wire.RoundTrip(ctx, qc, &wire.FedHello{Domain: "a.test"}, &hello); err != nil {
		t.Fatal(err)
	}
	late := packet(b.local.handle, 99, 100)
	eventually(t, 10*time.Second, "packet after fed-hello", func() bool {
		if err := qc.SendDatagram(late); err != nil {
			t.Fatal(err)
		}
		return len(b.local.received()) > 0
	})
	for _, p := range b.local.received() {
		if p.origin != "a.test" || binary.BigEndian.Uint32(p.pkt[8:]) != 99 {
			t.Fatalf("PeerPacket got packet %d from %q, want only those after fed-hello from a.test",
				binary.BigEndian.Uint32(p.pkt[8:]), p.origin)
		}
	}
	if err := wire.RoundTrip(ctx, qc, &wire.FedCallJoin{Room: randomBytes(wire.RoomIDLen, 1), Token: randomBytes(wire.RoomTokenLen, 2), Handle: 1}, &ok); err != nil || ok.Handle != b.local.handle {
		t.Fatalf("fed-call-join after fed-hello: %v, handle %#x", err, ok.Handle)
	}
}

// A connection accepted once Stop began is not served: ServeConn returns,
// even while the connection stays open and sends datagrams, and does not
// wait for it to close.
func TestFedCallServeConnAfterStop(t *testing.T) {
	t.Parallel()
	nodes := startCallNodes(t, nil, "a.test", "b.test")
	b := nodes["b.test"]
	b.f.Stop()
	qc := dialRaw(t, b, "a.test")
	ctx, cancel := context.WithTimeout(servertest.Context(t), 10*time.Second)
	defer cancel()
	if err := wire.RoundTrip(ctx, qc, &wire.FedHello{Domain: "a.test"}, &wire.FedHelloOK{}); err == nil {
		t.Fatal("fed-hello served after Stop")
	}
	// Before the listener closes the connection for want of fed-hello.
	eventually(t, wire.AuthDeadline/2, "return of ServeConn", func() bool {
		// Keep the connection busy, so that it does not close idle.
		if err := qc.SendDatagram(packet(1, 0, 100)); err != nil {
			t.Fatalf("connection closed before ServeConn returned: %v", err)
		}
		return b.f.Conns() == 0
	})
}
