package server_test

import (
	"context"
	"errors"
	"time"

	"github.com/quic-go/quic-go"

	"testing"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// sendOne sends one envelope and returns its per-envelope result.
func sendOne(t *testing.T, r *servertest.Raw, env wire.Envelope) wire.Code {
	t.Helper()
	var ok wire.SendOK
	if err := r.Request(&wire.Send{Envelopes: []wire.Envelope{env}}, &ok); err != nil {
		t.Fatalf("send: %v", err)
	}
	if len(ok.Results) != 1 {
		t.Fatalf("%d results", len(ok.Results))
	}
	return ok.Results[0]
}

func TestDeliveryTokensAndRequestLane(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	ra, rb := servertest.Dial(t, s), servertest.Dial(t, s)
	if err := ra.Register(servertest.NewDevice(t, "alice@a.test"), nil); err != nil {
		t.Fatal(err)
	}
	if err := rb.Register(servertest.NewDevice(t, "bob@a.test"), nil); err != nil {
		t.Fatal(err)
	}
	token := servertest.RandomID()
	token = append(token, servertest.RandomID()...)
	v := wire.TokenVerifier(token)
	if err := rb.Request(&wire.SetDeliveryPolicy{Verifiers: [][]byte{v[:]}, RequestLaneOpen: false}, &wire.OK{}); err != nil {
		t.Fatal(err)
	}
	bob := wire.Mailbox{Address: "bob@a.test", Device: 1}
	env := func(tok []byte) wire.Envelope {
		return wire.Envelope{ID: servertest.RandomID(), To: bob, Token: tok, Sealed: servertest.SealedOfLen(256)}
	}
	if got := sendOne(t, ra, env(token)); got != wire.CodeOK {
		t.Errorf("valid token: %s", got)
	}
	wrong := append([]byte(nil), token...)
	wrong[0] ^= 1
	if got := sendOne(t, ra, env(wrong)); got != wire.CodeTokenInvalid {
		t.Errorf("wrong token: %s, want token_invalid", got)
	}
	if got := sendOne(t, ra, env(nil)); got != wire.CodeRequestLaneClosed {
		t.Errorf("no token, lane closed: %s", got)
	}
	// Open the lane: its budget per recipient is RequestLaneBurst envelopes.
	if err := rb.Request(&wire.SetDeliveryPolicy{Verifiers: [][]byte{v[:]}, RequestLaneOpen: true}, &wire.OK{}); err != nil {
		t.Fatal(err)
	}
	envs := make([]wire.Envelope, wire.RequestLaneBurst+2)
	for i := range envs {
		envs[i] = env(nil)
	}
	var ok wire.SendOK
	if err := ra.Request(&wire.Send{Envelopes: envs}, &ok); err != nil {
		t.Fatal(err)
	}
	for i, code := range ok.Results {
		want := wire.CodeOK
		if i >= wire.RequestLaneBurst {
			want = wire.CodeRateLimited
		}
		if code != want {
			t.Errorf("request-lane envelope %d: %s, want %s", i, code, want)
		}
	}
	// Tokens are not limited by the request budget.
	if got := sendOne(t, ra, env(token)); got != wire.CodeOK {
		t.Errorf("token after lane budget spent: %s", got)
	}
}

func TestEnvelopeChecks(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	ra, rb := servertest.Dial(t, s), servertest.Dial(t, s)
	if err := ra.Register(servertest.NewDevice(t, "alice@a.test"), nil); err != nil {
		t.Fatal(err)
	}
	if err := rb.Register(servertest.NewDevice(t, "bob@a.test"), nil); err != nil {
		t.Fatal(err)
	}
	bob := wire.Mailbox{Address: "bob@a.test", Device: 1}
	tests := []struct {
		name string
		env  wire.Envelope
		want wire.Code
	}{
		{"smallest bucket", wire.Envelope{To: bob, Sealed: servertest.SealedOfLen(wire.MinBucket)}, wire.CodeOK},
		{"largest bucket", wire.Envelope{To: bob, Sealed: servertest.SealedOfLen(wire.MaxBucket)}, wire.CodeOK},
		{"not a bucket", wire.Envelope{To: bob, Sealed: servertest.SealedOfLen(300)}, wire.CodeBadPadding},
		{"empty", wire.Envelope{To: bob, Sealed: []byte{}}, wire.CodeBadPadding},
		{"too large", wire.Envelope{To: bob, Sealed: servertest.SealedOfLen(2 * wire.MaxBucket)}, wire.CodeEnvelopeTooLarge},
		{"unknown device", wire.Envelope{To: wire.Mailbox{Address: "bob@a.test", Device: 2}, Sealed: servertest.SealedOfLen(256)}, wire.CodeUnknownDevice},
		{"unknown account", wire.Envelope{To: wire.Mailbox{Address: "nobody@a.test", Device: 1}, Sealed: servertest.SealedOfLen(256)}, wire.CodeUnknownDevice},
		{"other domain: queued for relay", wire.Envelope{To: wire.Mailbox{Address: "bob@b.test", Device: 1}, Sealed: servertest.SealedOfLen(256)}, wire.CodeOK},
		{"other domain, bad padding", wire.Envelope{To: wire.Mailbox{Address: "bob@b.test", Device: 1}, Sealed: servertest.SealedOfLen(300)}, wire.CodeBadPadding},
	}
	for _, tt := range tests {
		tt.env.ID = servertest.RandomID()
		if got := sendOne(t, ra, tt.env); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.name, got, tt.want)
		}
	}
	// A send with too many envelopes fails as a whole.
	envs := make([]wire.Envelope, wire.MaxEnvelopesPerSend+1)
	for i := range envs {
		envs[i] = wire.Envelope{ID: servertest.RandomID(), To: bob, Sealed: []byte{1}}
	}
	servertest.MustCode(t, ra.Request(&wire.Send{Envelopes: envs}, &wire.SendOK{}), wire.CodeLimitExceeded)
}

