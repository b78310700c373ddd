package federation_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

func hello(r *servertest.Raw, domain string) error {
	var ok wire.FedHelloOK
	return r.Request(&wire.FedHello{Domain: domain}, &ok)
}

// A peer must prove the domain it claims with its certificate.
func TestPeerMustProveItsDomain(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	b := fed["b.test"]
	register(t, b, "bob@b.test")
	bob := wire.Mailbox{Address: "bob@b.test", Device: 1}
	relay := &wire.Relay{Envelopes: []wire.Envelope{{ID: servertest.RandomID(), To: bob, Sealed: servertest.SealedOfLen(256)}}}

	// A certificate for a.test does not make its holder c.test, nor b.test.
	r := servertest.DialFed(t, b, b.CADir(), "a.test")
	servertest.MustCode(t, r.Request(relay, &wire.RelayOK{}), wire.CodePeerUnauthenticated)
	servertest.MustCode(t, hello(r, "c.test"), wire.CodePeerUnauthenticated)
	servertest.MustCode(t, hello(r, "b.test"), wire.CodePeerUnauthenticated)
	// A certificate for a.test from a CA b.test does not trust proves
	// nothing.
	other := servertest.DialFed(t, b, filepath.Join(t.TempDir(), "rogue-ca"), "a.test")
	servertest.MustCode(t, hello(other, "a.test"), wire.CodePeerUnauthenticated)
	// The genuine a.test certificate works.
	if err := hello(r, "a.test"); err != nil {
		t.Fatalf("hello as a.test: %v", err)
	}
	var ok wire.RelayOK
	if err := r.Request(relay, &ok); err != nil || ok.Results[0] != wire.CodeOK {
		t.Fatalf("relay after hello: %v %v", err, ok.Results)
	}
}

// Relays that break the rules are refused with typed errors; a replayed
// batch is accepted and stored once.
func TestRelayRefusalsAndReplays(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	b := fed["b.test"]
	register(t, b, "bob@b.test")
	bob := wire.Mailbox{Address: "bob@b.test", Device: 1}
	r := servertest.DialFed(t, b, b.CADir(), "a.test")
	if err := hello(r, "a.test"); err != nil {
		t.Fatal(err)
	}
	env := func(to wire.Mailbox) wire.Envelope {
		return wire.Envelope{ID: servertest.RandomID(), To: to, Sealed: servertest.SealedOfLen(256)}
	}
	var ok wire.RelayOK
	batch := &wire.Relay{Envelopes: []wire.Envelope{
		env(bob),
		env(wire.Mailbox{Address: "nobody@b.test", Device: 1}),
		env(wire.Mailbox{Address: "bob@c.test", Device: 1}),
		{ID: servertest.RandomID(), To: bob, Sealed: servertest.SealedOfLen(300)},
	}}
	if err := r.Request(batch, &ok); err != nil {
		t.Fatal(err)
	}
	want := []wire.Code{wire.CodeOK, wire.CodeUnknownDevice, wire.CodeWrongDomain, wire.CodeBadPadding}
	for i, c := range ok.Results {
		if c != want[i] {
			t.Errorf("envelope %d: %s, want %s", i, c, want[i])
		}
	}
	// Replayed: accepted again, stored once.
	if err := r.Request(batch, &ok); err != nil || ok.Results[0] != wire.CodeOK {
		t.Fatalf("replay: %v %v", err, ok.Results)
	}
	if n := servertest.MailboxCount(t, b.DBPath()); n != 1 {
		t.Fatalf("%d envelopes stored after a replayed batch, want 1", n)
	}
	// Over the limits.
	big := &wire.Relay{Envelopes: make([]wire.Envelope, wire.MaxEnvelopesPerSend+1)}
	for i := range big.Envelopes {
		big.Envelopes[i] = env(bob)
	}
	servertest.MustCode(t, r.Request(big, &ok), wire.CodeLimitExceeded)
	r.ExpectCode(wire.AppendVarint(nil, wire.MaxFrame+1), wire.CodeFrameTooLarge)
}

// Domain policy: a denied domain is refused both ways.
func TestDenyList(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{DenyDomains: []string{"evil.test"}}, "a.test", "b.test", "evil.test")
	b := fed["b.test"]
	register(t, b, "bob@b.test")
	// Inbound: evil.test proves its name and is refused anyway.
	r := servertest.DialFed(t, b, b.CADir(), "evil.test")
	servertest.MustCode(t, hello(r, "evil.test"), wire.CodeDomainRefused)

	// Outbound: b.test users cannot write to evil.test.
	bob := register(t, b, "bob2@b.test")
	register(t, fed["evil.test"], "mallory@evil.test")
	err := bob.trySend("mallory@evil.test", "hi")
	servertest.MustCode(t, err, wire.CodeDomainRefused)
	raw := servertest.Dial(t, b)
	d := servertest.NewDevice(t, "bob3@b.test")
	if err := raw.Register(d, nil); err != nil {
		t.Fatal(err)
	}
	var sent wire.SendOK
	err = raw.Request(&wire.Send{Envelopes: []wire.Envelope{{ID: servertest.RandomID(),
		To: wire.Mailbox{Address: "mallory@evil.test", Device: 1}, Sealed: servertest.SealedOfLen(256)}}}, &sent)
	if err != nil || sent.Results[0] != wire.CodeDomainRefused {
		t.Fatalf("send to a denied domain: %v %v", err, sent.Results)
	}
}

