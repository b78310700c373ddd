// Package server is the xchat homeserver's client API (spec/): accounts,
// device authentication, the key directory, sealed envelopes, delivery
// tokens, mailboxes and files (opaque padded blobs, spec/11-files.md),
// served over QUIC on a [store.Store], with the rate limits of
// spec/15-limits.md.
//
// Envelopes, key-directory requests and blob reads for other domains go to
// a [Federation], and a federation admits envelopes relayed from other
// domains through the Server (its AdmitRelay, GetDevices, ClaimKeyPackage,
// ServerInfo, Notify and ReadBlob). This package does not import package federation:
// package server/daemon, which assembles a homeserver process (store, keys,
// certificate, listener), wires the two together.
//
// The server handles opaque sealed bytes, tokens and public keys only; it
// links no code that could decrypt an envelope.
package server

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server/ratelimit"
	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// Registration is a registration policy.
type Registration uint8

// Registration policies.
const (
	RegistrationOpen   Registration = wire.RegistrationOpen
	RegistrationInvite Registration = wire.RegistrationInvite
	RegistrationClosed Registration = wire.RegistrationClosed
)

// ParseRegistration parses "open", "invite" or "closed".
func ParseRegistration(s string) (Registration, error) {
	switch s {
	case "open":
		return RegistrationOpen, nil
	case "invite":
		return RegistrationInvite, nil
	case "closed":
		return RegistrationClosed, nil
	}
	return 0, fmt.Errorf("registration policy %q: want open, invite or closed", s)
}

func (r Registration) String() string {
	switch r {
	case RegistrationOpen:
		return "open"
	case RegistrationInvite:
		return "invite"
	case RegistrationClosed:
		return "closed"
	}
	return fmt.Sprintf("registration(%d)", uint8(r))
}

// Config configures a Server.
type Config struct {
	Domain       string
	Store        store.Store
	Certificate  tls.Certificate    // for Domain
	CertKey      ed25519.PrivateKey // signs sender certificates
	ResetKey     quic.StatelessResetKey
	Registration Registration
	Logger       *slog.Logger // nil: discard
	// ShutdownGrace bounds how long in-flight requests may take to finish
	// once shutdown starts. Zero means 10 seconds.
	ShutdownGrace time.Duration
	// MaxConnections bounds concurrent client connections; more are
	// refused. Zero means DefaultMaxConnections.
	MaxConnections int
	// Limits are the per-address, per-account and per-device policy
	// limits; zero fields take their defaults.
	Limits Limits
	// PollInterval, when not zero, makes every connected device's pusher
	// look at its mailbox that often even without a wake-up: for stores
	// shared by several processes, where a notification may be lost.
	PollInterval time.Duration
	// Now is the clock of link-token issuance and expiry and of blob
	// expiry; nil: time.Now.
	// Tests set it to move time without waiting.
	Now func() time.Time
	// BlobSweep is how often expired blobs are deleted; zero:
	// DefaultBlobSweep. Tests shorten it.
	BlobSweep time.Duration
	// NewFederation makes the server's relay to and from other domains,
	// given the server as the local side that relayed envelopes and
	// key-directory queries are admitted into. Required; package daemon
	// gives one that makes a federation.Federation.
	NewFederation func(local *Server) (Federation, error)
	// CallQueue is how many media packets wait for one destination
	// connection of the call relay before more are dropped; zero:
	// DefaultCallQueue.
	CallQueue int
	// CallRetry and CallMaxRetry are the first and the largest backoff of
	// a call room's link to another domain that failed (spec/08 section
	// 8.9.3); zero: 1 s and 300 s. Tests shorten them.
	CallRetry, CallMaxRetry time.Duration
}

// DefaultMaxConnections is the default bound on concurrent connections.
const DefaultMaxConnections = 100000

// Registration attempts per source IP address: a burst, then one per
// interval (spec/15-limits.md).
const (
	registrationBurst  = 20
	registrationRefill = 30 * time.Second
)

// Requests of one device that reach other domains (remote get-devices,
// claim-key-package, get-domain-key): a burst, then one per interval.
const (
	lookupBurst  = 100
	lookupRefill = time.Second
)

