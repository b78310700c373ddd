package federation_test

import (
	"fmt"
	"testing"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// outboundFull is the per-envelope code of a spent outbound-queue quota
// (spec/14-errors.md).
const outboundFull = wire.CodeOutboundFull

// sendRemote sends envelopes to the mailboxes to on r and returns their
// per-envelope results.
func sendRemote(t *testing.T, r *servertest.Raw, to []wire.Mailbox) []wire.Code {
	t.Helper()
	envs := make([]wire.Envelope, len(to))
	for i, mb := range to {
		envs[i] = wire.Envelope{ID: servertest.RandomID(), To: mb, Sealed: servertest.SealedOfLen(256)}
	}
	var ok wire.SendOK
	if err := r.Request(&wire.Send{Envelopes: envs}, &ok); err != nil {
		t.Fatalf("send: %v", err)
	}
	return ok.Results
}

func authenticated(t *testing.T, s *servertest.Server, address string) *servertest.Raw {
	t.Helper()
	r := servertest.Dial(t, s)
	if err := r.Register(servertest.NewDevice(t, address), nil); err != nil {
		t.Fatal(err)
	}
	return r
}

// One account cannot fill the outbound queue: past 10,000 envelopes queued
// by its devices, or 256 distinct destination domains, its envelopes for
// other domains are refused with outbound_full, which names the limit
// (spec/08-federation.md section 8.7); another account still queues.
func TestOutboundQueueQuotaPerAccount(t *testing.T) {
	t.Parallel()
	// down.test never answers: everything sent to it stays queued.
	s := servertest.Start(t, servertest.Options{Peers: map[string]string{"down.test": "127.0.0.1:9"}})
	alice := authenticated(t, s, "alice@a.test")
	to := make([]wire.Mailbox, wire.MaxEnvelopesPerSend)
	for i := range to {
		to[i] = wire.Mailbox{Address: fmt.Sprintf("u%d@down.test", i), Device: 1}
	}
	queued, refused := 0, 0
	for range 10240 / wire.MaxEnvelopesPerSend {
		for _, c := range sendRemote(t, alice, to) {
			switch c {
			case wire.CodeOK:
				queued++
			case outboundFull:
				refused++
			default:
				t.Fatalf("per-envelope result %v", c)
			}
		}
	}
	t.Logf("alice: %d envelopes queued, %d refused", queued, refused)
	if queued > 10000 || refused == 0 {
		t.Fatalf("one account queued %d envelopes for a domain that does not answer (%d refused); the quota is 10,000", queued, refused)
	}
	// Bob's quota is his own.
	bob := authenticated(t, s, "bob@a.test")
	if c := sendRemote(t, bob, to[:1]); c[0] != wire.CodeOK {
		t.Fatalf("bob's envelope while alice's quota is spent: %v", c[0])
	}

	// Distinct destination domains: 256 at most.
	carol := authenticated(t, s, "carol@a.test")
	for i := range to {
		to[i] = wire.Mailbox{Address: fmt.Sprintf("u@d%d.test", i), Device: 1}
	}
	for i, c := range sendRemote(t, carol, to) {
		if c != wire.CodeOK {
			t.Fatalf("envelope %d to the %dth domain: %v", i, i+1, c)
		}
	}
	if c := sendRemote(t, carol, []wire.Mailbox{{Address: "u@d256.test", Device: 1}}); c[0] != outboundFull {
		t.Fatalf("envelope to a 257th domain: %v, want outbound_full", c[0])
	}
	if c := sendRemote(t, carol, []wire.Mailbox{{Address: "v@d3.test", Device: 1}}); c[0] != wire.CodeOK {
		t.Fatalf("another envelope to one of the 256 domains: %v", c[0])
	}
}
