package conformance

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"sync"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// peer is the homeserver of another domain that the suite plays: it
// listens where the server under test expects the peer domain, answers its
// federation requests, and dials the server under test as that domain.
type peer struct {
	e       *env
	c       *PeerConfig
	roots   *x509.CertPool
	tr      *quic.Transport
	ln      *quic.Listener
	certKey ed25519.PrivateKey // the peer domain's sender-certificate key
	dev     *device            // the one device of every account of the peer
	cancel  context.CancelFunc

	mu          sync.Mutex
	events      []peerEvent
	notify      chan struct{}
	unreachable bool
	conns       []*quic.Conn
	// behaviour, set by tests that hold env.peerMu
	helloDomain string                           // answer fed-hello-ok with; "": the peer's domain
	cert        *tls.Certificate                 // present instead of the peer's certificate (its handshakes are "badcert" events)
	onRelay     func(r *wire.Relay) []byte       // nil: every envelope 0
	onLookup    func(req wire.Request) []byte    // nil: the default answers
	blobs       map[string][]byte                // the peer's finished blobs, by identifier, for fed-blob-get
	onBlobGet   func(r *wire.FedBlobGet) []byte  // nil: answered from blobs
	onCallJoin  func(r *wire.FedCallJoin) []byte // nil: fed-call-join-ok with the peer's handle of the room
	callHandles map[string]uint32                // the peer's handles of rooms, by room identifier
}

// peerEvent is something the peer saw.
type peerEvent struct {
	kind    string // "refused", "badcert", "handshake", "request", "datagram", "closed"
	conn    *quic.Conn
	sni     string
	protos  []string
	certErr error // the dialler's certificate, checked for the server's domain
	req     wire.Request
	raw     []byte // the request payload, or the datagram
	err     error  // "closed": why
}

func startPeer(ctx context.Context, e *env, pc *PeerConfig) (*peer, error) {
	if err := wire.ValidateDomain(pc.Domain); err != nil {
		return nil, fmt.Errorf("conformance: --peer-domain: %w", err)
	}
	addr, err := net.ResolveUDPAddr("udp", pc.Listen)
	if err != nil {
		return nil, fmt.Errorf("conformance: --peer-listen: %w", err)
	}
	udp, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("conformance: --peer-listen: %w", err)
	}
	_, ck, _ := ed25519.GenerateKey(rand.Reader)
	d, err := newDevice()
	if err != nil {
		return nil, err
	}
	p := &peer{e: e, c: pc, roots: pc.RootCAs, tr: &quic.Transport{Conn: udp}, certKey: ck, dev: d, notify: make(chan struct{})}
	if p.roots == nil {
		p.roots = e.c.RootCAs
	}
	conf := &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{pc.Certificate},
		NextProtos:   []string{wire.ALPNFederation},
		ClientAuth:   tls.RequireAnyClientCert,
	}
	conf.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		p.mu.Lock()
		refuse := p.unreachable
		p.mu.Unlock()
		if refuse {
			p.record(peerEvent{kind: "refused", sni: chi.ServerName})
			return nil, errors.New("the peer is unreachable for this test")
		}
		c := conf.Clone()
		c.GetConfigForClient = nil
		p.mu.Lock()
		other := p.cert
		p.mu.Unlock()
		if other != nil {
			c.Certificates = []tls.Certificate{*other}
			p.record(peerEvent{kind: "badcert", sni: chi.ServerName})
		}
		protos := slices.Clone(chi.SupportedProtos)
		c.VerifyConnection = func(cs tls.ConnectionState) error {
			p.record(peerEvent{kind: "handshake", sni: cs.ServerName, protos: protos, certErr: p.verifyDialler(cs)})
			return nil
		}
		return c, nil
	}
	ln, err := p.tr.Listen(conf, &quic.Config{MaxIncomingStreams: 100, MaxIncomingUniStreams: -1, EnableDatagrams: true})
	if err != nil {
		udp.Close()
		return nil, fmt.Errorf("conformance: peer listen: %w", err)
	}
	p.ln = ln
	// The peer outlives the start call: keep ctx's values, not its deadline.
	ctx, p.cancel = context.WithCancel(context.WithoutCancel(ctx))
	go p.accept(ctx)
	return p, nil
}

func (p *peer) close() {
	p.cancel()
	p.ln.Close()
	p.tr.Close()
	p.tr.Conn.Close()
}

