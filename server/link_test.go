package server_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// Tests of spec/05-accounts.md section 5.11: linking and removing devices.

// registered dials s and registers a new device of address on the
// connection.
func registered(t *testing.T, s *servertest.Server, address string, invite []byte) (*servertest.Raw, *servertest.Device) {
	t.Helper()
	r, d := servertest.Dial(t, s), servertest.NewDevice(t, address)
	if err := r.Register(d, invite); err != nil {
		t.Fatalf("register %s: %v", address, err)
	}
	return r, d
}

// linked creates a link token on by and registers a new device of its
// account with it on a new connection.
func linked(t *testing.T, s *servertest.Server, by *servertest.Raw, address string) (*servertest.Raw, *servertest.Device) {
	t.Helper()
	ok, err := by.CreateLink()
	if err != nil {
		t.Fatalf("create-link: %v", err)
	}
	r, d := servertest.Dial(t, s), servertest.NewDevice(t, address)
	if err := r.RegisterLinked(d, ok.Token); err != nil {
		t.Fatalf("register with a link token: %v", err)
	}
	return r, d
}

// devices returns the identifiers get-devices lists for address.
func devices(t *testing.T, r *servertest.Raw, address string) []uint32 {
	t.Helper()
	var ok wire.GetDevicesOK
	if err := r.Request(&wire.GetDevices{Address: address}, &ok); err != nil {
		t.Fatalf("get-devices: %v", err)
	}
	ids := make([]uint32, len(ok.Devices))
	for i, d := range ok.Devices {
		ids[i] = d.ID
	}
	return ids
}

func wantDevices(t *testing.T, r *servertest.Raw, address string, want ...uint32) {
	t.Helper()
	got := devices(t, r, address)
	if len(got) != len(want) {
		t.Fatalf("get-devices %s: %v, want %v", address, got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("get-devices %s: %v, want %v", address, got, want)
		}
	}
}

// closedWith waits until the server closed r's connection and fails the
// test unless it did so with code.
func closedWith(t *testing.T, r *servertest.Raw, code quic.ApplicationErrorCode) {
	t.Helper()
	select {
	case <-r.QC.Context().Done():
	case <-time.After(30 * time.Second):
		t.Fatal("the connection was not closed")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(r.QC.Context()); !errors.As(err, &ae) || !ae.Remote || ae.ErrorCode != code {
		t.Fatalf("connection closed with %v, want application error %d from the server", err, code)
	}
}

// The main path, on both backends: a linked device is listed at once, can
// authenticate and receives; the token is single-use; under the invite
// policy no invite is needed; a restart keeps it all.
func TestLinkDevice(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			o := servertest.Options{Registration: server.RegistrationInvite}
			if backend == "postgres" {
				o.DB = servertest.PostgresURL(t)
				if err := daemon.Migrate(servertest.Context(t), o.DB); err != nil {
					t.Fatal(err)
				}
			}
			s := servertest.Start(t, o)
			invite, err := daemon.CreateInvite(servertest.Context(t), s.Data, o.DB, time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			ra, a1 := registered(t, s, "alice@a.test", []byte(invite))
			before := time.Now()
			tok, err := ra.CreateLink()
			if err != nil {
				t.Fatal(err)
			}
			if len(tok.Token) != wire.LinkTokenLen {
				t.Fatalf("link token of %d bytes", len(tok.Token))
			}
			exp := time.Unix(int64(tok.Expires), 0)
			if exp.Before(before.Add(wire.LinkTokenTTL-time.Second)) || exp.After(time.Now().Add(wire.LinkTokenTTL)) {
				t.Fatalf("link token expires at %v, want 10 minutes after %v", exp, before)
			}

			rb, a2 := servertest.Dial(t, s), servertest.NewDevice(t, "alice@a.test")
			if err := rb.RegisterLinked(a2, tok.Token); err != nil {
				t.Fatalf("register with a link token under the invite policy: %v", err)
			}
			if a2.ID != 2 {
				t.Fatalf("linked device %d, want 2", a2.ID)
			}
			var ok wire.GetDevicesOK
			if err := ra.Request(&wire.GetDevices{Address: "alice@a.test"}, &ok); err != nil {
				t.Fatal(err)
			}
			if len(ok.Devices) != 2 || ok.Devices[1].ID != 2 ||
				!bytes.Equal(ok.Devices[1].Keys.SigKey, a2.Keys().SigKey) || !bytes.Equal(ok.Devices[1].Keys.HPKEKey, a2.Keys().HPKEKey) {
				t.Fatalf("get-devices after linking: %+v", ok.Devices)
			}
			// The linked connection acts as device 2.
			if _, err := rb.CreateLink(); err != nil {
				t.Fatalf("create-link as the linked device: %v", err)
			}

			// Single use.
			rc, a3 := servertest.Dial(t, s), servertest.NewDevice(t, "alice@a.test")
			servertest.MustCode(t, rc.RegisterLinked(a3, tok.Token), wire.CodeLinkInvalid)

			// An envelope to device 2 reaches it on a new connection, after a
			// restart.
			env := wire.Envelope{ID: servertest.RandomID(), To: wire.Mailbox{Address: "alice@a.test", Device: 2}, Sealed: servertest.SealedOfLen(256)}
			if code := sendOne(t, ra, env); code != wire.CodeOK {
				t.Fatalf("send to the linked device: %s", code)
			}
			s.Restart()
			rd := servertest.Dial(t, s)
			if err := rd.Authenticate(a2); err != nil {
				t.Fatalf("authenticate as the linked device after a restart: %v", err)
			}
			if got := pushed(t, rd); len(got) != 1 || !bytes.Equal(got[0].ID, env.ID) {
				t.Fatalf("linked device got %+v", got)
			}
			re := servertest.Dial(t, s)
			if err := re.Authenticate(a1); err != nil {
				t.Fatal(err)
			}
			wantDevices(t, re, "alice@a.test", 1, 2)
		})
	}
}

