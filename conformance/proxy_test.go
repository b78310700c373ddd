package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server/devca"
	"github.com/xchat-im/xchat/spec/wire"
)

// proxy terminates QUIC and TLS in front of a real homeserver, with a
// certificate of the same domain from the same development CA, and relays
// every request stream and the push stream. A mutation, when set, breaks
// one rule of the specification on the way: the proxy with its mutation is
// a deliberately broken server (a mutant). It exists in test code only.
type proxy struct {
	t        *testing.T
	upstream string
	domain   string
	roots    *x509.CertPool
	upCert   tls.Certificate // presented upstream on federation connections
	out      bool            // in front of the peer: the server under test dials it
	m        *mutation
	listen   string // the proxy's address
	// acceptConn accepts the next connection.
	acceptConn func(context.Context) (*quic.Conn, error)

	mu       sync.Mutex
	pairs    map[string]*pair // by pairKey
	sessions []*session       // authenticated client sessions
}

type pair struct {
	ready chan struct{}
	up    *quic.Conn
}

// session is one client (or peer) connection through the proxy.
type session struct {
	px      *proxy
	down    *quic.Conn
	up      *quic.Conn
	fed     bool
	mu      sync.Mutex
	address string // the authenticated account
	device  uint32 // and device
	hello   bool   // the proxy completed fed-hello upstream itself
	authed  chan struct{}

	pushMu  sync.Mutex
	pushOut *quic.SendStream // the push stream to the client, once open
}

func (s *session) addr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.address
}

// dev returns the authenticated device.
func (s *session) dev() uint32 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.device
}

// inject writes push payloads to the client of s, if its push stream is
// open; it reports whether it wrote them.
func (s *session) inject(ps ...[]byte) bool {
	s.pushMu.Lock()
	defer s.pushMu.Unlock()
	if s.pushOut == nil {
		return false
	}
	for _, p := range ps {
		if _, err := s.pushOut.Write(wire.AppendFrame(nil, p)); err != nil {
			return false
		}
	}
	return true
}

// others returns the live sessions of other devices of the account of s.
func (s *session) others() []*session {
	addr, dev := s.addr(), s.dev()
	s.px.mu.Lock()
	defer s.px.mu.Unlock()
	var out []*session
	for _, o := range s.px.sessions {
		if o != s && o.addr() == addr && o.dev() != dev && o.down.Context().Err() == nil {
			out = append(out, o)
		}
	}
	return out
}

// mutation is how a mutant breaks the specification. Every hook is
// optional.
type mutation struct {
	name   string
	target string // the test id that must catch it
	// request sees a request payload; it returns the payload to forward,
	// or a response payload to answer with at once.
	request func(s *session, p []byte) (fwd, resp []byte)
	// response sees a response payload to the request req.
	response func(s *session, req, resp []byte) []byte
	// push sees a push frame payload and returns the payloads to write.
	push func(s *session, p []byte) [][]byte
	// pushStart returns payloads to write first on a push stream.
	pushStart func(s *session) [][]byte
	// early forwards a request as soon as its frame is complete, before
	// the client's FIN.
	early bool
	// fedConnect runs when a federation connection is set up.
	fedConnect func(s *session)
	// outbound puts a proxy with this mutation also between the server
	// under test and the suite's peer (the server dials it); its sessions
	// have out set.
	outbound bool
	// allow0RTT makes the proxy accept 0-RTT data.
	allow0RTT bool
	// insecureUpstream makes an outbound proxy accept any certificate
	// from the peer.
	insecureUpstream bool
	// datagram sees a DATAGRAM (a call media packet) going up (from the
	// suite to the server) or down, and returns the DATAGRAMs to send on
	// in the same direction.
	datagram func(s *session, up bool, p []byte) [][]byte
}

func startProxy(t *testing.T, upstream, caDir string, m *mutation) *proxy {
	return startProxyAt(t, "127.0.0.1:0", upstream, caDir, m, false)
}

// startOutProxy starts a proxy at listen in front of the suite's peer at
// upstream: it presents the peer's certificate to the server under test
// and the server's certificate to the peer.
func startOutProxy(t *testing.T, listen, upstream, caDir string, m *mutation) *proxy {
	return startProxyAt(t, listen, upstream, caDir, m, true)
}

