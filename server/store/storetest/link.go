package storetest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// linkHash returns the hash of link token n.
func linkHash(n int) []byte {
	h := sha256.Sum256(fmt.Appendf(nil, "link-%d", n))
	return h[:]
}

// linkedDevice returns a device of address for linking, with keys derived
// from n.
func linkedDevice(address string, n int) store.Device {
	d := device(address)
	d.ID = 0
	d.SigKey = bytes.Repeat([]byte{byte(n)}, 32)
	d.HPKEKey = fmt.Appendf(nil, "hpke:%s:%d", address, n)
	return d
}

// createLink records link token n of address, valid for 10 minutes after
// at, and fails the test on an error.
func createLink(t *testing.T, s store.Store, address string, n int, at time.Time) {
	t.Helper()
	wantErr(t, "CreateLink", s.CreateLink(t.Context(), address, linkHash(n), at, at.Add(10*time.Minute)), nil)
}

// link links a device with token n at at and fails the test unless it gets
// identifier want.
func link(t *testing.T, s store.Store, address string, n int, at time.Time, want uint32) store.Device {
	t.Helper()
	d := linkedDevice(address, n)
	id, err := s.LinkDevice(t.Context(), d, linkHash(n), at)
	wantErr(t, "LinkDevice", err, nil)
	if id != want {
		t.Fatalf("LinkDevice: device %d, want %d", id, want)
	}
	d.ID = id
	return d
}

// deviceIDs returns the identifiers of an account's devices.
func deviceIDs(t *testing.T, s store.Store, address string) []uint32 {
	t.Helper()
	devs, err := s.Devices(t.Context(), address)
	wantErr(t, "Devices", err, nil)
	ids := make([]uint32, len(devs))
	for i, d := range devs {
		ids[i] = d.ID
	}
	return ids
}

func wantDeviceIDs(t *testing.T, s store.Store, address string, want ...uint32) {
	t.Helper()
	got := deviceIDs(t, s, address)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("devices of %s: %v, want %v", address, got, want)
	}
}

func testLinkDevice(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	newAccount(t, s, "alice@example.org")
	t0 := now()
	createLink(t, s, "alice@example.org", 1, t0)
	d := link(t, s, "alice@example.org", 1, t0.Add(time.Minute), 2)
	got, err := s.Device(ctx, store.Mailbox{Address: d.Address, Device: 2})
	wantErr(t, "Device", err, nil)
	sameDevice(t, got, d)
	wantDeviceIDs(t, s, "alice@example.org", 1, 2)

	// Single use.
	_, err = s.LinkDevice(ctx, linkedDevice("alice@example.org", 9), linkHash(1), t0.Add(time.Minute))
	wantErr(t, "LinkDevice with a used token", err, store.ErrLinkInvalid)
	wantDeviceIDs(t, s, "alice@example.org", 1, 2)
	// Unknown token, unknown account.
	_, err = s.LinkDevice(ctx, linkedDevice("alice@example.org", 9), linkHash(2), t0)
	wantErr(t, "LinkDevice with an unknown token", err, store.ErrLinkInvalid)
	_, err = s.LinkDevice(ctx, linkedDevice("nobody@example.org", 9), linkHash(2), t0)
	wantErr(t, "LinkDevice to an unknown account", err, store.ErrLinkInvalid)
	noAccount(t, s, "nobody@example.org")
	wantErr(t, "CreateLink for an unknown account",
		s.CreateLink(ctx, "nobody@example.org", linkHash(3), t0, t0.Add(time.Minute)), store.ErrUnknownAccount)

	// The new device has a mailbox and key packages of its own.
	mb := store.Mailbox{Address: d.Address, Device: 2}
	enqueue(t, s, env(mb, 1, 10))
	wantIDs(t, "mailbox of the linked device", pendingIDs(t, s, mb), 1)
	wantIDs(t, "mailbox of the first device", pendingIDs(t, s, store.Mailbox{Address: d.Address, Device: 1}))
	publish(t, s, mb, kps("d2", 2), nil, 2)
	claim(t, s, mb, []byte("d2-0"), false)
}

func testLinkExpiry(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	newAccount(t, s, "alice@example.org")
	t0 := now()
	createLink(t, s, "alice@example.org", 1, t0)
	createLink(t, s, "alice@example.org", 2, t0)
	// Valid while the clock is before the expiry, not at it.
	_, err := s.LinkDevice(ctx, linkedDevice("alice@example.org", 1), linkHash(1), t0.Add(10*time.Minute))
	wantErr(t, "LinkDevice at the expiry", err, store.ErrLinkInvalid)
	link(t, s, "alice@example.org", 2, t0.Add(10*time.Minute-time.Millisecond), 2)
	wantDeviceIDs(t, s, "alice@example.org", 1, 2)
}

