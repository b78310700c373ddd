package client_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/server/servertest"
)

// waitMailbox waits until the mailboxes of s hold at least n envelopes.
func waitMailbox(t *testing.T, s *servertest.Server, n int) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); ; {
		got := servertest.MailboxCount(t, s.DBPath())
		if got >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s holds %d envelopes, want %d", s.Domain, got, n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Envelopes whose sender certificate names a domain that went away
// (spec/07-envelopes.md section 7.8, the client rule on envelopes it cannot
// open) do not hold up receiving: a message of another user arrives in the
// same run, a run waits at most a few seconds on the vanished domain, and
// the poison envelopes leave the mailbox within a few runs.
func TestPoisonFromVanishedDomain(t *testing.T) {
	t.Parallel()
	ss := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test", "evil.test")
	alice := register(t, ss["a.test"], "alice@a.test")
	bob := register(t, ss["b.test"], "bob@b.test")
	mallory := register(t, ss["evil.test"], "mallory@evil.test")
	ctx := t.Context()
	const poison = 5
	for i := range poison {
		if err := mallory.c.Send(ctx, "alice@a.test", fmt.Sprintf("poison %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// The first message brings a Welcome as well.
	waitMailbox(t, ss["a.test"], poison+1)
	ss["evil.test"].Stop()
	if err := bob.c.Send(ctx, "alice@a.test", "hello alice"); err != nil {
		t.Fatal(err)
	}
	waitMailbox(t, ss["a.test"], poison+3)

	// One run: bob's message arrives, and the run does not wait long on
	// evil.test (a generous bound for -race on a loaded machine; without
	// the rule a run waits a lookup timeout per poison envelope).
	const runBound = 10 * time.Second
	var got []client.Message
	run := func() time.Duration {
		t.Helper()
		alice.c.Close()
		c, err := client.Connect(ctx, alice.p)
		if err != nil {
			t.Fatal(err)
		}
		alice.c = c
		rctx, cancel := context.WithTimeout(ctx, 3*runBound)
		defer cancel()
		start := time.Now()
		err = c.Receive(rctx, client.ReceiveOptions{
			Wait:      100 * time.Millisecond,
			OnMessage: func(m client.Message) { got = append(got, m) },
		})
		took := time.Since(start)
		t.Logf("receive took %v (err %v)", took, err)
		if err != nil {
			t.Fatalf("receive after %v: %v", took, err)
		}
		return took
	}
	if took := run(); took > runBound {
		t.Fatalf("a receive run took %v with envelopes of a vanished domain waiting, want at most %v", took, runBound)
	}
	if len(got) != 1 || got[0].Text != "hello alice" || got[0].From != "bob@b.test" {
		t.Fatalf("alice got %+v, want bob's message", got)
	}
	// Within a few runs, the poison envelopes are acknowledged, and
	// recorded for the user.
	for range 2 {
		if took := run(); took > runBound {
			t.Fatalf("a receive run took %v, want at most %v", took, runBound)
		}
	}
	if n := servertest.MailboxCount(t, ss["a.test"].DBPath()); n != 0 {
		t.Fatalf("after 3 receive runs, %d envelopes wait in alice's mailbox, want 0", n)
	}
	recs, err := alice.p.Unopened(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != poison+1 {
		t.Fatalf("%d records of unopened envelopes, want %d: %+v", len(recs), poison+1, recs)
	}
	t.Logf("record: %+v", recs[0])
	for _, r := range recs {
		if r.Domain != "evil.test" || !r.GivenUp || r.Tries != 3 || r.Reason == "" || r.LastSeen.Before(r.FirstSeen) {
			t.Fatalf("record %+v", r)
		}
	}
}