// drainWait bounds how long shutdown waits, after the last response was
// written, for clients to receive it and close before connections are
// closed.
const drainWait = 500 * time.Millisecond

// Server is a homeserver. Create it with New and run it with Serve.
type Server struct {
	cfg  Config
	log  *slog.Logger
	hub  *hub
	lane *ratelimit.Limiter // request-lane budget per recipient account
	// registrations limits register requests per source IP address.
	registrations *ratelimit.Limiter
	// lookups limits each device's requests that reach other domains.
	lookups *ratelimit.Limiter
	// authFailAddr and authFailAccount are the budgets of failed
	// authentications per source address and per account named.
	authFailAddr, authFailAccount *ratelimit.Limiter
	// claimsRequester and claimsTarget are the budgets of one-time key
	// packages claimed per requesting account and per target device.
	claimsRequester, claimsTarget *ratelimit.Limiter
	// lookupMisses is the budget per account of local lookups that name
	// an unknown account or device.
	lookupMisses *ratelimit.Limiter
	tlsConf      *tls.Config // for clients (xchat/1)
	fedTLS       *tls.Config // for peers (xchat-fed/1)
	fed          Federation
	devices      deviceCache
	// frames bounds the request frames read at once on all client
	// connections, accountFrames those of each account (framebudget.go).
	frames        *wire.Budget
	accountFrames accountFrames
	// partBuffers holds buffers of one blob part for reads (blobs.go).
	partBuffers sync.Pool
	// calls is the call relay (calls.go), nil when calls are not relayed.
	calls *relay

	mu    sync.Mutex
	conns map[*conn]struct{}
	// addrConns counts the client connections per source address key
	// (addressKey), accountConns the authenticated ones per account.
	addrConns, accountConns map[string]int
	// requests counts in-flight requests, for graceful shutdown.
	requests sync.WaitGroup
	closing  bool
}

// New returns a Server for cfg.
func New(cfg Config) (*Server, error) {
	if err := wire.ValidateDomain(cfg.Domain); err != nil {
		return nil, fmt.Errorf("server: domain: %w", err)
	}
	if cfg.Store == nil {
		return nil, errors.New("server: no store")
	}
	if len(cfg.CertKey) != ed25519.PrivateKeySize {
		return nil, errors.New("server: no sender-certificate key")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.ShutdownGrace == 0 {
		cfg.ShutdownGrace = 10 * time.Second
	}
	if cfg.MaxConnections == 0 {
		cfg.MaxConnections = DefaultMaxConnections
	}
	cfg.Limits = cfg.Limits.withDefaults()
	if cfg.Limits.BlobRetention < wire.Retention {
		return nil, fmt.Errorf("server: blob retention %s is shorter than the mailbox retention %s", cfg.Limits.BlobRetention, wire.Retention)
	}
	if cfg.BlobSweep <= 0 {
		cfg.BlobSweep = DefaultBlobSweep
	}
	if cfg.NewFederation == nil {
		return nil, errors.New("server: no federation")
	}
	if cfg.Registration > RegistrationClosed {
		return nil, fmt.Errorf("server: unknown registration policy %d", cfg.Registration)
	}
	s := &Server{
		cfg:             cfg,
		log:             cfg.Logger,
		hub:             newHub(),
		lane:            ratelimit.New(wire.RequestLaneBurst, wire.RequestLaneRefill),
		registrations:   cfg.Limits.Registrations.limiter(),
		lookups:         ratelimit.New(lookupBurst, lookupRefill),
		authFailAddr:    cfg.Limits.AuthFailuresPerAddress.limiter(),
		authFailAccount: cfg.Limits.AuthFailuresPerAccount.limiter(),
		claimsRequester: cfg.Limits.ClaimsPerRequester.limiter(),
		claimsTarget:    cfg.Limits.ClaimsPerTarget.limiter(),
		lookupMisses:    cfg.Limits.LookupMisses.limiter(),
		addrConns:       make(map[string]int),
		accountConns:    make(map[string]int),
		tlsConf: &tls.Config{
			Certificates: []tls.Certificate{cfg.Certificate},
			MinVersion:   tls.VersionTLS13,
			NextProtos:   []string{wire.ALPN},
		},
		conns:  make(map[*conn]struct{}),
		frames: wire.NewBudget(frameBudgetServer),
	}
	s.partBuffers.New = newPartBuffer
	if cfg.Limits.MaxCallMembers > 0 {
		s.calls = newRelay(s)
	}
	fed, err := cfg.NewFederation(s)
	if err != nil {
		return nil, err
	}
	s.fed = fed
	s.fedTLS = fed.ListenTLS(cfg.Certificate)
	// One port for clients and peers: the ALPN the peer offers picks the
	// configuration; only peers are asked for a certificate.
	clientTLS := s.tlsConf.Clone()
	s.tlsConf.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(hello.SupportedProtos, wire.ALPNFederation) {
			return s.fedTLS, nil
		}
		return clientTLS, nil
	}
	s.tlsConf.NextProtos = []string{wire.ALPN, wire.ALPNFederation}
	return s, nil
}

