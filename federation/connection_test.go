package federation_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// Before fed-hello a peer holds at most one small frame; client and
// federation requests do not cross over.
func TestFederationConnectionRules(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	b := fed["b.test"]
	r := servertest.DialFed(t, b, b.CADir(), "a.test")
	// A frame over 16 KiB before hello is refused from its length alone.
	r.ExpectCode(wire.AppendVarint(nil, wire.MaxPreAuthFrame+1), wire.CodeFrameTooLarge)
	// Client requests are unknown on a federation connection...
	servertest.MustCode(t, r.Request(&wire.Authenticate{Address: "bob@b.test", Device: 1, Signature: make([]byte, 64)}, &wire.OK{}),
		wire.CodeUnknownRequest)
	if err := hello(r, "a.test"); err != nil {
		t.Fatal(err)
	}
	servertest.MustCode(t, hello(r, "a.test"), wire.CodeAlreadyAuthenticated)
	servertest.MustCode(t, r.Request(&wire.Send{Envelopes: []wire.Envelope{{ID: servertest.RandomID(),
		To: wire.Mailbox{Address: "bob@b.test", Device: 1}, Sealed: servertest.SealedOfLen(256)}}}, &wire.SendOK{}),
		wire.CodeUnknownRequest)
	// ...and federation requests are unknown on a client connection.
	c := servertest.Dial(t, b)
	servertest.MustCode(t, c.Request(&wire.FedHello{Domain: "a.test"}, &wire.FedHelloOK{}), wire.CodeUnknownRequest)
}

// A federation connection without fed-hello is closed after the deadline.
func TestFederationHelloDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 10 s deadline")
	}
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	b := fed["b.test"]
	r := servertest.DialFed(t, b, b.CADir(), "a.test")
	select {
	case <-r.QC.Context().Done():
	case <-time.After(wire.AuthDeadline + 10*time.Second):
		t.Fatal("connection without fed-hello still open")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(r.QC.Context()); !errors.As(err, &ae) || ae.ErrorCode != wire.CloseAuthTimeout {
		t.Fatalf("closed with %v, want application error %d", err, wire.CloseAuthTimeout)
	}
}

// Remote lookups reach the account's own homeserver, and its refusals
// come back typed.
func TestRemoteKeyDirectory(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test", "c.test")
	a, b := fed["a.test"], fed["b.test"]
	fed["c.test"].Stop() // static peer entry, nobody answering: no DNS
	rb := servertest.Dial(t, b)
	if err := rb.Register(servertest.NewDevice(t, "bob@b.test"), nil); err != nil {
		t.Fatal(err)
	}
	if err := rb.Request(&wire.PublishKeyPackages{OneTime: [][]byte{[]byte("bob-kp")}}, &wire.PublishKeyPackagesOK{}); err != nil {
		t.Fatal(err)
	}
	ra := servertest.Dial(t, a)
	if err := ra.Register(servertest.NewDevice(t, "alice@a.test"), nil); err != nil {
		t.Fatal(err)
	}
	var devs wire.GetDevicesOK
	if err := ra.Request(&wire.GetDevices{Address: "bob@b.test"}, &devs); err != nil || len(devs.Devices) != 1 {
		t.Fatalf("remote get-devices: %v %+v", err, devs)
	}
	servertest.MustCode(t, ra.Request(&wire.GetDevices{Address: "nobody@b.test"}, &devs), wire.CodeUnknownAccount)
	var kp wire.ClaimKeyPackageOK
	if err := ra.Request(&wire.ClaimKeyPackage{Address: "bob@b.test", Device: 1}, &kp); err != nil || string(kp.KeyPackage) != "bob-kp" {
		t.Fatalf("remote claim: %v %+v", err, kp)
	}
	servertest.MustCode(t, ra.Request(&wire.ClaimKeyPackage{Address: "bob@b.test", Device: 1}, &kp), wire.CodeNoKeyPackage)
	var key wire.DomainKeyOK
	if err := ra.Request(&wire.GetDomainKey{Domain: "b.test"}, &key); err != nil || len(key.Key) != 32 {
		t.Fatalf("get-domain-key b.test: %v %+v", err, key)
	}
	var info wire.ServerInfoOK
	if err := rb.Request(&wire.ServerInfo{}, &info); err != nil || string(info.CertKey) != string(key.Key) {
		t.Fatalf("b.test's key differs from what a.test fetched: %v", err)
	}
	// A domain whose homeserver is down: unavailable, with a retry-after.
	err := ra.Request(&wire.GetDevices{Address: "carol@c.test"}, &devs)
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeUnavailable || pe.RetryAfter == 0 {
		t.Fatalf("lookup on an unreachable domain: %v, want unavailable with retry-after", err)
	}
}
