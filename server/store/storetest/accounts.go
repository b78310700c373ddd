package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// sameDevice fails the test unless got equals want.
func sameDevice(t *testing.T, got, want store.Device) {
	t.Helper()
	if got.Address != want.Address || got.ID != want.ID || got.KEM != want.KEM ||
		!bytes.Equal(got.SigKey, want.SigKey) || !bytes.Equal(got.HPKEKey, want.HPKEKey) ||
		!got.CreatedAt.Equal(want.CreatedAt) {
		t.Fatalf("device\n  %+v\nwant\n  %+v", got, want)
	}
}

// noAccount fails the test unless address has no account.
func noAccount(t *testing.T, s store.Store, address string) {
	t.Helper()
	_, err := s.Devices(t.Context(), address)
	wantErr(t, "Devices of an account that should not exist", err, store.ErrUnknownAccount)
}

func testCreateAccount(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	dev := device("alice@example.org")
	wantErr(t, "CreateAccount", s.CreateAccount(ctx, dev, nil), nil)

	got, err := s.Device(ctx, store.Mailbox{Address: dev.Address, Device: 1})
	wantErr(t, "Device", err, nil)
	sameDevice(t, got, dev)

	devs, err := s.Devices(ctx, dev.Address)
	wantErr(t, "Devices", err, nil)
	if len(devs) != 1 {
		t.Fatalf("Devices: %d devices, want 1", len(devs))
	}
	sameDevice(t, devs[0], dev)

	other := device("alice@example.org")
	other.SigKey = bytes.Repeat([]byte{0xee}, 32)
	wantErr(t, "CreateAccount of a taken address", s.CreateAccount(ctx, other, nil), store.ErrAccountExists)
	got, err = s.Device(ctx, store.Mailbox{Address: dev.Address, Device: 1})
	wantErr(t, "Device", err, nil)
	sameDevice(t, got, dev)

	// Another address is another account.
	newAccount(t, s, "bob@example.org")
}

func testCreateAccountFirstDeviceID(t *testing.T, open Opener) {
	s := open(t, testLimits)
	dev := device("alice@example.org")
	dev.ID = 2
	if err := s.CreateAccount(t.Context(), dev, nil); err == nil {
		t.Fatal("CreateAccount with first device ID 2 succeeded")
	}
	noAccount(t, s, dev.Address)
}

func testInviteConsumedOnce(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	hash := bytes.Repeat([]byte{1}, 32)
	wantErr(t, "CreateInvite", s.CreateInvite(ctx, hash, time.Now().Add(time.Hour)), nil)
	wantErr(t, "CreateAccount with invite", s.CreateAccount(ctx, device("alice@example.org"), hash), nil)
	wantErr(t, "CreateAccount with a used invite",
		s.CreateAccount(ctx, device("bob@example.org"), hash), store.ErrInviteInvalid)
	noAccount(t, s, "bob@example.org")
	if _, err := s.Devices(ctx, "alice@example.org"); err != nil {
		t.Fatalf("Devices: %v", err)
	}
}

func testInviteExpired(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	hash := bytes.Repeat([]byte{2}, 32)
	wantErr(t, "CreateInvite", s.CreateInvite(ctx, hash, time.Now().Add(-time.Minute)), nil)
	wantErr(t, "CreateAccount with an expired invite",
		s.CreateAccount(ctx, device("alice@example.org"), hash), store.ErrInviteInvalid)
	noAccount(t, s, "alice@example.org")
}

func testInviteUnknown(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	wantErr(t, "CreateInvite", s.CreateInvite(ctx, bytes.Repeat([]byte{3}, 32), time.Now().Add(time.Hour)), nil)
	wantErr(t, "CreateAccount with an unknown invite",
		s.CreateAccount(ctx, device("alice@example.org"), bytes.Repeat([]byte{4}, 32)), store.ErrInviteInvalid)
	noAccount(t, s, "alice@example.org")
}

func testInviteKeptWhenAccountExists(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	newAccount(t, s, "alice@example.org")
	hash := bytes.Repeat([]byte{5}, 32)
	wantErr(t, "CreateInvite", s.CreateInvite(ctx, hash, time.Now().Add(time.Hour)), nil)
	wantErr(t, "CreateAccount of a taken address with an invite",
		s.CreateAccount(ctx, device("alice@example.org"), hash), store.ErrAccountExists)
	// Nothing was written: the invite is still there.
	wantErr(t, "CreateAccount with the invite", s.CreateAccount(ctx, device("bob@example.org"), hash), nil)
}

func testUnknownDevice(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	newAccount(t, s, "alice@example.org")
	_, err := s.Device(ctx, store.Mailbox{Address: "alice@example.org", Device: 2})
	wantErr(t, "Device of an unknown device", err, store.ErrUnknownDevice)
	_, err = s.Device(ctx, store.Mailbox{Address: "nobody@example.org", Device: 1})
	wantErr(t, "Device of an unknown account", err, store.ErrUnknownDevice)
	noAccount(t, s, "nobody@example.org")
}

// samePolicy fails the test unless got equals want.
func samePolicy(t *testing.T, got, want store.Policy) {
	t.Helper()
	ok := got.RequestLaneOpen == want.RequestLaneOpen && len(got.Verifiers) == len(want.Verifiers)
	for i := 0; ok && i < len(got.Verifiers); i++ {
		ok = bytes.Equal(got.Verifiers[i], want.Verifiers[i])
	}
	if !ok {
		t.Fatalf("policy %+v, want %+v", got, want)
	}
}

func testPolicyDefault(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	newAccount(t, s, "alice@example.org")
	p, err := s.Policy(ctx, "alice@example.org")
	wantErr(t, "Policy", err, nil)
	samePolicy(t, p, store.Policy{RequestLaneOpen: true})
	_, err = s.Policy(ctx, "nobody@example.org")
	wantErr(t, "Policy of an unknown account", err, store.ErrUnknownAccount)
}

func testPolicyReplace(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	newAccount(t, s, "alice@example.org")
	newAccount(t, s, "bob@example.org")
	v := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }

	for _, p := range []store.Policy{
		{Verifiers: [][]byte{v(1), v(2), v(3)}, RequestLaneOpen: false},
		{Verifiers: [][]byte{v(9)}, RequestLaneOpen: true},
		{Verifiers: [][]byte{v(8), v(7)}, RequestLaneOpen: false},
		{RequestLaneOpen: false},
		{RequestLaneOpen: true},
	} {
		wantErr(t, "SetPolicy", s.SetPolicy(ctx, "alice@example.org", p), nil)
		got, err := s.Policy(ctx, "alice@example.org")
		wantErr(t, "Policy", err, nil)
		samePolicy(t, got, p)
	}
	// Another account's policy is untouched.
	got, err := s.Policy(ctx, "bob@example.org")
	wantErr(t, "Policy", err, nil)
	samePolicy(t, got, store.Policy{RequestLaneOpen: true})

	wantErr(t, "SetPolicy of an unknown account",
		s.SetPolicy(ctx, "nobody@example.org", store.Policy{}), store.ErrUnknownAccount)
}
