package daemon

import (
	"context"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/xchat-im/xchat/federation"
	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/store"
)

// ReadyPrefix begins the line written to Config.Out once the server
// accepts connections:
//
//	xchatd: serving DOMAIN on HOST:PORT (udp), registration POLICY
//
// Processes that start xchatd serve wait for it; ParseReady reads it.
const ReadyPrefix = "xchatd: serving "

// ParseReady returns the domain and the address of the ready line written
// by a starting daemon, or ok false for any other line.
func ParseReady(line string) (domain, addr string, ok bool) {
	rest, ok := strings.CutPrefix(line, ReadyPrefix)
	if !ok {
		return "", "", false
	}
	domain, rest, ok1 := strings.Cut(rest, " on ")
	addr, _, ok2 := strings.Cut(rest, " (udp)")
	if !ok1 || !ok2 || domain == "" || addr == "" {
		return "", "", false
	}
	return domain, addr, true
}

// The two sides this package wires together.
var (
	_ server.Federation = (*federation.Federation)(nil)
	_ federation.Local  = (*server.Server)(nil)
)

// sharedStorePoll is how often pushers look at their mailbox when the
// store is shared with other processes, in case a notification was lost.
const sharedStorePoll = 2 * time.Second

// Daemon is a running homeserver process: its listener, store, client
// server and federation.
type Daemon struct {
	addr   net.Addr
	srv    *server.Server
	cancel context.CancelFunc
	done   chan struct{}
	err    error // set before done is closed
}

// Start assembles a homeserver from cfg and starts serving: it binds the
// UDP address, creates the data directory and its key files when missing,
// loads the certificate, opens the store and starts the client server and
// federation with its relay workers. ctx bounds the start only; the daemon
// serves until Close. When Start fails, nothing is left running.
func Start(ctx context.Context, cfg Config) (*Daemon, error) {
	c, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	// Bind first: a taken port is the most common start-up failure, and it
	// should not leave a fresh data directory behind.
	addr, err := net.ResolveUDPAddr("udp", c.Listen)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", c.Listen, err)
	}
	pc, err := net.ListenUDP("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("--listen %s: %w", c.Listen, err)
	}
	st, srv, err := assemble(ctx, c)
	if err != nil {
		pc.Close()
		return nil, err
	}
	serveCtx, cancel := context.WithCancel(context.Background())
	d := &Daemon{addr: pc.LocalAddr(), srv: srv, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(d.done)
		defer pc.Close()
		err := srv.Serve(serveCtx, pc)
		if cerr := st.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("store: %w", cerr)
		}
		d.err = err
	}()
	fmt.Fprintf(c.Out, "%s%s on %s (udp), registration %s\n", ReadyPrefix, c.Domain, d.addr, c.Registration)
	return d, nil
}

// assemble makes the data directory and its files, opens the store and
// makes the server with its federation. On failure the store is closed.
func assemble(ctx context.Context, c Config) (_ store.Store, _ *server.Server, err error) {
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data directory: %w", err)
	}
	cert, err := loadOrMakeCert(c, c.Out)
	if err != nil {
		return nil, nil, err
	}
	roots, err := trustRoots(c.TrustCAs)
	if err != nil {
		return nil, nil, err
	}
	st, err := OpenStore(ctx, c.DataDir, c.DB, c.Logger)
	if err != nil {
		return nil, nil, err
	}
	defer func() {
		if err != nil {
			st.Close()
		}
	}()
	keys, err := loadDomainKeys(ctx, c.DataDir, st, c.Logger)
	if err != nil {
		return nil, nil, err
	}
	var poll time.Duration
	if c.DB != "" {
		poll = sharedStorePoll
	}
	srv, err := server.New(server.Config{
		Domain: c.Domain, Store: st, Certificate: cert, CertKey: keys.cert, ResetKey: keys.reset,
		Registration: c.Registration, Logger: c.Logger, MaxConnections: c.MaxConnections,
		Limits: c.Limits, PollInterval: poll, Now: c.Now, BlobSweep: c.BlobSweep,
		CallRetry: c.Retry, CallMaxRetry: c.MaxRetry,
		NewFederation: func(local *server.Server) (server.Federation, error) {
			blobRate := local.Limits().FedBlobRate
			f, err := federation.New(federation.Config{
				Domain: c.Domain, Certificate: cert, Roots: roots,
				Peers: c.Peers, Allow: c.AllowDomains, Deny: c.DenyDomains,
				Store: st, Local: local, Logger: c.Logger.With("component", "federation"),
				Retry: c.Retry, MaxRetry: c.MaxRetry, OutboundTTL: c.OutboundTTL, Lease: c.Lease, Scan: c.Scan,
				BlobRate: blobRate, BlobBurst: server.FedBlobBurst(blobRate),
			})
			if err != nil {
				return nil, err
			}
			return f, nil
		},
	})
	if err != nil {
		return nil, nil, err
	}
	return st, srv, nil
}

// Addr returns the UDP address the daemon listens on.
func (d *Daemon) Addr() net.Addr { return d.addr }

// Server returns the daemon's client server, for its counters
// (CallStats).
func (d *Daemon) Server() *server.Server { return d.srv }

// Done is closed once the daemon has stopped: after Close, or when serving
// failed.
func (d *Daemon) Done() <-chan struct{} { return d.done }

// Wait waits until the daemon has stopped and returns why serving failed,
// or nil after a clean shutdown.
func (d *Daemon) Wait() error {
	<-d.done
	return d.err
}

// Close shuts the daemon down gracefully, as on SIGTERM: it stops
// accepting connections, lets in-flight requests finish (up to 10 s),
// closes every connection, stops the relay workers (queued envelopes stay
// queued) and closes the store. It returns what Wait returns, or ctx's
// error when ctx ends first; the shutdown then goes on, and Wait waits for
// it. Closing a stopped daemon returns at once.
func (d *Daemon) Close(ctx context.Context) error {
	d.cancel()
	select {
	case <-d.done:
		return d.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Run starts a daemon for cfg, serves until ctx ends, then shuts it down
// gracefully (xchatd serve, where ctx ends on SIGINT or SIGTERM).
func Run(ctx context.Context, cfg Config) error {
	d, err := Start(ctx, cfg)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return d.Close(context.Background())
	case <-d.done:
		return d.err
	}
}
