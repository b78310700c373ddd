package server_test

import (
	"testing"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// One origin domain's relayed envelopes hold at most their share of a
// device mailbox (spec/07-envelopes.md section 7.13): past it the listener
// answers mailbox_full for that domain's envelopes, while another domain's
// still get in. The envelopes carry the recipient's delivery token, as a
// contact's would.
func TestOriginDomainShareOfMailbox(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	p := register(t, s, "alice@a.test")
	id, err := p.Identity(servertest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	alice := wire.Mailbox{Address: "alice@a.test", Device: 1}
	share := store.DefaultLimits().OriginMaxEnvelopes
	if share != wire.MailboxMaxPerOrigin || store.DefaultLimits().OriginMaxBytes != wire.MailboxMaxBytesPerOrigin {
		t.Fatalf("store.DefaultLimits has an origin share of %d envelopes, %d bytes; spec 15.1 says %d, %d",
			share, store.DefaultLimits().OriginMaxBytes, wire.MailboxMaxPerOrigin, wire.MailboxMaxBytesPerOrigin)
	}
	relay := func(r *servertest.Raw, n int) []wire.Code {
		t.Helper()
		var codes []wire.Code
		for n > 0 {
			batch := &wire.Relay{}
			for range min(n, wire.MaxEnvelopesPerSend) {
				batch.Envelopes = append(batch.Envelopes, wire.Envelope{ID: servertest.RandomID(), To: alice,
					Sealed: servertest.SealedOfLen(256), Token: id.Token})
			}
			var ok wire.RelayOK
			if err := r.Request(batch, &ok); err != nil {
				t.Fatal(err)
			}
			codes = append(codes, ok.Results...)
			n -= len(batch.Envelopes)
		}
		return codes
	}
	evil := servertest.DialFed(t, s, s.CADir(), "evil.test")
	if err := hello(evil, "evil.test"); err != nil {
		t.Fatal(err)
	}
	codes := relay(evil, share+10)
	for i, c := range codes {
		if want := wire.CodeOK; i >= share {
			want = wire.CodeMailboxFull
			if c != want {
				t.Fatalf("evil.test's envelope %d past its share: %s, want %s", i, c, want)
			}
		} else if c != want {
			t.Fatalf("evil.test's envelope %d: %s, want %s", i, c, want)
		}
	}
	good := servertest.DialFed(t, s, s.CADir(), "good.test")
	if err := hello(good, "good.test"); err != nil {
		t.Fatal(err)
	}
	if codes := relay(good, 3); codes[0] != wire.CodeOK || codes[2] != wire.CodeOK {
		t.Fatalf("another domain's envelopes: %v", codes)
	}
	if n := servertest.MailboxCount(t, s.DBPath()); n != share+3 {
		t.Fatalf("%d envelopes waiting, want %d", n, share+3)
	}
}

func hello(r *servertest.Raw, domain string) error {
	return r.Request(&wire.FedHello{Domain: domain}, &wire.FedHelloOK{})
}