// Flow-control windows of a connection's receiving side. A request stream
// that waits for frame budget (framebudget.go) keeps the bytes it has
// received unread, and they count against the connection's window; so
// that the requests admitted can always finish arriving, the connection's
// window holds every stream's initial window and a whole frame more. It is
// also what a peer can make the connection buffer from the start (5.2 MiB;
// quic-go's default connection window grows to 15 MiB), which is why a
// stream starts small: its window grows from its initial size while it is
// read.
const (
	streamWindow     = 32 << 10
	connectionWindow = wire.MaxConcurrentStreams*streamWindow + 2*wire.MaxFrame
)

func quicConfig() *quic.Config {
	return &quic.Config{
		// quic-go gives up on a handshake after twice this.
		HandshakeIdleTimeout:           wire.HandshakeDeadline / 2,
		MaxIdleTimeout:                 wire.IdleTimeout,
		MaxIncomingStreams:             wire.MaxConcurrentStreams,
		MaxIncomingUniStreams:          -1,
		Allow0RTT:                      false,
		InitialStreamReceiveWindow:     streamWindow,
		InitialConnectionReceiveWindow: connectionWindow,
		MaxConnectionReceiveWindow:     connectionWindow,
		// Call media travels in DATAGRAMs (spec/12-calls.md section 12.5),
		// on client and federation connections alike.
		EnableDatagrams: true,
	}
}