// The refusals of create-link and of register with a link token.
func TestLinkRefused(t *testing.T) {
	t.Parallel()
	clock := servertest.NewClock(time.Unix(1_800_000_000, 0))
	s := servertest.Start(t, servertest.Options{Now: clock.Now})
	ra, _ := registered(t, s, "alice@a.test", nil)
	registered(t, s, "bob@a.test", nil)
	tok, err := ra.CreateLink()
	if err != nil {
		t.Fatal(err)
	}
	if want := uint64(1_800_000_000 + 600); tok.Expires != want {
		t.Fatalf("expires %d, want %d", tok.Expires, want)
	}
	attempt := func(address string, token []byte) error {
		r, d := servertest.Dial(t, s), servertest.NewDevice(t, address)
		return r.RegisterLinked(d, token)
	}

	// Not before authentication.
	_, err = servertest.Dial(t, s).CreateLink()
	servertest.MustCode(t, err, wire.CodeUnauthenticated)
	servertest.MustCode(t, servertest.Dial(t, s).RemoveDevice(1), wire.CodeUnauthenticated)

	// Another account, no account, another domain: the token stays valid.
	servertest.MustCode(t, attempt("bob@a.test", tok.Token), wire.CodeLinkInvalid)
	servertest.MustCode(t, attempt("nobody@a.test", tok.Token), wire.CodeLinkInvalid)
	servertest.MustCode(t, attempt("alice@b.test", tok.Token), wire.CodeWrongDomain)
	servertest.MustCode(t, attempt("alice@a.test", bytes.Repeat([]byte{1}, 16)), wire.CodeLinkInvalid)
	// A signature over another device identifier than 0.
	r, d := servertest.Dial(t, s), servertest.NewDevice(t, "alice@a.test")
	err = r.Request(&wire.Register{Address: d.Address, Keys: d.Keys(), Link: tok.Token,
		Signature: ed25519.Sign(d.Sig, wire.DeviceAuthMessage(d.Address, 2, r.Exporter()))}, &wire.RegisterOK{})
	servertest.MustCode(t, err, wire.CodeAuthFailed)
	// An invite and a link token together.
	err = r.Request(&wire.Register{Address: d.Address, Keys: d.Keys(), Link: tok.Token, Invite: []byte("invite"),
		Signature: ed25519.Sign(d.Sig, wire.DeviceAuthMessage(d.Address, 0, r.Exporter()))}, &wire.RegisterOK{})
	servertest.MustCode(t, err, wire.CodeMalformed)

	// Expiry: valid until one second before, not at the expiry.
	clock.Advance(wire.LinkTokenTTL - time.Second)
	if err := attempt("alice@a.test", tok.Token); err != nil {
		t.Fatalf("link one second before the expiry: %v", err)
	}
	tok2, err := ra.CreateLink()
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(wire.LinkTokenTTL)
	servertest.MustCode(t, attempt("alice@a.test", tok2.Token), wire.CodeLinkInvalid)

	// At most 5 unexpired tokens; an expired one does not count.
	for i := range wire.MaxLinkTokens {
		if _, err := ra.CreateLink(); err != nil {
			t.Fatalf("create-link %d: %v", i+1, err)
		}
	}
	_, err = ra.CreateLink()
	servertest.MustCode(t, err, wire.CodeLimitExceeded)
	clock.Advance(wire.LinkTokenTTL)
	if _, err := ra.CreateLink(); err != nil {
		t.Fatalf("create-link after the tokens expired: %v", err)
	}
	wantDevices(t, ra, "alice@a.test", 1, 2)
}

