package server

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/federation"
	"github.com/xchat-im/xchat/spec/wire"
)

// Options configure a homeserver process (xchatd serve).
type Options struct {
	Domain       string
	Listen       string // UDP address
	DataDir      string
	TLSCert      string // PEM certificate chain; empty: development CA
	TLSKey       string
	Registration Registration
	// MaxConnections bounds concurrent client connections; zero: the
	// default.
	MaxConnections int
	// Peers are static federation peers, DOMAIN to HOST:PORT.
	Peers map[string]string
	// TrustCAs are PEM files of extra roots for peers' certificates, added
	// to the system roots.
	TrustCAs []string
	// AllowDomains, when not empty, are the only domains that federate;
	// DenyDomains never do.
	AllowDomains, DenyDomains []string
	// DB is a PostgreSQL URL; empty: the embedded SQLite store in DataDir.
	// Several processes of one domain may share one database; they must
	// share the data directory's key files too.
	DB string
	// Retry and MaxRetry tune the relay backoff, OutboundTTL how long an
	// envelope may wait for its peer, Lease how long a relay worker holds
	// its claims and Scan how often the queue is searched for orphaned
	// work; zero: the defaults.
	Retry, MaxRetry, OutboundTTL, Lease, Scan time.Duration
	// Now is the clock of link tokens (Config.Now); nil: time.Now.
	Now    func() time.Time
	Logger *slog.Logger
	// Out receives the lines a user should read (paths of generated
	// certificates, the listening address). Nil: discarded.
	Out io.Writer
}

// sharedStorePoll is how often pushers look at their mailbox when the
// store is shared with other processes, in case a notification was lost.
const sharedStorePoll = 2 * time.Second

// Files in the data directory.
const (
	dbFile       = "xchatd.db"
	certKeyFile  = "sender-cert.key"
	resetKeyFile = "stateless-reset.key"
	devCADir     = "dev-ca"
)

// Run runs a homeserver until ctx is cancelled, then shuts it down
// gracefully and closes its store. ready, if not nil, is called with the
// bound address once the server accepts connections.
func Run(ctx context.Context, o Options, ready func(net.Addr)) error {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if err := wire.ValidateDomain(o.Domain); err != nil {
		return fmt.Errorf("--domain: %w", err)
	}
	// Bind first: a taken port is the most common start-up failure, and it
	// should not leave a fresh data directory behind.
	addr, err := net.ResolveUDPAddr("udp", o.Listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.Listen, err)
	}
	pc, err := net.ListenUDP("udp", addr)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", o.Listen, err)
	}
	defer pc.Close()
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	cert, err := loadOrMakeCert(o)
	if err != nil {
		return err
	}
	certKey, err := loadOrCreateCertKey(filepath.Join(o.DataDir, certKeyFile))
	if err != nil {
		return fmt.Errorf("sender-certificate key: %w", err)
	}
	var resetKey quic.StatelessResetKey
	rk, err := loadOrCreateSecret(filepath.Join(o.DataDir, resetKeyFile), len(resetKey))
	if err != nil {
		return fmt.Errorf("stateless reset key: %w", err)
	}
	copy(resetKey[:], rk)

	roots, err := trustRoots(o.TrustCAs)
	if err != nil {
		return err
	}
	st, err := OpenStore(ctx, o.DataDir, o.DB, o.Logger)
	if err != nil {
		return err
	}
	defer st.Close()
	var poll time.Duration
	if o.DB != "" {
		poll = sharedStorePoll
	}
	srv, err := New(Config{
		Domain: o.Domain, Store: st, Certificate: cert, CertKey: certKey, ResetKey: resetKey,
		Registration: o.Registration, Logger: o.Logger, MaxConnections: o.MaxConnections,
		PollInterval: poll, Now: o.Now,
		Federation: federation.Config{
			Roots: roots, Peers: o.Peers, Allow: o.AllowDomains, Deny: o.DenyDomains,
			Retry: o.Retry, MaxRetry: o.MaxRetry, OutboundTTL: o.OutboundTTL, Lease: o.Lease, Scan: o.Scan,
		},
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "xchatd: serving %s on %s (udp), registration %s\n", o.Domain, pc.LocalAddr(), o.Registration)
	if ready != nil {
		ready(pc.LocalAddr())
	}
	if err := srv.Serve(ctx, pc); err != nil {
		return err
	}
	if err := st.Close(); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}