// verifyDialler checks the certificate the server under test presents
// when it dials: a server-authentication certificate valid for its domain.
func (p *peer) verifyDialler(cs tls.ConnectionState) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("no certificate")
	}
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
		Roots: p.roots, Intermediates: inter, DNSName: p.e.c.Domain,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

func (p *peer) record(ev peerEvent) {
	p.mu.Lock()
	p.events = append(p.events, ev)
	close(p.notify)
	p.notify = make(chan struct{})
	p.mu.Unlock()
}

// mark returns the position of the next event.
func (p *peer) mark() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.events)
}

// between returns the events from position from up to (not including) to.
func (p *peer) between(from, to int) []peerEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.events[from:min(to, len(p.events))])
}

// await returns the first event at or after position from that satisfies
// pred, and the position after it.
func (p *peer) await(ctx context.Context, from int, pred func(ev peerEvent) bool) (peerEvent, int, error) {
	for {
		p.mu.Lock()
		evs, ch := p.events, p.notify
		p.mu.Unlock()
		for i := from; i < len(evs); i++ {
			if pred(evs[i]) {
				return evs[i], i + 1, nil
			}
		}
		from = len(evs)
		select {
		case <-ch:
		case <-ctx.Done():
			return peerEvent{}, from, ctx.Err()
		}
	}
}

// setUnreachable makes the peer refuse handshakes (and close its
// connections) or accept them again.
func (p *peer) setUnreachable(v bool) {
	p.mu.Lock()
	p.unreachable = v
	conns := p.conns
	if v {
		p.conns = nil
	}
	p.mu.Unlock()
	if v {
		for _, c := range conns {
			c.CloseWithError(wire.CloseServerShutdown, "unreachable")
		}
	}
}

// behave sets how the peer answers; reset restores the defaults.
func (p *peer) behave(f func(p *peer)) {
	p.mu.Lock()
	defer p.mu.Unlock()
	f(p)
}

func (p *peer) reset() {
	p.setUnreachable(false)
	p.behave(func(p *peer) {
		p.helloDomain, p.onRelay, p.onLookup, p.cert, p.blobs, p.onBlobGet, p.onCallJoin = "", nil, nil, nil, nil, nil, nil
	})
}

func (p *peer) accept(ctx context.Context) {
	for {
		qc, err := p.ln.Accept(ctx)
		if err != nil {
			return
		}
		p.mu.Lock()
		p.conns = append(p.conns, qc)
		p.mu.Unlock()
		go p.serve(ctx, qc)
	}
}

func (p *peer) serve(ctx context.Context, qc *quic.Conn) {
	defer func() {
		<-qc.Context().Done()
		p.record(peerEvent{kind: "closed", conn: qc, err: context.Cause(qc.Context())})
	}()
	if qc.ConnectionState().SupportsDatagrams.Remote {
		go p.readDatagrams(ctx, qc)
	}
	for {
		st, err := qc.AcceptStream(ctx)
		if err != nil {
			return
		}
		go wire.ServeStream(st, wire.MaxFrame, func(b []byte) []byte { return p.answer(qc, b) }, nil)
	}
}

// answer answers one federation request from the server under test.
func (p *peer) answer(qc *quic.Conn, b []byte) []byte {
	req, err := wire.DecodeFedRequest(b)
	p.record(peerEvent{kind: "request", conn: qc, req: req, raw: b})
	if err != nil {
		return wire.EncodeError(err)
	}
	p.mu.Lock()
	hello, onRelay, onLookup, onBlobGet, onCallJoin := p.helloDomain, p.onRelay, p.onLookup, p.onBlobGet, p.onCallJoin
	p.mu.Unlock()
	var f []byte
	switch r := req.(type) {
	case *wire.FedHello:
		if hello == "" {
			hello = p.c.Domain
		}
		f, err = wire.EncodeSuccess(&wire.FedHelloOK{Domain: hello})
	case *wire.Relay:
		if onRelay != nil {
			return onRelay(r)
		}
		f, err = wire.EncodeSuccess(&wire.RelayOK{Results: make([]wire.Code, len(r.Envelopes))})
	case *wire.ServerInfo:
		f, err = wire.EncodeSuccess(&wire.ServerInfoOK{Domain: p.c.Domain, CertKey: p.certKey.Public().(ed25519.PublicKey),
			Registration: wire.RegistrationClosed, Limits: p.e.info.Limits})
	case *wire.FedBlobGet:
		if onBlobGet != nil {
			return onBlobGet(r)
		}
		return p.blobGet(r)
	case *wire.FedCallJoin:
		if onCallJoin != nil {
			return onCallJoin(r)
		}
		f, err = wire.EncodeSuccess(&wire.FedCallJoinOK{Handle: p.callHandle(r.Room)})
	case *wire.FedCallLeave:
		f, err = wire.EncodeSuccess(&wire.OK{})
	default:
		if onLookup != nil {
			return onLookup(req)
		}
		switch r := req.(type) {
		case *wire.GetDevices:
			f, err = wire.EncodeSuccess(&wire.GetDevicesOK{Devices: []wire.DeviceInfo{{ID: 1, Keys: p.dev.keys()}}})
		case *wire.ClaimKeyPackage:
			f, err = wire.EncodeSuccess(&wire.ClaimKeyPackageOK{KeyPackage: []byte("conformance key package of " + r.Address), LastResort: true})
		default:
			return wire.EncodeError(wire.Errorf(wire.CodeUnknownRequest, "%T", req))
		}
	}
	if err != nil {
		return wire.EncodeError(err)
	}
	return f
}

