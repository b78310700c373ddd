// Package servertest runs real homeservers in tests: a real QUIC listener on
// a loopback port, a real SQLite store in a temporary directory (or a fresh
// PostgreSQL schema) and a development CA, started with package daemon as
// xchatd serve starts them.
package servertest

import (
	"database/sql"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"bytes"
	"cmp"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/devca"
)

// Options configure a test homeserver.
type Options struct {
	Domain       string // default "a.test"
	Registration server.Registration
	// MaxConnections bounds concurrent connections; zero: the default.
	MaxConnections int
	// Limits are the server's policy limits. Every test connects from
	// 127.0.0.1, so the per-address limits (ConnsPerAddress and
	// AuthFailuresPerAddress) are off unless set here; the others take the
	// server's defaults.
	Limits server.Limits
	// CADir, when set, is a development CA directory to issue the server's
	// certificate from (and which the server trusts for peers); otherwise
	// the server gets a CA of its own.
	CADir string
	// Listen is the UDP address; default 127.0.0.1:0.
	Listen string
	// Peers, AllowDomains and DenyDomains configure federation.
	Peers                     map[string]string
	AllowDomains, DenyDomains []string
	// OutboundTTL is how long an envelope may wait for its peer; zero:
	// the default.
	OutboundTTL time.Duration
	// DB is a PostgreSQL URL for the store; empty: SQLite in the data
	// directory. Data, when set, is the data directory (shared by several
	// servers of one domain).
	DB, Data string
	// Lease and Scan tune the outbound queue's claims; zero: the defaults.
	Lease, Scan time.Duration
	// Now is the server's clock for link tokens and blob expiry; nil:
	// time.Now. See Clock.
	Now func() time.Time
	// BlobSweep is how often the server deletes expired blobs; zero: the
	// default. The blob limits are in Limits.
	BlobSweep time.Duration
}

// Clock is a settable clock for Options.Now, safe for concurrent use.
type Clock struct {
	mu sync.Mutex
	t  time.Time
}

// NewClock returns a clock that reads t until moved.
func NewClock(t time.Time) *Clock { return &Clock{t: t} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

// Advance moves the clock forward by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// Server is a running test homeserver.
type Server struct {
	t      testing.TB
	cfg    daemon.Config
	Domain string
	Addr   string // host:port, the same across restarts
	CAFile string // PEM of the CA that issued the server's certificate
	Data   string // data directory

	mu   sync.Mutex
	d    *daemon.Daemon
	logs *syncBuffer
}

// Start starts a homeserver; it is stopped when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Domain == "" {
		o.Domain = "a.test"
	}
	dir := t.TempDir()
	caDir := o.CADir
	if caDir == "" {
		caDir = filepath.Join(dir, "ca")
	}
	ca, err := devca.LoadOrCreate(caDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Issue(caDir, o.Domain); err != nil {
		t.Fatal(err)
	}
	s := &Server{
		t:      t,
		Domain: o.Domain,
		CAFile: devca.CertPath(caDir),
		Data:   cmp.Or(o.Data, filepath.Join(dir, "data")),
		Addr:   cmp.Or(o.Listen, "127.0.0.1:0"),
		logs:   &syncBuffer{},
	}
	lim := o.Limits
	if lim.ConnsPerAddress == 0 {
		lim.ConnsPerAddress = -1
	}
	if lim.AuthFailuresPerAddress.Burst == 0 {
		lim.AuthFailuresPerAddress.Burst = -1
	}
	s.cfg = daemon.Config{
		Domain:         o.Domain,
		DataDir:        s.Data,
		TLSCert:        devca.DomainCertPath(caDir, o.Domain),
		TLSKey:         devca.DomainKeyPath(caDir, o.Domain),
		Registration:   o.Registration,
		MaxConnections: o.MaxConnections,
		Limits:         lim,
		Peers:          o.Peers,
		TrustCAs:       []string{devca.CertPath(caDir)},
		AllowDomains:   o.AllowDomains,
		DenyDomains:    o.DenyDomains,
		Retry:          50 * time.Millisecond,
		MaxRetry:       time.Second,
		OutboundTTL:    o.OutboundTTL,
		DB:             o.DB,
		Lease:          o.Lease,
		Scan:           o.Scan,
		Now:            o.Now,
		BlobSweep:      o.BlobSweep,
		Logger:         slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	s.start()
	t.Cleanup(func() { s.Stop() })
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.cfg.Listen = s.Addr
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	d, err := daemon.Start(ctx, s.cfg)
	if err != nil {
		s.t.Fatalf("servertest: start: %v", err)
	}
	s.Addr = d.Addr().String()
	s.mu.Lock()
	s.d = d
	s.mu.Unlock()
}

// Stop shuts the server down gracefully (as on SIGTERM) and waits until its
// store is closed. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	d := s.d
	s.d = nil
	s.mu.Unlock()
	if d == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := d.Close(ctx); err != nil {
		s.t.Errorf("servertest: server stopped with %v", err)
	}
}

// Restart stops the server and starts it again on the same address and data
// directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Logs returns everything the server logged so far.
func (s *Server) Logs() []byte { return s.logs.Bytes() }

// DBPath returns the path of the server's SQLite database.
func (s *Server) DBPath() string { return filepath.Join(s.Data, daemon.DBFile) }

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return bytes.Clone(b.b.Bytes())
}

// StartFederation starts one homeserver for each domain, all with
// certificates from one development CA, each with static peer entries for
// all the others (fast relay retries for tests). Use Options for the
// settings every server shares; its Domain, CADir, Listen and Peers are
// set here.
func StartFederation(t testing.TB, o Options, domains ...string) map[string]*Server {
	t.Helper()
	caDir := filepath.Join(t.TempDir(), "ca")
	addrs := make(map[string]string, len(domains))
	for _, d := range domains {
		addrs[d] = freeUDPAddr(t)
	}
	servers := make(map[string]*Server, len(domains))
	for _, d := range domains {
		peers := make(map[string]string)
		for _, p := range domains {
			if p != d {
				peers[p] = addrs[p]
			}
		}
		so := o
		so.Domain, so.CADir, so.Listen, so.Peers = d, caDir, addrs[d], peers
		servers[d] = Start(t, so)
	}
	return servers
}

// freeUDPAddr returns a loopback UDP address that was free a moment ago.
func freeUDPAddr(t testing.TB) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// MailboxCount returns how many envelopes wait in all mailboxes of the
// SQLite database at path, read through a read-only connection.
func MailboxCount(t testing.TB, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM mailbox`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// CallStats returns the running server's call relay counters (zero when
// stopped).
func (s *Server) CallStats() server.CallStats {
	if h := s.Homeserver(); h != nil {
		return h.CallStats()
	}
	return server.CallStats{}
}

// Homeserver returns the running server's *server.Server (nil when
// stopped), for calling what federation calls (PeerCallJoin, PeerPacket).
func (s *Server) Homeserver() *server.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.d == nil {
		return nil
	}
	return s.d.Server()
}