func startProxyAt(t *testing.T, listen, upstream, caDir string, m *mutation, out bool) *proxy {
	t.Helper()
	own, other := "a.test", peerDomain
	if out {
		own, other = peerDomain, "a.test"
	}
	cert, err := tls.LoadX509KeyPair(devca.DomainCertPath(caDir, own), devca.DomainKeyPath(caDir, own))
	if err != nil {
		t.Fatal(err)
	}
	upCert, err := tls.LoadX509KeyPair(devca.DomainCertPath(caDir, other), devca.DomainKeyPath(caDir, other))
	if err != nil {
		t.Fatal(err)
	}
	pemBytes, err := os.ReadFile(devca.CertPath(caDir))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	if m == nil {
		m = &mutation{name: "none"}
	}
	px := &proxy{t: t, upstream: upstream, domain: own, roots: roots, upCert: upCert, out: out, m: m, pairs: map[string]*pair{}}
	conf := &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, NextProtos: []string{wire.ALPN, wire.ALPNFederation}}
	conf.GetConfigForClient = func(chi *tls.ClientHelloInfo) (*tls.Config, error) {
		c := conf.Clone()
		c.GetConfigForClient = nil
		if len(chi.SupportedProtos) == 1 && chi.SupportedProtos[0] == wire.ALPNFederation {
			c.ClientAuth = tls.RequireAnyClientCert
		}
		return c, nil
	}
	qconf := &quic.Config{MaxIncomingStreams: 100, MaxIncomingUniStreams: -1, Allow0RTT: m.allow0RTT, EnableDatagrams: true}
	ctx, cancel := context.WithCancel(context.Background())
	if m.allow0RTT {
		el, err := quic.ListenAddrEarly(listen, conf, qconf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); el.Close() })
		px.listen, px.acceptConn = el.Addr().String(), el.Accept
	} else {
		ln, err := quic.ListenAddr(listen, conf, qconf)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cancel(); ln.Close() })
		px.listen, px.acceptConn = ln.Addr().String(), ln.Accept
	}
	go px.accept(ctx)
	return px
}

// pairKey keys a client connection by a TLS exporter of the connection
// between the suite and the proxy, which both ends compute alike and no
// other connection shares.
func pairKey(qc *quic.Conn) string {
	cs := qc.ConnectionState().TLS
	k, _ := cs.ExportKeyingMaterial("EXPORTER-conformance-proxy-pair", nil, 16)
	return string(k)
}

func (px *proxy) addr() string { return px.listen }

// outSession reports whether s is a connection of the server under test
// to the peer.
func (s *session) outSession() bool { return s.px.out }

func (px *proxy) pairFor(key string) *pair {
	px.mu.Lock()
	defer px.mu.Unlock()
	p := px.pairs[key]
	if p == nil {
		p = &pair{ready: make(chan struct{})}
		px.pairs[key] = p
	}
	return p
}

// exporter is the suite's test hook: the exporter of the proxy's upstream
// connection for the suite's connection qc.
func (px *proxy) exporter(qc *quic.Conn) ([]byte, error) {
	p := px.pairFor(pairKey(qc))
	select {
	case <-p.ready:
	case <-time.After(10 * time.Second):
		return nil, errors.New("proxy: no upstream connection")
	}
	if p.up == nil {
		return nil, errors.New("proxy: upstream connection failed")
	}
	cs := p.up.ConnectionState().TLS
	return cs.ExportKeyingMaterial(wire.ExporterLabel, nil, 32)
}

func (px *proxy) accept(ctx context.Context) {
	for {
		down, err := px.acceptConn(ctx)
		if err != nil {
			return
		}
		go px.serve(ctx, down)
	}
}