// Serve accepts connections on pc until ctx is cancelled, then shuts down
// gracefully: it stops accepting, lets in-flight requests finish (within
// the shutdown grace), closes every connection and returns nil. Serve does
// not close the store.
func (s *Server) Serve(ctx context.Context, pc net.PacketConn) error {
	tr := &quic.Transport{Conn: pc, StatelessResetKey: &s.cfg.ResetKey}
	defer tr.Close()
	qconf := quicConfig()
	base := qconf.Clone()
	// Refuse connections beyond the limit during the handshake, with
	// CONNECTION_REFUSED (spec/02-transport.md).
	// The per-address limit is checked here too, on the address of the
	// Initial packet; newConn checks both again on the address of the
	// established connection.
	qconf.GetConfigForClient = func(info *quic.ClientInfo) (*quic.Config, error) {
		s.mu.Lock()
		n := len(s.conns)
		fromAddr := s.addrConns[addressKey(info.RemoteAddr)]
		s.mu.Unlock()
		if n+s.fed.Conns() >= s.cfg.MaxConnections {
			return nil, errors.New("connection limit reached")
		}
		if lim := s.cfg.Limits.ConnsPerAddress; lim > 0 && fromAddr >= lim {
			return nil, errors.New("connection limit per address reached")
		}
		return base, nil
	}
	ln, err := tr.Listen(s.tlsConf, qconf)
	if err != nil {
		return fmt.Errorf("server: listen: %w", err)
	}
	fedCtx, stopFed := context.WithCancel(context.Background())
	defer stopFed()
	if n, ok := s.cfg.Store.(store.Notifier); ok {
		go s.listen(fedCtx, n)
	}
	if n, ok := s.cfg.Store.(store.RemovalNotifier); ok {
		go s.listenRemovals(fedCtx, n)
	}
	if err := s.fed.Start(fedCtx, tr); err != nil {
		return fmt.Errorf("server: federation: %w", err)
	}
	sweepCtx, stopSweep := context.WithCancel(context.Background())
	defer stopSweep()
	go s.sweep(sweepCtx)
	if s.calls != nil {
		s.calls.start(fedCtx)
		defer s.calls.stop()
	}
	var blobSweeper sync.WaitGroup
	blobSweeper.Go(func() { s.sweepBlobs(sweepCtx, s.cfg.BlobSweep) })

	connCtx, cancelConns := context.WithCancel(context.Background())
	defer cancelConns()
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	s.log.Info("serving", "domain", s.cfg.Domain, "addr", pc.LocalAddr().String(),
		"registration", s.cfg.Registration.String())
	for {
		qc, err := ln.Accept(ctx)
		if err != nil {
			break
		}
		if qc.ConnectionState().TLS.NegotiatedProtocol == wire.ALPNFederation {
			go s.fed.ServeConn(connCtx, qc)
			continue
		}
		c := s.newConn(qc)
		if c == nil {
			// Shutting down, or a limit was reached during the handshake.
			qc.CloseWithError(wire.CloseServerShutdown, "shutting down, or at the connection limit of the server or of this address")
			continue
		}
		go c.serve(connCtx)
	}
	s.shutdown()
	// The blob sweeper stops with the server, before the store is closed.
	stopSweep()
	blobSweeper.Wait()
	return nil
}

// shutdown waits for in-flight requests, ends every push stream, gives
// clients a moment to read their last responses, then closes every
// connection.
func (s *Server) shutdown() {
	s.mu.Lock()
	s.closing = true
	s.mu.Unlock()
	grace := time.NewTimer(s.cfg.ShutdownGrace)
	defer grace.Stop()
	done := make(chan struct{})
	go func() {
		s.requests.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-grace.C:
		s.log.Warn("shutdown grace elapsed with requests in flight")
	}
	s.mu.Lock()
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	s.mu.Unlock()
	for _, c := range conns {
		c.stopPush()
	}
	drain := time.NewTimer(drainWait)
	defer drain.Stop()
wait:
	for _, c := range conns {
		select {
		case <-c.qc.Context().Done():
		case <-drain.C:
			break wait
		}
	}
	if s.calls != nil {
		// Before the federation stops: rooms linked with other domains
		// are unlinked by fed-call-leave (spec/12-calls.md section 12.3).
		s.calls.closeAll(drainWait)
	}
	for _, c := range conns {
		c.qc.CloseWithError(wire.CloseServerShutdown, "server shutting down")
	}
	s.fed.Stop()
	s.log.Info("stopped", "connections_closed", len(conns))
}

// beginRequest registers an in-flight request; false once shutdown began.
func (s *Server) beginRequest() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.requests.Add(1)
	return true
}

// listen turns a shared store's notifications about envelopes stored by
// other processes into wake-ups of this process's pushers, re-listening
// after failures until ctx ends.
func (s *Server) listen(ctx context.Context, n store.Notifier) {
	for ctx.Err() == nil {
		err := n.Listen(ctx, s.hub.notify)
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("store notifications interrupted; pushers poll meanwhile", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// sweep deletes envelopes past the retention limit, at start and hourly.
func (s *Server) sweep(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		n, err := s.cfg.Store.Expire(ctx, time.Now().Add(-wire.Retention))
		if err != nil && ctx.Err() == nil {
			s.log.Error("retention sweep", "err", err)
		} else if n > 0 {
			s.log.Info("retention sweep", "expired", n)
		}
		if n, err := s.cfg.Store.DeleteExpiredLinks(ctx, s.now()); err != nil && ctx.Err() == nil {
			s.log.Error("link token sweep", "err", err)
		} else if n > 0 {
			s.log.Info("link token sweep", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
