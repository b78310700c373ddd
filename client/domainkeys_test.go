package client_test

import (
	"net"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/server/servertest"
)

// deadAddr returns a loopback UDP address where nothing answers.
func deadAddr(t *testing.T) string {
	t.Helper()
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

// Looking up the keys of domains that do not answer takes at most 3 s
// each and 6 s in all; a domain that failed is not asked again for a
// while (spec/07-envelopes.md section 7.16).
func TestDomainKeyLookupsBounded(t *testing.T) {
	t.Parallel()
	dead := deadAddr(t)
	s := servertest.Start(t, servertest.Options{Peers: map[string]string{
		"x1.test": dead, "x2.test": dead, "x3.test": dead, "x4.test": dead}})
	alice := register(t, s, "alice@a.test")
	ctx := t.Context()
	start := time.Now()
	for _, d := range []string{"x1.test", "x2.test", "x3.test", "x4.test"} {
		if _, _, err := client.DomainKey(ctx, alice.c, d); err == nil {
			t.Fatalf("key of %s: no error", d)
		}
	}
	// Two lookups of at most 3 s use up the budget of 6 s; the rest are
	// not made. (The bound is generous for -race on a loaded machine.)
	if took := time.Since(start); took > 8*time.Second {
		t.Fatalf("4 lookups of domains that do not answer took %v, want at most about 6 s", took)
	}
	if _, skipped, err := client.DomainKey(ctx, alice.c, "x4.test"); !skipped || err == nil {
		t.Fatalf("x4.test after the budget is spent: skipped %v, %v", skipped, err)
	}
	// A domain that failed is not asked again: the answer is immediate.
	start = time.Now()
	_, skipped, err := client.DomainKey(ctx, alice.c, "x1.test")
	if err == nil || skipped || time.Since(start) > time.Second {
		t.Fatalf("x1.test again: skipped %v, %v after %v", skipped, err, time.Since(start))
	}
	// The own domain's key is always at hand.
	if k, _, err := client.DomainKey(ctx, alice.c, "a.test"); err != nil || len(k) != 32 {
		t.Fatalf("own key: %x, %v", k, err)
	}
}
