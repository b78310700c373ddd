package conformance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/devca"
	"github.com/xchat-im/xchat/server/servertest"
)

const peerDomain = "peer.test"

// reference starts an in-process reference homeserver for domain a.test,
// with a static peer entry for peer.test and a CA that issued both
// certificates, and returns a configuration for the suite against it.
func reference(t *testing.T, reg server.Registration) (Config, *servertest.Server) {
	t.Helper()
	return referenceAt(t, reg, "")
}

// referenceAt is reference, with the static peer entry for peer.test
// pointing at peerAt instead of the suite's peer when peerAt is set (a
// proxy in front of the suite's peer, at Config.Peer.Listen).
func referenceAt(t *testing.T, reg server.Registration, peerAt string) (Config, *servertest.Server) {
	t.Helper()
	caDir := filepath.Join(t.TempDir(), "ca")
	ca, err := devca.LoadOrCreate(caDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Issue(caDir, peerDomain); err != nil {
		t.Fatal(err)
	}
	peerAddr := freeUDP(t)
	target := peerAddr
	if peerAt != "" {
		target = peerAt
	}
	// Three devices fill a call room, so that the suite's accounts reach
	// call_full (test 12.3/3).
	s := servertest.Start(t, servertest.Options{Domain: "a.test", CADir: caDir, Registration: reg,
		Peers: map[string]string{peerDomain: target}, Limits: server.Limits{MaxCallMembers: 3}})
	return suiteConfig(t, s.Addr, "a.test", caDir, peerAddr), s
}

// suiteConfig is the suite's configuration for a server whose CA is in
// caDir (which also holds the peer's certificate).
func suiteConfig(t *testing.T, addr, domain, caDir, peerAddr string) Config {
	t.Helper()
	pemBytes, err := os.ReadFile(devca.CertPath(caDir))
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pemBytes)
	cert, err := tls.LoadX509KeyPair(devca.DomainCertPath(caDir, peerDomain), devca.DomainKeyPath(caDir, peerDomain))
	if err != nil {
		t.Fatal(err)
	}
	return Config{Server: addr, Domain: domain, RootCAs: roots,
		Peer: &PeerConfig{Domain: peerDomain, Listen: peerAddr, Certificate: cert}}
}

func freeUDP(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// TestReference runs the tests named in CONFORMANCE_TESTS (ids or
// sections, separated by colons; "all" for every test) against an
// in-process reference server with open registration, for working on the
// suite. CI runs the whole suite against xchatd processes, in
// cmd/xchat-conformance.
func TestReference(t *testing.T) {
	p := os.Getenv("CONFORMANCE_TESTS")
	if p == "" {
		t.Skip("set CONFORMANCE_TESTS to run tests of the suite against an in-process server")
	}
	t.Parallel()
	cfg, _ := reference(t, server.RegistrationOpen)
	pats := []string{}
	if p != "all" {
		pats = append(pats, filepath.SplitList(p)...)
	}
	tests, err := Select(pats)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := Run(testContext(t), cfg, tests)
	if err != nil {
		t.Fatal(err)
	}
	rep.WriteTable(os.Stderr)
	for _, r := range rep.Results {
		if r.Status == Fail && r.Level == MUST {
			t.Errorf("%s failed: %s", r.ID, r.Message)
		}
	}
}