func testDeleteExpiredLinks(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	newAccount(t, s, "alice@example.org")
	newAccount(t, s, "bob@example.org")
	t0 := now()
	createLink(t, s, "alice@example.org", 1, t0)
	createLink(t, s, "bob@example.org", 2, t0.Add(time.Minute))
	createLink(t, s, "bob@example.org", 3, t0.Add(2*time.Minute))
	n, err := s.DeleteExpiredLinks(ctx, t0.Add(10*time.Minute+time.Minute))
	wantErr(t, "DeleteExpiredLinks", err, nil)
	if n != 2 {
		t.Fatalf("DeleteExpiredLinks deleted %d tokens, want 2", n)
	}
	// Token 3 is left and still valid before its expiry.
	link(t, s, "bob@example.org", 3, t0, 2)
	n, err = s.DeleteExpiredLinks(ctx, t0.Add(time.Hour))
	if err != nil || n != 0 {
		t.Fatalf("DeleteExpiredLinks = %d, %v; want nothing left", n, err)
	}
}

func testLinkWrongAccount(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	newAccount(t, s, "alice@example.org")
	newAccount(t, s, "bob@example.org")
	t0 := now()
	createLink(t, s, "alice@example.org", 1, t0)
	_, err := s.LinkDevice(ctx, linkedDevice("bob@example.org", 1), linkHash(1), t0)
	wantErr(t, "LinkDevice with another account's token", err, store.ErrLinkInvalid)
	wantDeviceIDs(t, s, "bob@example.org", 1)
	// The failed attempt did not consume it.
	link(t, s, "alice@example.org", 1, t0, 2)
}

func testLinkTokenLimit(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	newAccount(t, s, "alice@example.org")
	newAccount(t, s, "bob@example.org")
	t0 := now()
	for n := range testLimits.MaxLinkTokens {
		createLink(t, s, "alice@example.org", n, t0.Add(time.Duration(n)*time.Second))
	}
	extra := 100
	wantErr(t, "CreateLink beyond the limit",
		s.CreateLink(ctx, "alice@example.org", linkHash(extra), t0, t0.Add(10*time.Minute)), store.ErrLimit)
	// Another account has a limit of its own.
	createLink(t, s, "bob@example.org", extra, t0)
	// A used token no longer counts.
	link(t, s, "alice@example.org", 0, t0, 2)
	createLink(t, s, "alice@example.org", extra+1, t0)
	wantErr(t, "CreateLink beyond the limit",
		s.CreateLink(ctx, "alice@example.org", linkHash(extra+2), t0, t0.Add(10*time.Minute)), store.ErrLimit)
	// Nor does an expired one: token 1 expires at t0+10m+1s.
	later := t0.Add(10*time.Minute + time.Second)
	createLink(t, s, "alice@example.org", extra+2, later)
	_, err := s.LinkDevice(ctx, linkedDevice("alice@example.org", 1), linkHash(1), t0)
	wantErr(t, "LinkDevice with a token deleted after it expired", err, store.ErrLinkInvalid)
	link(t, s, "alice@example.org", 2, t0, 3)
}

func testLinkDeviceLimit(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	newAccount(t, s, "alice@example.org")
	t0 := now()
	for n := 2; n <= testLimits.MaxDevices; n++ {
		createLink(t, s, "alice@example.org", n, t0)
		link(t, s, "alice@example.org", n, t0, uint32(n))
	}
	createLink(t, s, "alice@example.org", 99, t0)
	_, err := s.LinkDevice(ctx, linkedDevice("alice@example.org", 99), linkHash(99), t0)
	wantErr(t, "LinkDevice beyond the device limit", err, store.ErrLimit)
	wantDeviceIDs(t, s, "alice@example.org", 1, 2, 3, 4)
	// The token was kept: after a removal it works.
	wantErr(t, "RemoveDevice", s.RemoveDevice(ctx, store.Mailbox{Address: "alice@example.org", Device: 2}), nil)
	link(t, s, "alice@example.org", 99, t0, 5)
	wantDeviceIDs(t, s, "alice@example.org", 1, 3, 4, 5)
}