func TestRegistrationPolicies(t *testing.T) {
	t.Parallel()
	closed := servertest.Start(t, servertest.Options{Registration: server.RegistrationClosed})
	servertest.MustCode(t, servertest.Dial(t, closed).Register(servertest.NewDevice(t, "alice@a.test"), nil), wire.CodeRegistrationClosed)

	inv := servertest.Start(t, servertest.Options{Registration: server.RegistrationInvite})
	servertest.MustCode(t, servertest.Dial(t, inv).Register(servertest.NewDevice(t, "alice@a.test"), nil), wire.CodeInviteInvalid)
	servertest.MustCode(t, servertest.Dial(t, inv).Register(servertest.NewDevice(t, "alice@a.test"), []byte("made-up")), wire.CodeInviteInvalid)
	token, err := daemon.CreateInvite(servertest.Context(t), inv.Data, "", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := servertest.Dial(t, inv).Register(servertest.NewDevice(t, "alice@a.test"), []byte(token)); err != nil {
		t.Fatalf("register with invite: %v", err)
	}
	servertest.MustCode(t, servertest.Dial(t, inv).Register(servertest.NewDevice(t, "bob@a.test"), []byte(token)), wire.CodeInviteInvalid)
}

func TestKeyDirectory(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	ra, rb := servertest.Dial(t, s), servertest.Dial(t, s)
	a, b := servertest.NewDevice(t, "alice@a.test"), servertest.NewDevice(t, "bob@a.test")
	if err := ra.Register(a, nil); err != nil {
		t.Fatal(err)
	}
	if err := rb.Register(b, nil); err != nil {
		t.Fatal(err)
	}
	var devs wire.GetDevicesOK
	if err := ra.Request(&wire.GetDevices{Address: "bob@a.test"}, &devs); err != nil {
		t.Fatal(err)
	}
	if len(devs.Devices) != 1 || devs.Devices[0].ID != 1 || string(devs.Devices[0].Keys.HPKEKey) != string(b.Keys().HPKEKey) {
		t.Fatalf("devices: %+v", devs)
	}
	servertest.MustCode(t, ra.Request(&wire.GetDevices{Address: "nobody@a.test"}, &devs), wire.CodeUnknownAccount)

	bob := &wire.ClaimKeyPackage{Address: "bob@a.test", Device: 1}
	servertest.MustCode(t, ra.Request(bob, &wire.ClaimKeyPackageOK{}), wire.CodeNoKeyPackage)
	var pub wire.PublishKeyPackagesOK
	if err := rb.Request(&wire.PublishKeyPackages{OneTime: [][]byte{[]byte("kp1"), []byte("kp2")}, LastResort: []byte("last")}, &pub); err != nil || pub.Stored != 2 {
		t.Fatalf("publish: %v %+v", err, pub)
	}
	seen := map[string]bool{}
	for range 2 {
		var c wire.ClaimKeyPackageOK
		if err := ra.Request(bob, &c); err != nil || c.LastResort {
			t.Fatalf("claim: %v %+v", err, c)
		}
		if seen[string(c.KeyPackage)] {
			t.Fatalf("key package %q claimed twice", c.KeyPackage)
		}
		seen[string(c.KeyPackage)] = true
	}
	for range 2 {
		var c wire.ClaimKeyPackageOK
		if err := ra.Request(bob, &c); err != nil || !c.LastResort || string(c.KeyPackage) != "last" {
			t.Fatalf("claim last resort: %v %+v", err, c)
		}
	}
	servertest.MustCode(t, ra.Request(&wire.ClaimKeyPackage{Address: "bob@a.test", Device: 9}, &wire.ClaimKeyPackageOK{}), wire.CodeUnknownDevice)
}

// Connections beyond the server's limit are refused during the handshake.
func TestConnectionLimit(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{MaxConnections: 2})
	servertest.Dial(t, s)
	servertest.Dial(t, s)
	ctx, cancel := context.WithTimeout(servertest.Context(t), 20*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, s.Addr, servertest.TLSConfig(t, s, wire.ALPN), &quic.Config{})
	if err == nil {
		// The handshake may complete before the refusal arrives; then the
		// connection is closed at once.
		<-qc.Context().Done()
		err = context.Cause(qc.Context())
	}
	var te *quic.TransportError
	var ae *quic.ApplicationError
	if !errors.As(err, &te) && !errors.As(err, &ae) {
		t.Fatalf("third connection: %v, want it refused", err)
	}
	t.Logf("third connection refused: %v", err)
}
