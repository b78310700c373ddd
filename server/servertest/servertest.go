// Package servertest runs real homeservers in tests: a real QUIC listener on
// a loopback port, a real SQLite store in a temporary directory and a
// development CA, through the same code path as xchatd serve.
package servertest

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/devca"
)

// Options configure a test homeserver.
type Options struct {
	Domain       string // default "a.test"
	Registration server.Registration
	// MaxConnections bounds concurrent connections; zero: the default.
	MaxConnections int
}

// Server is a running test homeserver.
type Server struct {
	t      testing.TB
	opts   server.Options
	Domain string
	Addr   string // host:port, the same across restarts
	CAFile string // PEM of the CA that issued the server's certificate
	Data   string // data directory

	mu     sync.Mutex
	cancel context.CancelFunc
	done   chan error
	logs   *syncBuffer
}

// Start starts a homeserver; it is stopped when the test ends.
func Start(t testing.TB, o Options) *Server {
	t.Helper()
	if o.Domain == "" {
		o.Domain = "a.test"
	}
	dir := t.TempDir()
	caDir := filepath.Join(dir, "ca")
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
		Data:   filepath.Join(dir, "data"),
		Addr:   "127.0.0.1:0",
		logs:   &syncBuffer{},
	}
	s.opts = server.Options{
		Domain:         o.Domain,
		DataDir:        s.Data,
		TLSCert:        devca.DomainCertPath(caDir, o.Domain),
		TLSKey:         devca.DomainKeyPath(caDir, o.Domain),
		Registration:   o.Registration,
		MaxConnections: o.MaxConnections,
		Logger:         slog.New(slog.NewTextHandler(s.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	s.start()
	t.Cleanup(func() { s.Stop() })
	return s
}

func (s *Server) start() {
	s.t.Helper()
	s.opts.Listen = s.Addr
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan net.Addr, 1)
	done := make(chan error, 1)
	go func() { done <- server.Run(ctx, s.opts, func(a net.Addr) { ready <- a }) }()
	select {
	case a := <-ready:
		s.Addr = a.String()
	case err := <-done:
		cancel()
		s.t.Fatalf("servertest: start: %v", err)
	case <-time.After(30 * time.Second):
		cancel()
		s.t.Fatal("servertest: server did not start in 30 s")
	}
	s.mu.Lock()
	s.cancel, s.done = cancel, done
	s.mu.Unlock()
}

// Stop shuts the server down gracefully (as on SIGTERM) and waits until its
// store is closed. Stopping a stopped server does nothing.
func (s *Server) Stop() {
	s.mu.Lock()
	cancel, done := s.cancel, s.done
	s.cancel, s.done = nil, nil
	s.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			s.t.Errorf("servertest: server stopped with %v", err)
		}
	case <-time.After(30 * time.Second):
		s.t.Error("servertest: server did not stop in 30 s")
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
func (s *Server) DBPath() string { return filepath.Join(s.Data, "xchatd.db") }

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