func (px *proxy) serve(ctx context.Context, down *quic.Conn) {
	alpn := down.ConnectionState().TLS.NegotiatedProtocol
	p := &pair{ready: make(chan struct{})} // federation connections need none
	if alpn == wire.ALPN {
		select { // a connection with 0-RTT is accepted before its handshake completes
		case <-down.HandshakeComplete():
		case <-down.Context().Done():
			return
		}
		p = px.pairFor(pairKey(down))
	}
	conf := &tls.Config{RootCAs: px.roots, ServerName: px.domain, NextProtos: []string{alpn}, MinVersion: tls.VersionTLS13}
	fed := alpn == wire.ALPNFederation
	if fed {
		conf.Certificates = []tls.Certificate{px.upCert}
	}
	conf.InsecureSkipVerify = px.out && px.m.insecureUpstream
	up, err := quic.DialAddr(ctx, px.upstream, conf, clientQUIC())
	if err != nil {
		close(p.ready)
		down.CloseWithError(wire.CloseInternal, "upstream")
		return
	}
	p.up = up
	close(p.ready)
	s := &session{px: px, down: down, up: up, fed: fed, authed: make(chan struct{})}
	go func() {
		select {
		case <-up.Context().Done():
			var ae *quic.ApplicationError
			if errors.As(context.Cause(up.Context()), &ae) {
				down.CloseWithError(ae.ErrorCode, ae.ErrorMessage)
			} else {
				down.CloseWithError(wire.CloseInternal, "upstream closed")
			}
		case <-down.Context().Done():
			var ae *quic.ApplicationError
			if errors.As(context.Cause(down.Context()), &ae) && ae.Remote {
				up.CloseWithError(ae.ErrorCode, ae.ErrorMessage)
			} else {
				up.CloseWithError(wire.CloseNoError, "")
			}
		}
	}()
	if fed && px.m.fedConnect != nil {
		px.m.fedConnect(s)
	}
	if !fed {
		go s.pushes(ctx)
	}
	go s.datagrams(ctx, true)
	go s.datagrams(ctx, false)
	for {
		st, err := down.AcceptStream(ctx)
		if err != nil {
			return
		}
		go s.serveStream(ctx, st)
	}
}

// datagrams relays the DATAGRAMs of one direction (up: from the suite to
// the server), through the mutation's datagram hook.
func (s *session) datagrams(ctx context.Context, up bool) {
	from, to := s.up, s.down
	if up {
		from, to = s.down, s.up
	}
	for {
		b, err := from.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		out := [][]byte{b}
		if s.px.m.datagram != nil {
			out = s.px.m.datagram(s, up, b)
		}
		for _, p := range out {
			to.SendDatagram(p)
		}
	}
}

// pushes relays the push stream, if upstream opens one.
func (s *session) pushes(ctx context.Context) {
	in, err := s.up.AcceptUniStream(ctx)
	if err != nil {
		return
	}
	select { // the push stream can come before the response to authenticate
	case <-s.authed:
	case <-time.After(10 * time.Second):
	}
	out, err := s.down.OpenUniStreamSync(ctx)
	if err != nil {
		return
	}
	s.pushMu.Lock()
	s.pushOut = out
	s.pushMu.Unlock()
	defer func() {
		s.pushMu.Lock()
		out.Close()
		s.pushOut = nil
		s.pushMu.Unlock()
	}()
	write := func(p []byte) bool {
		s.pushMu.Lock()
		defer s.pushMu.Unlock()
		_, err := out.Write(wire.AppendFrame(nil, p))
		return err == nil
	}
	if s.px.m.pushStart != nil {
		for _, p := range s.px.m.pushStart(s) {
			if !write(p) {
				return
			}
		}
	}
	for {
		p, err := wire.ReadFrame(in, wire.MaxFrame)
		if err != nil {
			return
		}
		outs := [][]byte{p}
		if s.px.m.push != nil {
			outs = s.px.m.push(s, p)
		}
		for _, o := range outs {
			if !write(o) {
				return
			}
		}
	}
}

