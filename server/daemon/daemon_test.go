package daemon_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/devca"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

func start(t *testing.T, cfg daemon.Config) *daemon.Daemon {
	t.Helper()
	d, err := daemon.Start(servertest.Context(t), cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { d.Close(context.Background()) })
	return d
}

func addrOf(t *testing.T, s string) net.Addr {
	t.Helper()
	a, err := net.ResolveUDPAddr("udp", s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// serverInfo asks the daemon at addr for server-info over a client
// connection that trusts the CA in caFile.
func serverInfo(t *testing.T, addr net.Addr, domain, caFile string) *wire.ServerInfoOK {
	t.Helper()
	pemBytes, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	tc := &tls.Config{RootCAs: roots, ServerName: domain, NextProtos: []string{wire.ALPN}, MinVersion: tls.VersionTLS13}
	qc, err := quic.DialAddr(servertest.Context(t), addr.String(), tc, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	defer qc.CloseWithError(0, "")
	raw := &servertest.Raw{T: t, QC: qc}
	var ok wire.ServerInfoOK
	if err := raw.Request(&wire.ServerInfo{}, &ok); err != nil {
		t.Fatalf("server-info: %v", err)
	}
	return &ok
}

// A first start makes the data directory, its private key files and a
// development CA, says so and says where it serves; a second start on the
// same directory keeps the domain's sender-certificate key.
func TestStartMakesDataDirAndKeepsKeys(t *testing.T) {
	t.Parallel()
	data := filepath.Join(t.TempDir(), "data")
	var out bytes.Buffer
	cfg := daemon.Config{Domain: "d.test", Listen: "127.0.0.1:0", DataDir: data, Out: &out,
		Registration: server.RegistrationInvite}
	d := start(t, cfg)
	var domain, addr string
	for _, l := range strings.Split(out.String(), "\n") {
		if dm, a, ok := daemon.ParseReady(l); ok {
			domain, addr = dm, a
		}
	}
	if domain != "d.test" || addr != d.Addr().String() {
		t.Fatalf("ready line names %q at %q, want d.test at %s; output:\n%s", domain, addr, d.Addr(), out.String())
	}
	caFile := devca.CertPath(filepath.Join(data, daemon.DevCADir))
	if !strings.Contains(out.String(), "--ca "+caFile) {
		t.Errorf("output does not tell clients to trust %s:\n%s", caFile, out.String())
	}
	for _, f := range []string{daemon.CertKeyFile, daemon.ResetKeyFile} {
		fi, err := os.Stat(filepath.Join(data, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", f, fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(filepath.Join(data, daemon.DBFile)); err != nil {
		t.Errorf("embedded store: %v", err)
	}
	info := serverInfo(t, d.Addr(), "d.test", caFile)
	if info.Domain != "d.test" || info.Registration != wire.RegistrationInvite {
		t.Fatalf("server-info: %+v", info)
	}
	if err := d.Close(servertest.Context(t)); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := d.Wait(); err != nil {
		t.Fatalf("Wait after Close: %v", err)
	}
	if err := d.Close(servertest.Context(t)); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	cfg.Listen = d.Addr().String()
	d2 := start(t, cfg)
	if again := serverInfo(t, d2.Addr(), "d.test", caFile); !bytes.Equal(again.CertKey, info.CertKey) {
		t.Error("the sender-certificate key changed across a restart")
	}
}

// A taken UDP port is reported before anything is written: no data
// directory is left behind.
func TestStartTakenPortLeavesNothing(t *testing.T) {
	t.Parallel()
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	data := filepath.Join(t.TempDir(), "data")
	_, err = daemon.Start(servertest.Context(t), daemon.Config{Domain: "d.test", Listen: pc.LocalAddr().String(), DataDir: data})
	if err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("Start on a taken port: %v, want a --listen error", err)
	}
	if _, err := os.Stat(data); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("data directory after a failed start: %v", err)
	}
}

// Invalid configurations fail with the name of the flag at fault; all but
// unreadable files fail before the data directory is made.
func TestConfigErrors(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		edit func(*daemon.Config)
		flag string
	}{
		{"domain", func(c *daemon.Config) { c.Domain = "Not A Domain" }, "--domain"},
		{"cert without key", func(c *daemon.Config) { c.TLSCert = "cert.pem" }, "--tls-key"},
		{"registration", func(c *daemon.Config) { c.Registration = 9 }, "--registration"},
		{"max connections", func(c *daemon.Config) { c.MaxConnections = -1 }, "--max-connections"},
		{"peer domain", func(c *daemon.Config) { c.Peers = map[string]string{"bad domain": "127.0.0.1:1"} }, "--peer"},
		{"peer address", func(c *daemon.Config) { c.Peers = map[string]string{"b.test": ""} }, "--peer"},
		{"allow", func(c *daemon.Config) { c.AllowDomains = []string{"-x"} }, "--allow-domain"},
		{"deny", func(c *daemon.Config) { c.DenyDomains = []string{""} }, "--deny-domain"},
		{"lease", func(c *daemon.Config) { c.Lease = -time.Second }, "--relay-lease"},
		{"trust-ca", func(c *daemon.Config) { c.TrustCAs = []string{"/nonexistent/ca.pem"} }, "--trust-ca"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			data := filepath.Join(t.TempDir(), "data")
			cfg := daemon.Config{Domain: "d.test", Listen: "127.0.0.1:0", DataDir: data}
			tc.edit(&cfg)
			d, err := daemon.Start(servertest.Context(t), cfg)
			if err == nil {
				d.Close(context.Background())
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.flag) {
				t.Errorf("error %q does not name %s", err, tc.flag)
			}
			if _, err := os.Stat(data); tc.flag != "--trust-ca" && !errors.Is(err, os.ErrNotExist) {
				t.Errorf("data directory after an invalid configuration: %v", err)
			}
		})
	}
}

func TestParseReady(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		line, domain, addr string
		ok                 bool
	}{
		{"xchatd: serving a.test on 127.0.0.1:7443 (udp), registration open", "a.test", "127.0.0.1:7443", true},
		{"xchatd: serving a.test on [::1]:9 (udp), registration closed", "a.test", "[::1]:9", true},
		{"xchatd: no --tls-cert given: using development certificate x", "", "", false},
		{"xchatd: serving a.test", "", "", false},
		{"", "", "", false},
	} {
		d, a, ok := daemon.ParseReady(tc.line)
		if d != tc.domain || a != tc.addr || ok != tc.ok {
			t.Errorf("ParseReady(%q) = %q, %q, %v; want %q, %q, %v", tc.line, d, a, ok, tc.domain, tc.addr, tc.ok)
		}
	}
}

// Run serves until its context ends, then shuts down cleanly.
func TestRunStopsWhenContextEnds(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(servertest.Context(t))
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		done <- daemon.Run(ctx, daemon.Config{Domain: "d.test", Listen: "127.0.0.1:0", DataDir: t.TempDir(), Out: pw})
		pw.Close()
	}()
	sc := bufio.NewScanner(pr)
	var addr string
	for addr == "" && sc.Scan() {
		_, addr, _ = daemon.ParseReady(sc.Text())
	}
	if addr == "" {
		t.Fatalf("no ready line; Run returned %v", <-done)
	}
	go io.Copy(io.Discard, pr)
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after the context ended: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Run did not return within 30 s of its context ending")
	}
}