// testLinkConcurrent links more devices at once than the limit allows:
// exactly as many as fit succeed, with distinct identifiers.
func testLinkConcurrent(t *testing.T, open Opener) {
	s := open(t, testLimits)
	newAccount(t, s, "alice@example.org")
	t0 := now()
	const n = 5 // tokens, at most MaxLinkTokens
	for i := range n {
		createLink(t, s, "alice@example.org", i, t0)
	}
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		ids  = make(map[uint32]bool)
		full int
	)
	for i := range n {
		wg.Go(func() {
			id, err := s.LinkDevice(t.Context(), linkedDevice("alice@example.org", i), linkHash(i), t0)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				if ids[id] {
					t.Errorf("device %d assigned twice", id)
				}
				ids[id] = true
			case errors.Is(err, store.ErrLimit):
				full++
			default:
				t.Errorf("LinkDevice: %v", err)
			}
		})
	}
	wg.Wait()
	if len(ids) != testLimits.MaxDevices-1 || full != n-len(ids) {
		t.Fatalf("%d links succeeded, %d hit the limit; want %d and %d", len(ids), full, testLimits.MaxDevices-1, n-testLimits.MaxDevices+1)
	}
	wantDeviceIDs(t, s, "alice@example.org", 1, 2, 3, 4)
}

func testRemoveDevice(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	alice1 := newAccount(t, s, "alice@example.org")
	bob := newAccount(t, s, "bob@example.org")
	t0 := now()
	createLink(t, s, "alice@example.org", 1, t0)
	link(t, s, "alice@example.org", 1, t0, 2)
	alice2 := store.Mailbox{Address: "alice@example.org", Device: 2}
	enqueue(t, s, env(alice1, 1, 10), env(alice2, 2, 10), env(alice2, 3, 10), env(bob, 4, 10))
	publish(t, s, alice2, kps("a2", 3), []byte("a2-lr"), 3)
	publish(t, s, alice1, kps("a1", 1), nil, 1)

	wantErr(t, "RemoveDevice", s.RemoveDevice(ctx, alice2), nil)
	wantDeviceIDs(t, s, "alice@example.org", 1)
	_, err := s.Device(ctx, alice2)
	wantErr(t, "Device of a removed device", err, store.ErrUnknownDevice)
	wantIDs(t, "mailbox of the removed device", pendingIDs(t, s, alice2))
	_, _, err = s.ClaimKeyPackage(ctx, alice2)
	wantErr(t, "ClaimKeyPackage of a removed device", err, store.ErrUnknownDevice)
	res, err := s.Enqueue(ctx, []store.Envelope{env(alice2, 5, 10), env(alice1, 6, 10)})
	wantErr(t, "Enqueue", err, nil)
	wantErr(t, "Enqueue to a removed device", res[0], store.ErrUnknownDevice)
	wantErr(t, "Enqueue", res[1], nil)
	// Other mailboxes and key packages are untouched.
	wantIDs(t, "alice's first mailbox", pendingIDs(t, s, alice1), 1, 6)
	wantIDs(t, "bob's mailbox", pendingIDs(t, s, bob), 4)
	claim(t, s, alice1, []byte("a1-0"), false)

	wantErr(t, "RemoveDevice of a removed device", s.RemoveDevice(ctx, alice2), store.ErrUnknownDevice)
	wantErr(t, "RemoveDevice of an unknown device",
		s.RemoveDevice(ctx, store.Mailbox{Address: "alice@example.org", Device: 7}), store.ErrUnknownDevice)
	wantErr(t, "RemoveDevice of an unknown account",
		s.RemoveDevice(ctx, store.Mailbox{Address: "nobody@example.org", Device: 1}), store.ErrUnknownDevice)
	wantErr(t, "RemoveDevice of the last device", s.RemoveDevice(ctx, alice1), store.ErrLastDevice)
	wantDeviceIDs(t, s, "alice@example.org", 1)
	wantIDs(t, "alice's first mailbox", pendingIDs(t, s, alice1), 1, 6)
}

// testRemoveDeviceNotReused removes the device with the highest identifier
// and the first one: identifiers keep growing.
func testRemoveDeviceNotReused(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	newAccount(t, s, "alice@example.org")
	t0 := now()
	createLink(t, s, "alice@example.org", 2, t0)
	link(t, s, "alice@example.org", 2, t0, 2)
	wantErr(t, "RemoveDevice", s.RemoveDevice(ctx, store.Mailbox{Address: "alice@example.org", Device: 2}), nil)
	createLink(t, s, "alice@example.org", 3, t0)
	link(t, s, "alice@example.org", 3, t0, 3)
	wantErr(t, "RemoveDevice", s.RemoveDevice(ctx, store.Mailbox{Address: "alice@example.org", Device: 1}), nil)
	createLink(t, s, "alice@example.org", 4, t0)
	link(t, s, "alice@example.org", 4, t0, 4)
	wantDeviceIDs(t, s, "alice@example.org", 3, 4)
}
