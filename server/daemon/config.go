package daemon

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/xchat-im/xchat/federation"
	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/spec/wire"
)

// Defaults of the zero Config, the same as those of xchatd serve's flags.
const (
	DefaultDomain  = "localhost"
	DefaultListen  = "127.0.0.1:7443"
	DefaultDataDir = "./xchatd-data"
	// DefaultLease and DefaultScan are the federation's defaults for
	// Config.Lease and Config.Scan.
	DefaultLease = federation.DefaultLease
	DefaultScan  = federation.DefaultScan
)

// Config configures a homeserver process. A zero field takes the default
// of the xchatd serve flag named in its comment, so the zero Config is
// xchatd serve without flags. Errors about a field name that flag.
type Config struct {
	// Domain is the domain served, user@Domain (--domain; default
	// DefaultDomain).
	Domain string
	// Listen is the UDP address for QUIC, shared by clients and peers
	// (--listen; default DefaultListen). Port 0 picks a free port; Addr
	// tells which.
	Listen string
	// DataDir holds the embedded store, the key files and the development
	// CA (--data; default DefaultDataDir). It is created, mode 0700, when
	// missing.
	DataDir string
	// DB is a PostgreSQL URL (--db). Empty: the embedded SQLite store in
	// DataDir. Several processes of one domain may share one database,
	// with data directories of their own: the domain's keys are kept in the
	// database (the first process stores those of its data directory).
	DB string
	// TLSCert and TLSKey are the PEM certificate chain and key of the
	// domain (--tls-cert, --tls-key), given together. Empty: a certificate
	// from a development CA in DataDir, made on first start.
	TLSCert, TLSKey string
	// Registration is who may register (--registration; default open).
	Registration server.Registration
	// MaxConnections bounds concurrent connections, clients' and peers'
	// (--max-connections; default server.DefaultMaxConnections).
	MaxConnections int
	// Limits are the server's per-address, per-account and per-device
	// policy limits (spec/15-limits.md); zero fields take their defaults.
	// Flags of xchatd serve set each (Args names them).
	Limits server.Limits
	// Peers are static federation peers, DOMAIN to HOST:PORT, overriding
	// DNS (--peer).
	Peers map[string]string
	// TrustCAs are PEM files of extra roots for peers' certificates, added
	// to the system roots (--trust-ca).
	TrustCAs []string
	// AllowDomains, when not empty, are the only domains that federate
	// (--allow-domain); DenyDomains never do (--deny-domain).
	AllowDomains, DenyDomains []string
	// Lease is how long a relay worker holds the envelopes it claimed
	// (--relay-lease) and Scan how often the outbound queue is searched for
	// work without a worker here (--queue-scan); zero: DefaultLease and
	// DefaultScan.
	Lease, Scan time.Duration
	// Retry and MaxRetry are the first and the largest relay backoff (and
	// that of call-room links to other domains), and
	// OutboundTTL how long an envelope may wait for its peer; zero: the
	// federation package's defaults. No flag sets them: tests shorten them.
	Retry, MaxRetry, OutboundTTL time.Duration
	// Now is the clock of link tokens and blob expiry; nil: time.Now. No
	// flag sets it: tests move it.
	Now func() time.Time
	// BlobSweep is how often expired blobs are deleted; zero:
	// server.DefaultBlobSweep. No flag sets it: tests shorten it.
	BlobSweep time.Duration
	// Logger receives the structured log; nil: discarded.
	Logger *slog.Logger
	// Out receives the lines a user should read: the paths of a generated
	// development certificate, and the line that says the server serves
	// (see ReadyPrefix). Nil: discarded.
	Out io.Writer
}

// withDefaults returns c with its zero fields set to their defaults, or
// the first invalid field.
func (c Config) withDefaults() (Config, error) {
	if c.Domain == "" {
		c.Domain = DefaultDomain
	}
	if c.Listen == "" {
		c.Listen = DefaultListen
	}
	if c.DataDir == "" {
		c.DataDir = DefaultDataDir
	}
	if c.MaxConnections == 0 {
		c.MaxConnections = server.DefaultMaxConnections
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Out == nil {
		c.Out = io.Discard
	}
	if err := wire.ValidateDomain(c.Domain); err != nil {
		return c, fmt.Errorf("--domain: %w", err)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return c, errors.New("--tls-cert and --tls-key go together")
	}
	if c.Registration > server.RegistrationClosed {
		return c, fmt.Errorf("--registration: unknown policy %d", c.Registration)
	}
	if c.MaxConnections < 0 {
		return c, fmt.Errorf("--max-connections %d: want a positive number", c.MaxConnections)
	}
	for d, addr := range c.Peers {
		if err := wire.ValidateDomain(d); err != nil {
			return c, fmt.Errorf("--peer %s: %w", d, err)
		}
		if addr == "" {
			return c, fmt.Errorf("--peer %s: no HOST:PORT", d)
		}
	}
	for _, l := range []struct {
		flag    string
		domains []string
	}{{"--allow-domain", c.AllowDomains}, {"--deny-domain", c.DenyDomains}} {
		for _, d := range l.domains {
			if err := wire.ValidateDomain(d); err != nil {
				return c, fmt.Errorf("%s: %w", l.flag, err)
			}
		}
	}
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"--relay-lease", c.Lease}, {"--queue-scan", c.Scan}, {"retry", c.Retry}, {"max retry", c.MaxRetry}, {"outbound TTL", c.OutboundTTL},
		{"--upload-lifetime", c.Limits.UploadLifetime}, {"--blob-retention", c.Limits.BlobRetention}, {"blob sweep", c.BlobSweep}} {
		if d.v < 0 {
			return c, fmt.Errorf("%s %s: want a positive duration", d.flag, d.v)
		}
	}
	if r := c.Limits.BlobRetention; r != 0 && r < wire.Retention {
		return c, fmt.Errorf("--blob-retention %s: want at least the mailbox retention, %s", r, wire.Retention)
	}
	return c, nil
}