// serveStream relays one request stream.
func (s *session) serveStream(ctx context.Context, down *quic.Stream) {
	m := s.px.m
	var hdr [8]byte
	if _, err := io.ReadFull(down, hdr[:1]); err != nil {
		s.passThrough(ctx, down, nil)
		return
	}
	n := 1 << (hdr[0] >> 6)
	if _, err := io.ReadFull(down, hdr[1:n]); err != nil {
		s.passThrough(ctx, down, hdr[:1])
		return
	}
	length := hdr[0] & 0x3f
	v := uint64(length)
	for _, c := range hdr[1:n] {
		v = v<<8 | uint64(c)
	}
	if v > wire.MaxFrame+64 && m.name != "frame-limit" {
		s.passThrough(ctx, down, hdr[:n])
		return
	}
	var rest []byte
	var err error
	if m.early && v <= wire.MaxFrame {
		rest = make([]byte, v)
		_, err = io.ReadFull(down, rest)
		if err == nil {
			go io.Copy(io.Discard, down)
		}
	} else {
		rest, err = io.ReadAll(io.LimitReader(down, 4<<20))
	}
	raw := append(append([]byte(nil), hdr[:n]...), rest...)
	if err != nil {
		s.passThrough(ctx, down, raw)
		return
	}
	if _, _, perr := wire.ParseVarint(hdr[:n]); perr != nil || v == 0 || len(raw) != n+int(v) {
		s.forward(ctx, down, raw, nil)
		return
	}
	payload := raw[n:]
	fwd := payload
	if m.request != nil {
		var resp []byte
		fwd, resp = m.request(s, payload)
		if resp != nil {
			down.Write(wire.AppendFrame(nil, resp))
			down.Close()
			return
		}
	}
	s.forward(ctx, down, wire.AppendFrame(nil, fwd), fwd)
}

// forward sends raw upstream and relays the response, through the
// response hook when the request payload req is known.
func (s *session) forward(ctx context.Context, down *quic.Stream, raw, req []byte) {
	resp, err := s.roundTrip(ctx, raw)
	if err != nil {
		down.CancelWrite(wire.StreamRequestCancelled)
		return
	}
	if req != nil {
		s.track(req, resp)
		if s.px.m.response != nil {
			resp = s.px.m.response(s, req, resp)
		}
	}
	down.Write(wire.AppendFrame(nil, resp))
	down.Close()
}

// roundTrip sends a raw request stream upstream and returns the response
// payload.
func (s *session) roundTrip(ctx context.Context, raw []byte) ([]byte, error) {
	up, err := s.up.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	up.SetDeadline(time.Now().Add(30 * time.Second))
	up.Write(raw)
	up.Close()
	return wire.ReadFrame(up, wire.MaxFrame)
}

// request sends a request payload upstream and returns the response
// payload.
func (s *session) request(ctx context.Context, p []byte) ([]byte, error) {
	return s.roundTrip(ctx, wire.AppendFrame(nil, p))
}

// passThrough relays a stream byte for byte after the bytes already read.
func (s *session) passThrough(ctx context.Context, down *quic.Stream, head []byte) {
	up, err := s.up.OpenStreamSync(ctx)
	if err != nil {
		down.CancelWrite(wire.StreamRequestCancelled)
		return
	}
	up.Write(head)
	go func() {
		if _, err := io.Copy(up, down); err != nil {
			down.CancelRead(wire.StreamRequestCancelled)
		}
		up.Close()
	}()
	io.Copy(down, up)
	down.Close()
}

// track learns the authenticated address from register and authenticate.
func (s *session) track(req, resp []byte) {
	if len(resp) < 3 || resp[1] != 0 || resp[2] != 0 { // success: {0: 0, ...}
		return
	}
	r, err := wire.DecodeRequest(req)
	if err != nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.address != "" {
		return
	}
	switch r := r.(type) {
	case *wire.Register:
		var ok wire.RegisterOK
		if wire.DecodeResponse(resp, &ok) != nil {
			return
		}
		s.address, s.device = r.Address, ok.Device
	case *wire.Authenticate:
		s.address, s.device = r.Address, r.Device
	default:
		return
	}
	close(s.authed)
	s.px.mu.Lock()
	s.px.sessions = append(s.px.sessions, s)
	s.px.mu.Unlock()
}

// proxied returns the suite configuration for a proxy in front of the
// server of cfg.
func proxied(cfg Config, px *proxy) Config {
	cfg.Server = px.addr()
	cfg.exporter = px.exporter
	return cfg
}