// An account has at most 16 devices; a token refused for that is kept.
func TestLinkDeviceLimit(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	ra, _ := registered(t, s, "alice@a.test", nil)
	for i := 2; i <= wire.MaxDevicesPerAccount; i++ {
		_, d := linked(t, s, ra, "alice@a.test")
		if d.ID != uint32(i) {
			t.Fatalf("linked device %d, want %d", d.ID, i)
		}
	}
	tok, err := ra.CreateLink()
	if err != nil {
		t.Fatal(err)
	}
	r, d := servertest.Dial(t, s), servertest.NewDevice(t, "alice@a.test")
	servertest.MustCode(t, r.RegisterLinked(d, tok.Token), wire.CodeLimitExceeded)
	if len(devices(t, ra, "alice@a.test")) != wire.MaxDevicesPerAccount {
		t.Fatal("device count changed")
	}
	if err := ra.RemoveDevice(5); err != nil {
		t.Fatal(err)
	}
	r = servertest.Dial(t, s)
	if err := r.RegisterLinked(d, tok.Token); err != nil || d.ID != 17 {
		t.Fatalf("register with the kept token after a removal: device %d, %v; want 17", d.ID, err)
	}
}

// remove-device deletes the device's mailbox and key packages, closes its
// connections, and its identifier is never reused, across a restart.
func TestRemoveDevice(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	ra, a1 := registered(t, s, "alice@a.test", nil)
	rb, a2 := linked(t, s, ra, "alice@a.test")
	if err := rb.Request(&wire.PublishKeyPackages{OneTime: [][]byte{[]byte("kp")}}, &wire.PublishKeyPackagesOK{}); err != nil {
		t.Fatal(err)
	}
	to2 := wire.Mailbox{Address: "alice@a.test", Device: 2}
	if code := sendOne(t, ra, wire.Envelope{ID: servertest.RandomID(), To: to2, Sealed: servertest.SealedOfLen(256)}); code != wire.CodeOK {
		t.Fatalf("send: %s", code)
	}
	if n := servertest.MailboxCount(t, s.DBPath()); n != 1 {
		t.Fatalf("%d envelopes stored, want 1", n)
	}

	if err := ra.RemoveDevice(2); err != nil {
		t.Fatalf("remove-device: %v", err)
	}
	closedWith(t, rb, wire.CloseDeviceRemoved)
	wantDevices(t, ra, "alice@a.test", 1)
	if n := servertest.MailboxCount(t, s.DBPath()); n != 0 {
		t.Fatalf("%d envelopes stored after the removal, want 0", n)
	}
	err := ra.Request(&wire.ClaimKeyPackage{Address: "alice@a.test", Device: 2}, &wire.ClaimKeyPackageOK{})
	servertest.MustCode(t, err, wire.CodeUnknownDevice)
	if code := sendOne(t, ra, wire.Envelope{ID: servertest.RandomID(), To: to2, Sealed: servertest.SealedOfLen(256)}); code != wire.CodeUnknownDevice {
		t.Fatalf("send to a removed device: %s", code)
	}
	servertest.MustCode(t, servertest.Dial(t, s).Authenticate(a2), wire.CodeAuthFailed)

	servertest.MustCode(t, ra.RemoveDevice(2), wire.CodeUnknownDevice)
	servertest.MustCode(t, ra.RemoveDevice(9), wire.CodeUnknownDevice)
	servertest.MustCode(t, ra.RemoveDevice(1), wire.CodeLastDevice)
	frame, err := wire.EncodeFrame(map[uint64]any{0: wire.TypeRemoveDevice, 1: 0})
	if err != nil {
		t.Fatal(err)
	}
	ra.ExpectCode(frame, wire.CodeMalformed)
	// Another account's device is unknown to this one.
	registered(t, s, "bob@a.test", nil)
	servertest.MustCode(t, ra.RemoveDevice(1+1), wire.CodeUnknownDevice)

	// A device removes itself: the response arrives, then the close.
	rc, a3 := linked(t, s, ra, "alice@a.test")
	if a3.ID != 3 {
		t.Fatalf("linked device %d after removing 2, want 3", a3.ID)
	}
	if err := rc.RemoveDevice(3); err != nil {
		t.Fatalf("remove-device of itself: %v", err)
	}
	closedWith(t, rc, wire.CloseDeviceRemoved)

	s.Restart()
	ra = servertest.Dial(t, s)
	if err := ra.Authenticate(a1); err != nil {
		t.Fatal(err)
	}
	wantDevices(t, ra, "alice@a.test", 1)
	if _, a4 := linked(t, s, ra, "alice@a.test"); a4.ID != 4 {
		t.Fatalf("linked device %d after a restart, want 4", a4.ID)
	}
	wantDevices(t, ra, "alice@a.test", 1, 4)
}