// callHandle returns the peer's handle of the room of identifier room,
// choosing one at random the first time.
func (p *peer) callHandle(room []byte) uint32 {
	p.mu.Lock()
	defer p.mu.Unlock()
	if h, ok := p.callHandles[string(room)]; ok {
		return h
	}
	if p.callHandles == nil {
		p.callHandles = map[string]uint32{}
	}
	var b [4]byte
	rand.Read(b[:])
	h := binary.BigEndian.Uint32(b[:])
	p.callHandles[string(room)] = h
	return h
}

// readDatagrams records the DATAGRAMs (call media packets, section 12.4)
// that the server under test sends on a connection it dialled.
func (p *peer) readDatagrams(ctx context.Context, qc *quic.Conn) {
	for {
		b, err := qc.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		p.record(peerEvent{kind: "datagram", conn: qc, raw: b})
	}
}

// blobGet answers fed-blob-get from the peer's blobs as section 11 says a
// server answers blob-get.
func (p *peer) blobGet(r *wire.FedBlobGet) []byte {
	p.mu.Lock()
	b, ok := p.blobs[string(r.ID)]
	p.mu.Unlock()
	switch {
	case !ok:
		return wire.EncodeError(wire.Errorf(wire.CodeUnknownBlob, "no such blob"))
	case r.Offset >= uint64(len(b)):
		return wire.EncodeError(wire.Errorf(wire.CodeBadRange, "offset %d of a blob of %d bytes", r.Offset, len(b)))
	}
	end := min(r.Offset+r.Length, uint64(len(b)))
	f, err := wire.EncodeSuccess(&wire.BlobGetOK{Data: b[r.Offset:end], Size: uint64(len(b))})
	if err != nil {
		return wire.EncodeError(err)
	}
	return f
}

// dialFed opens a federation connection from the peer to the server under
// test, presenting the peer's certificate when cert is set; it sends no
// request.
func (p *peer) dialFed(ctx context.Context, cert bool) (*conn, error) {
	conf := p.e.tls.Clone()
	conf.NextProtos = []string{wire.ALPNFederation}
	if cert {
		conf.Certificates = []tls.Certificate{p.c.Certificate}
	}
	addr, err := net.ResolveUDPAddr("udp", p.e.c.Server)
	if err != nil {
		return nil, err
	}
	qc, err := p.tr.Dial(ctx, addr, conf, clientQUIC())
	if err != nil {
		return nil, err
	}
	return &conn{e: p.e, qc: qc}, nil
}

// fedConn opens a federation connection for t and, when hello is not
// empty, completes fed-hello naming that domain.
func (t *T) fedConn(hello string) *conn {
	c, err := t.env.peer.dialFed(t.ctx, true)
	t.must(err, "dial as the peer")
	t.Cleanup(c.close)
	if hello != "" {
		var ok wire.FedHelloOK
		t.do(c, &wire.FedHello{Domain: hello}, &ok)
		if ok.Domain != t.env.c.Domain {
			t.Fatalf("fed-hello-ok names %q, want %q", ok.Domain, t.env.c.Domain)
		}
	}
	return c
}

// usePeer gives t the peer's listening side exclusively, restoring its
// default behaviour when t ends.
func (t *T) usePeer() *peer {
	p := t.env.peer
	t.env.peerMu.Lock()
	p.reset()
	t.Cleanup(func() {
		p.reset()
		t.env.peerMu.Unlock()
	})
	return p
}