// An envelope the destination refuses for good, or that waits too long
// for its peer, comes back to the sending device as a notice.
func TestUndeliverableNotices(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{OutboundTTL: 2 * time.Second}, "a.test", "b.test", "c.test")
	a, c := fed["a.test"], fed["c.test"]
	register(t, fed["b.test"], "bob@b.test")
	alice := register(t, a, "alice@a.test")
	c.Stop() // c.test stays down: its envelopes expire

	// alice's device sends raw envelopes, as a client would after a
	// directory answer: one to a device that does not exist, one to a
	// domain that is down.
	raw := servertest.Dial(t, a)
	id, err := alice.p.Identity(servertest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	dev := &servertest.Device{Address: id.Address, ID: id.Device, Sig: id.SigKey}
	if err := raw.Authenticate(dev); err != nil {
		t.Fatal(err)
	}
	noSuch := wire.Envelope{ID: servertest.RandomID(), To: wire.Mailbox{Address: "bob@b.test", Device: 9}, Sealed: servertest.SealedOfLen(256)}
	down := wire.Envelope{ID: servertest.RandomID(), To: wire.Mailbox{Address: "carol@c.test", Device: 1}, Sealed: servertest.SealedOfLen(256)}
	var sent wire.SendOK
	if err := raw.Request(&wire.Send{Envelopes: []wire.Envelope{noSuch, down}}, &sent); err != nil || sent.Results[0] != 0 || sent.Results[1] != 0 {
		t.Fatalf("send: %v %v", err, sent.Results)
	}

	want := map[string]wire.Code{string(noSuch.ID): wire.CodeUnknownDevice, string(down.ID): wire.CodeExpired}
	got := map[string]wire.Code{}
	ctx := servertest.Context(t)
	for len(got) < len(want) && ctx.Err() == nil {
		c2, err := client.Connect(ctx, alice.p)
		if err != nil {
			t.Fatal(err)
		}
		c2.Receive(ctx, client.ReceiveOptions{Wait: time.Second, OnNotice: func(u client.Undeliverable) {
			got[string(u.ID[:])] = u.Reason
		}})
		c2.Close()
	}
	for id, code := range want {
		if got[id] != code {
			t.Errorf("notice for %x: %s, want %s", id, got[id], code)
		}
	}
}

// A relayed envelope keeps the time its origin accepted it, within the
// outbound expiry, so that a sender certificate valid when the sender sent
// still verifies after a long outage; a client cannot set that time.
func TestRelayKeepsAcceptanceTime(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	b := fed["b.test"]
	rb := servertest.Dial(t, b)
	bob := servertest.NewDevice(t, "bob@b.test")
	if err := rb.Register(bob, nil); err != nil {
		t.Fatal(err)
	}
	box := wire.Mailbox{Address: "bob@b.test", Device: 1}
	now := time.Now()
	twoHours := wire.Envelope{ID: servertest.RandomID(), To: box, Sealed: servertest.SealedOfLen(256),
		AcceptedAt: uint64(now.Add(-2 * time.Hour).UnixMilli())}
	ancient := wire.Envelope{ID: servertest.RandomID(), To: box, Sealed: servertest.SealedOfLen(256),
		AcceptedAt: uint64(now.Add(-60 * 24 * time.Hour).UnixMilli())}
	future := wire.Envelope{ID: servertest.RandomID(), To: box, Sealed: servertest.SealedOfLen(256),
		AcceptedAt: uint64(now.Add(time.Hour).UnixMilli())}
	r := servertest.DialFed(t, b, b.CADir(), "a.test")
	if err := hello(r, "a.test"); err != nil {
		t.Fatal(err)
	}
	var ok wire.RelayOK
	if err := r.Request(&wire.Relay{Envelopes: []wire.Envelope{twoHours, ancient, future}}, &ok); err != nil {
		t.Fatal(err)
	}
	// A local client's claim is ignored.
	ra := servertest.Dial(t, b)
	if err := ra.Register(servertest.NewDevice(t, "eve@b.test"), nil); err != nil {
		t.Fatal(err)
	}
	claimed := wire.Envelope{ID: servertest.RandomID(), To: box, Sealed: servertest.SealedOfLen(256),
		AcceptedAt: uint64(now.Add(-2 * time.Hour).UnixMilli())}
	var sent wire.SendOK
	if err := ra.Request(&wire.Send{Envelopes: []wire.Envelope{claimed}}, &sent); err != nil || sent.Results[0] != 0 {
		t.Fatalf("send: %v %v", err, sent.Results)
	}

	rb2 := servertest.Dial(t, b)
	if err := rb2.Authenticate(bob); err != nil {
		t.Fatal(err)
	}
	st, err := rb2.QC.AcceptUniStream(servertest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]time.Time{}
	for len(got) < 4 {
		p, err := wire.ReadFrame(st, wire.MaxFrame)
		if err != nil {
			t.Fatal(err)
		}
		f, err := wire.DecodePush(p)
		if err != nil {
			t.Fatal(err)
		}
		if d, isDeliver := f.(*wire.Deliver); isDeliver {
			for _, x := range d.Deliveries {
				got[string(x.ID)] = time.UnixMilli(int64(x.ReceivedAt))
			}
		}
	}
	near := func(name string, got, want time.Time) {
		if d := got.Sub(want); d < -time.Minute || d > time.Minute {
			t.Errorf("%s: received-at %v, want about %v", name, got, want)
		}
	}
	near("accepted 2 h ago", got[string(twoHours.ID)], now.Add(-2*time.Hour))
	near("accepted 60 days ago", got[string(ancient.ID)], now.Add(-7*24*time.Hour-time.Hour))
	near("accepted in the future", got[string(future.ID)], now)
	near("claimed by a client", got[string(claimed.ID)], now)
}