// Two processes share a PostgreSQL store: removing a device through one
// closes its connections on the other.
func TestRemoveDeviceOnSharedStore(t *testing.T) {
	t.Parallel()
	db := servertest.PostgresURL(t)
	if err := daemon.Migrate(servertest.Context(t), db); err != nil {
		t.Fatal(err)
	}
	s1 := servertest.Start(t, servertest.Options{DB: db})
	s2 := servertest.Start(t, servertest.Options{DB: db, Data: s1.Data, CADir: s1.CADir()})
	ra, _ := registered(t, s1, "alice@a.test", nil)
	tok, err := ra.CreateLink()
	if err != nil {
		t.Fatal(err)
	}
	rb, a2 := servertest.Dial(t, s2), servertest.NewDevice(t, "alice@a.test")
	if err := rb.RegisterLinked(a2, tok.Token); err != nil {
		t.Fatalf("link on the second process: %v", err)
	}
	if err := ra.RemoveDevice(a2.ID); err != nil {
		t.Fatal(err)
	}
	closedWith(t, rb, wire.CloseDeviceRemoved)
	// The device removing itself on one process gets its response.
	rc, a3 := linked(t, s2, ra, "alice@a.test")
	if err := rc.RemoveDevice(a3.ID); err != nil {
		t.Fatalf("remove-device of itself on a shared store: %v", err)
	}
	closedWith(t, rc, wire.CloseDeviceRemoved)
}
