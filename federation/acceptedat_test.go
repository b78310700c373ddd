package federation_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/client/seal"
	"github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// domainCertKey reads the sender-certificate key of a test server.
func domainCertKey(t *testing.T, s *servertest.Server) ed25519.PrivateKey {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(s.Data, daemon.CertKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(b)
	if block == nil {
		t.Fatal("no PEM block in the sender-certificate key file")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return k.(ed25519.PrivateKey)
}

// expiredSender returns a sender of address whose certificate, signed with
// its domain's key, expired at expires.
func expiredSender(t *testing.T, domainKey ed25519.PrivateKey, address string, expires time.Time) seal.Sender {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	body, err := wire.Marshal(&wire.SenderCertBody{Address: address, Device: 1, SigKey: pub, Expires: uint64(expires.Unix())})
	if err != nil {
		t.Fatal(err)
	}
	cert, err := wire.Marshal(&wire.SenderCert{Body: body, Signature: ed25519.Sign(domainKey, wire.SenderCertMessage(body))})
	if err != nil {
		t.Fatal(err)
	}
	return seal.Sender{Cert: cert, SigKey: priv}
}

// A peer domain cannot revive another domain's expired sender certificate
// by backdating accepted_at (spec/08-federation.md section 8.8.1): evil.test
// relays to Bob an envelope whose certificate, of a.test, expired 6 days
// ago, with accepted_at 7 days ago, and Bob's client refuses the
// certificate. The same from a.test itself, whose outbound queue may
// legitimately have held it that long, is accepted.
func TestBackdatedRelayCannotReviveAnotherDomainsCertificate(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	a, b := fed["a.test"], fed["b.test"]
	bob := register(t, b, "bob@b.test")

	// Bob's device keys, as any sender looks them up.
	helper := authenticated(t, b, "helper@b.test")
	var devs wire.GetDevicesOK
	if err := helper.Request(&wire.GetDevices{Address: "bob@b.test"}, &devs); err != nil || len(devs.Devices) != 1 {
		t.Fatalf("bob's devices: %v %+v", err, devs)
	}
	to := wire.Mailbox{Address: "bob@b.test", Device: devs.Devices[0].ID}
	now := time.Now()
	sender := expiredSender(t, domainCertKey(t, a), "mallory@a.test", now.Add(-6*24*time.Hour))
	payload, err := wire.Marshal(&wire.FragmentPayload{Mode: wire.PayloadFragment, Hash: make([]byte, 32), Index: 0, Count: 2, Data: []byte("part")})
	if err != nil {
		t.Fatal(err)
	}
	relayFrom := func(origin string) []byte {
		t.Helper()
		id := servertest.RandomID()
		sealed, err := seal.Seal(sender, id, to, devs.Devices[0].Keys, payload)
		if err != nil {
			t.Fatal(err)
		}
		r := servertest.DialFed(t, b, b.CADir(), origin)
		if err := hello(r, origin); err != nil {
			t.Fatalf("hello as %s: %v", origin, err)
		}
		var ok wire.RelayOK
		env := wire.Envelope{ID: id, To: to, Sealed: sealed, AcceptedAt: uint64(now.Add(-7 * 24 * time.Hour).UnixMilli())}
		if err := r.Request(&wire.Relay{Envelopes: []wire.Envelope{env}}, &ok); err != nil || ok.Results[0] != wire.CodeOK {
			t.Fatalf("relay from %s: %v %v", origin, err, ok.Results)
		}
		return id
	}
	forged := relayFrom("evil.test")
	genuine := relayFrom("a.test")

	c, err := client.Connect(servertest.Context(t), bob.p)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	drops := map[[16]byte]error{}
	ctx, cancel := context.WithTimeout(servertest.Context(t), 10*time.Second)
	defer cancel()
	if err := c.Receive(ctx, client.ReceiveOptions{
		Wait: time.Second,
		OnDrop: func(id [16]byte, err error) {
			mu.Lock()
			defer mu.Unlock()
			drops[id] = err
		},
	}); err != nil && ctx.Err() == nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if err := drops[[16]byte(forged)]; !errors.Is(err, seal.ErrCertificate) {
		t.Errorf("a.test's certificate expired 6 days ago, relayed by evil.test backdated 7 days: dropped with %v, want the certificate refused", err)
	}
	if err := drops[[16]byte(genuine)]; err != nil {
		t.Errorf("a.test's own envelope, queued there 7 days, was dropped: %v", err)
	}
}
