package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/xchat-im/xchat/server/store"
)

// kps returns n key packages named prefix-0, prefix-1, ...
func kps(prefix string, n int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = fmt.Appendf(nil, "%s-%d", prefix, i)
	}
	return out
}

// publish publishes key packages and fails the test unless the device then
// holds want one-time packages.
func publish(t *testing.T, s store.Store, mb store.Mailbox, oneTime [][]byte, lastResort []byte, want int) {
	t.Helper()
	n, err := s.PublishKeyPackages(t.Context(), mb, oneTime, lastResort)
	if err != nil {
		t.Fatalf("PublishKeyPackages: %v", err)
	}
	if n != want {
		t.Fatalf("PublishKeyPackages: %d one-time packages stored, want %d", n, want)
	}
}

// claim claims a key package and fails the test unless it is want.
func claim(t *testing.T, s store.Store, mb store.Mailbox, want []byte, wantLastResort bool) {
	t.Helper()
	kp, lr, err := s.ClaimKeyPackage(t.Context(), mb)
	if err != nil {
		t.Fatalf("ClaimKeyPackage: %v", err)
	}
	if !bytes.Equal(kp, want) || lr != wantLastResort {
		t.Fatalf("ClaimKeyPackage = %q, last resort %v; want %q, %v", kp, lr, want, wantLastResort)
	}
}

func testPublishKeyPackages(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	bob := newAccount(t, s, "bob@example.org")
	publish(t, s, alice, kps("a", 3), nil, 3)
	publish(t, s, alice, kps("b", 2), []byte("lr"), 5)
	publish(t, s, alice, nil, nil, 5)
	publish(t, s, bob, nil, nil, 0)
	publish(t, s, bob, kps("c", 1), nil, 1)

	_, err := s.PublishKeyPackages(ctx, store.Mailbox{Address: "alice@example.org", Device: 2}, kps("x", 1), nil)
	wantErr(t, "PublishKeyPackages to an unknown device", err, store.ErrUnknownDevice)
	_, err = s.PublishKeyPackages(ctx, store.Mailbox{Address: "nobody@example.org", Device: 1}, kps("x", 1), []byte("lr"))
	wantErr(t, "PublishKeyPackages to an unknown account", err, store.ErrUnknownDevice)
}

func testKeyPackageLimit(t *testing.T, open Opener) {
	s := open(t, testLimits) // 60 one-time packages per device
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	publish(t, s, alice, kps("a", 50), nil, 50)

	_, err := s.PublishKeyPackages(ctx, alice, kps("b", 11), []byte("lr"))
	wantErr(t, "PublishKeyPackages over the limit", err, store.ErrLimit)
	// Nothing was written, not even the last-resort package.
	publish(t, s, alice, nil, nil, 50)
	publish(t, s, alice, kps("c", 10), nil, 60)
	_, err = s.PublishKeyPackages(ctx, alice, kps("d", 1), nil)
	wantErr(t, "PublishKeyPackages over the limit", err, store.ErrLimit)
	for i := range 50 {
		claim(t, s, alice, fmt.Appendf(nil, "a-%d", i), false)
	}
	for i := range 10 {
		claim(t, s, alice, fmt.Appendf(nil, "c-%d", i), false)
	}
	_, _, err = s.ClaimKeyPackage(ctx, alice)
	wantErr(t, "ClaimKeyPackage after a refused last-resort package", err, store.ErrNoKeyPackage)

	// Claimed packages no longer count.
	publish(t, s, alice, kps("e", 60), nil, 60)
}

func testClaimKeyPackage(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	bob := newAccount(t, s, "bob@example.org")

	_, _, err := s.ClaimKeyPackage(ctx, alice)
	wantErr(t, "ClaimKeyPackage with none published", err, store.ErrNoKeyPackage)
	_, _, err = s.ClaimKeyPackage(ctx, store.Mailbox{Address: "nobody@example.org", Device: 1})
	wantErr(t, "ClaimKeyPackage of an unknown device", err, store.ErrUnknownDevice)

	publish(t, s, alice, [][]byte{[]byte("a1"), []byte("a2")}, []byte("a-lr"), 2)
	publish(t, s, alice, [][]byte{[]byte("a3")}, nil, 3)
	publish(t, s, bob, [][]byte{[]byte("b1")}, nil, 1)

	// One-time packages go oldest first, each once.
	claim(t, s, alice, []byte("a1"), false)
	claim(t, s, alice, []byte("a2"), false)
	claim(t, s, alice, []byte("a3"), false)
	publish(t, s, alice, nil, nil, 0)
	// Then the last-resort package, which stays.
	claim(t, s, alice, []byte("a-lr"), true)
	claim(t, s, alice, []byte("a-lr"), true)
	claim(t, s, alice, []byte("a-lr"), true)
	// A new last-resort package replaces it.
	publish(t, s, alice, nil, []byte("a-lr2"), 0)
	claim(t, s, alice, []byte("a-lr2"), true)
	// One-time packages come before the last-resort one again.
	publish(t, s, alice, [][]byte{[]byte("a4")}, nil, 1)
	claim(t, s, alice, []byte("a4"), false)
	claim(t, s, alice, []byte("a-lr2"), true)

	// Bob's packages are his own, and he has no last-resort package.
	claim(t, s, bob, []byte("b1"), false)
	_, _, err = s.ClaimKeyPackage(ctx, bob)
	wantErr(t, "ClaimKeyPackage with all claimed", err, store.ErrNoKeyPackage)
}

func testClaimKeyPackageConcurrent(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	const packages, claimers = 50, 20
	publish(t, s, alice, kps("kp", packages), nil, packages)

	var (
		mu      sync.Mutex
		claimed = make(map[string]int)
		wg      sync.WaitGroup
	)
	for range claimers {
		wg.Go(func() {
			for {
				kp, lr, err := s.ClaimKeyPackage(ctx, alice)
				if errors.Is(err, store.ErrNoKeyPackage) {
					return
				}
				if err != nil || lr {
					t.Errorf("ClaimKeyPackage = %q, %v, %v", kp, lr, err)
					return
				}
				mu.Lock()
				claimed[string(kp)]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != packages {
		t.Errorf("%d distinct packages claimed, want %d", len(claimed), packages)
	}
	for _, kp := range kps("kp", packages) {
		if n := claimed[string(kp)]; n != 1 {
			t.Errorf("package %q claimed %d times", kp, n)
		}
	}
}

func testLastResortKeyPackage(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	_, err := s.LastResortKeyPackage(ctx, store.Mailbox{Address: "nobody@example.org", Device: 1})
	wantErr(t, "LastResortKeyPackage of an unknown device", err, store.ErrUnknownDevice)
	publish(t, s, alice, [][]byte{[]byte("a1")}, nil, 1)
	_, err = s.LastResortKeyPackage(ctx, alice)
	wantErr(t, "LastResortKeyPackage with only one-time packages", err, store.ErrNoKeyPackage)
	publish(t, s, alice, nil, []byte("a-lr"), 1)
	for range 2 {
		kp, err := s.LastResortKeyPackage(ctx, alice)
		if err != nil || string(kp) != "a-lr" {
			t.Fatalf("LastResortKeyPackage = %q, %v; want a-lr", kp, err)
		}
	}
	// The one-time package is untouched and still goes first.
	claim(t, s, alice, []byte("a1"), false)
	claim(t, s, alice, []byte("a-lr"), true)
}
