package server_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// Tests of spec/06-key-directory.md sections 6.4 and 6.5: one-time key
// package claims are limited per requesting account and per target device;
// past a limit claimants get the last-resort package. These belong in
// conformance later (with a server started with small limits).

// publishKPs publishes n one-time packages named prefix-i on r, and a
// last-resort package when last is not nil.
func publishKPs(t *testing.T, r *servertest.Raw, prefix string, n int, last []byte) {
	t.Helper()
	kps := make([][]byte, n)
	for i := range kps {
		kps[i] = fmt.Appendf(nil, "%s-%d", prefix, i)
	}
	var ok wire.PublishKeyPackagesOK
	if err := r.Request(&wire.PublishKeyPackages{OneTime: kps, LastResort: last}, &ok); err != nil {
		t.Fatalf("publish: %v", err)
	}
}

// stored returns how many one-time packages r's device has stored.
func stored(t *testing.T, r *servertest.Raw) uint64 {
	t.Helper()
	var ok wire.PublishKeyPackagesOK
	if err := r.Request(&wire.PublishKeyPackages{}, &ok); err != nil {
		t.Fatalf("publish nothing: %v", err)
	}
	return ok.Stored
}

// claimKP claims a key package of address device 1 on r and fails unless
// it is a one-time package (lastResort false) or the last-resort one.
func claimKP(t *testing.T, r *servertest.Raw, address string, lastResort bool) {
	t.Helper()
	var ok wire.ClaimKeyPackageOK
	if err := r.Request(&wire.ClaimKeyPackage{Address: address, Device: 1}, &ok); err != nil {
		t.Fatalf("claim %s: %v", address, err)
	}
	if ok.LastResort != lastResort || (lastResort && string(ok.KeyPackage) != "last") {
		t.Fatalf("claim %s: %q, last resort %v; want last resort %v", address, ok.KeyPackage, ok.LastResort, lastResort)
	}
}

// Past the budget of one target device, every claimant gets its
// last-resort package and its pool is not drained; without a last-resort
// package the claim gets rate_limited, naming the limit.
func TestKeyPackageClaimsPerTarget(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{
		ClaimsPerTarget: server.Rate{Burst: 3, Interval: time.Hour}}})
	rb, _ := registered(t, s, "bob@a.test", nil)
	rc, _ := registered(t, s, "carol@a.test", nil)
	ra, _ := registered(t, s, "alice@a.test", nil)
	rd, _ := registered(t, s, "dave@a.test", nil)
	publishKPs(t, rb, "bob", 10, []byte("last"))
	publishKPs(t, rc, "carol", 10, nil)
	for range 3 {
		claimKP(t, ra, "bob@a.test", false)
	}
	claimKP(t, ra, "bob@a.test", true)
	claimKP(t, rd, "bob@a.test", true) // another requester: the target's budget
	if n := stored(t, rb); n != 7 {
		t.Fatalf("bob has %d one-time packages after the limit, want 7", n)
	}
	for range 3 {
		claimKP(t, ra, "carol@a.test", false)
	}
	var ok wire.ClaimKeyPackageOK
	rateLimited(t, ra.Request(&wire.ClaimKeyPackage{Address: "carol@a.test", Device: 1}, &ok), "key packages")
}

// Past the budget of one requesting account, its claims get last-resort
// packages whichever device they target; other requesters are not
// affected.
func TestKeyPackageClaimsPerRequester(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{
		ClaimsPerRequester: server.Rate{Burst: 3, Interval: time.Hour}}})
	rb, _ := registered(t, s, "bob@a.test", nil)
	rc, _ := registered(t, s, "carol@a.test", nil)
	ra, _ := registered(t, s, "alice@a.test", nil)
	rd, _ := registered(t, s, "dave@a.test", nil)
	publishKPs(t, rb, "bob", 10, []byte("last"))
	publishKPs(t, rc, "carol", 10, []byte("last"))
	claimKP(t, ra, "bob@a.test", false)
	claimKP(t, ra, "bob@a.test", false)
	claimKP(t, ra, "carol@a.test", false)
	claimKP(t, ra, "carol@a.test", true)
	claimKP(t, ra, "bob@a.test", true)
	claimKP(t, rd, "carol@a.test", false)
	if n := stored(t, rc); n != 8 {
		t.Fatalf("carol has %d one-time packages, want 8", n)
	}
}

// Claims relayed from another domain count against the target device's
// budget too.
func TestKeyPackageClaimsRelayedCountPerTarget(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{Limits: server.Limits{
		ClaimsPerTarget: server.Rate{Burst: 2, Interval: time.Hour}}}, "a.test", "b.test")
	rb, _ := registered(t, fed["b.test"], "bob@b.test", nil)
	rc, _ := registered(t, fed["b.test"], "carol@b.test", nil)
	ra, _ := registered(t, fed["a.test"], "alice@a.test", nil)
	publishKPs(t, rb, "bob", 5, []byte("last"))
	claimKP(t, ra, "bob@b.test", false)
	claimKP(t, ra, "bob@b.test", false)
	claimKP(t, ra, "bob@b.test", true)
	claimKP(t, rc, "bob@b.test", true)
	if n := stored(t, rb); n != 3 {
		t.Fatalf("bob has %d one-time packages, want 3", n)
	}
}
