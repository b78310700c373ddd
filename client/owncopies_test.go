package client_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// linkDevice links a new device to u's account and lets u process its
// link proof (u adds it to every group), as 'xchat device link' does.
func linkDevice(t *testing.T, s *servertest.Server, u *user) *user {
	t.Helper()
	ctx := t.Context()
	code, _, err := u.c.CreateLink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	d := &user{t: t, dir: t.TempDir()}
	if d.p, err = client.OpenProfile(d.dir); err != nil {
		t.Fatal(err)
	}
	if _, err := client.Register(ctx, d.p, client.RegisterOptions{Link: code.String(), Server: s.Addr, CAFile: s.CAFile}); err != nil {
		t.Fatalf("register the linked device: %v", err)
	}
	d.connect()
	linked := false
	for deadline := time.Now().Add(20 * time.Second); !linked && time.Now().Before(deadline); {
		u.receive(client.ReceiveOptions{Wait: 100 * time.Millisecond, OnLinked: func(uint32) { linked = true }})
	}
	if !linked {
		t.Fatal("the link proof was not processed")
	}
	return d
}

// spendRequestLane has a stranger send to's device 1 envelopes without a
// token until its homeserver answers rate_limited: the request budget of
// the account is spent (spec/07-envelopes.md section 7.11).
func spendRequestLane(t *testing.T, s *servertest.Server, to string) {
	t.Helper()
	r := servertest.Dial(t, s)
	if err := r.Register(servertest.NewDevice(t, "stranger@a.test"), nil); err != nil {
		t.Fatal(err)
	}
	envs := make([]wire.Envelope, 2*wire.RequestLaneBurst)
	for i := range envs {
		envs[i] = wire.Envelope{ID: servertest.RandomID(), To: wire.Mailbox{Address: to, Device: 1}, Sealed: servertest.SealedOfLen(wire.MinBucket)}
	}
	var ok wire.SendOK
	if err := r.Request(&wire.Send{Envelopes: envs}, &ok); err != nil {
		t.Fatal(err)
	}
	if last := ok.Results[len(ok.Results)-1]; last != wire.CodeRateLimited {
		t.Fatalf("the stranger's last envelope: %s, want rate_limited", last)
	}
}

// acquainted makes bob accept alice: alice writes first (through bob's
// request lane), bob answers, which gives alice bob's delivery token.
func acquainted(t *testing.T, alice, bob *user) {
	t.Helper()
	if err := alice.c.Send(t.Context(), "bob@a.test", "hello bob"); err != nil {
		t.Fatal(err)
	}
	if got := bob.recvUntil(1); len(got) != 1 {
		t.Fatalf("bob got %q", texts(got))
	}
	if err := bob.c.Send(t.Context(), "alice@a.test", "hello alice"); err != nil {
		t.Fatal(err)
	}
	if got := alice.recvUntil(1); len(got) != 1 {
		t.Fatalf("alice got %q", texts(got))
	}
}

// High 2 of issue 13: the copies of a sent message for the sender's own
// devices do not depend on the request lane. A stranger spends Alice's
// request budget; Alice then sends Bob 200 messages quickly: every send
// succeeds and her linked device receives all 200.
func TestOwnDeviceCopiesIgnoreSpentRequestLane(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	acquainted(t, alice, bob)
	alice2 := linkDevice(t, s, alice)
	bob.receive(client.ReceiveOptions{Wait: 100 * time.Millisecond}) // the commit adding alice's device 2
	spendRequestLane(t, s, "alice@a.test")

	const n = 200
	ctx := t.Context()
	failed := 0
	var firstErr error
	for i := range n {
		if err := alice.c.Send(ctx, "bob@a.test", fmt.Sprintf("message %d", i)); err != nil {
			failed++
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	if failed > 0 {
		t.Errorf("%d of %d sends failed, the first with: %v", failed, n, firstErr)
	}
	if got := bob.recvUntil(n); len(got) != n {
		t.Errorf("bob received %d of %d messages", len(got), n)
	}
	got := alice2.recvUntil(n)
	if len(got) != n {
		t.Fatalf("alice's linked device received %d of %d messages", len(got), n)
	}
	for i, m := range got {
		if want := fmt.Sprintf("message %d", i); m.Text != want || m.From != "alice@a.test" || m.FromDevice != 1 {
			t.Fatalf("message %d on alice's device 2: %+v, want %q from alice's device 1", i, m, want)
		}
	}
}

// A newly linked device joins its account's groups although a stranger
// spent the account's request lane: its link proof reaches the device
// that showed the code, and that device's Welcome reaches it.
func TestLinkWhileRequestLaneSpent(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	acquainted(t, alice, bob)
	spendRequestLane(t, s, "alice@a.test")
	alice2 := linkDevice(t, s, alice)
	bob.receive(client.ReceiveOptions{Wait: 100 * time.Millisecond}) // the commit adding alice's device 2
	if err := bob.c.Send(t.Context(), "alice@a.test", "after the link"); err != nil {
		t.Fatal(err)
	}
	if got := alice2.recvUntil(1); len(got) != 1 || got[0].Text != "after the link" {
		t.Fatalf("the linked device got %q", texts(got))
	}
}

// fillMailbox fills a device's mailbox with envelopes carrying its
// account's delivery token, until its homeserver answers mailbox_full.
func fillMailbox(t *testing.T, s *servertest.Server, to wire.Mailbox, token []byte) {
	t.Helper()
	r := servertest.Dial(t, s)
	if err := r.Register(servertest.NewDevice(t, "filler@a.test"), nil); err != nil {
		t.Fatal(err)
	}
	for {
		envs := make([]wire.Envelope, wire.MaxEnvelopesPerSend)
		for i := range envs {
			envs[i] = wire.Envelope{ID: servertest.RandomID(), To: to, Token: token, Sealed: servertest.SealedOfLen(wire.MinBucket)}
		}
		var ok wire.SendOK
		if err := r.Request(&wire.Send{Envelopes: envs}, &ok); err != nil {
			t.Fatal(err)
		}
		for _, c := range ok.Results {
			switch c {
			case wire.CodeOK:
			case wire.CodeMailboxFull:
				return
			default:
				t.Fatalf("filling the mailbox: %s", c)
			}
		}
	}
}

// drain receives on u until its mailbox is empty and returns the
// messages it could read.
func drain(t *testing.T, u *user) []client.Message {
	t.Helper()
	var got []client.Message
	u.receive(client.ReceiveOptions{
		Wait:      time.Second,
		OnMessage: func(m client.Message) { got = append(got, m) },
	})
	return got
}

// A send whose copies reached every recipient but not one of the sender's
// own devices (its mailbox is full) is not reported as failed: the own
// copies stay in the durable outbox, Pending names the device, and they
// are sent, in order, at the next connection once the device has room.
func TestOwnCopyRefusedIsPendingNotFailed(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	acquainted(t, alice, bob)
	alice2 := linkDevice(t, s, alice)
	bob.receive(client.ReceiveOptions{Wait: 100 * time.Millisecond})
	ctx := t.Context()
	dev2 := wire.Mailbox{Address: "alice@a.test", Device: 2}
	fillMailbox(t, s, dev2, alice.c.Identity().Token)

	for _, text := range []string{"one", "two"} {
		if err := alice.c.Send(ctx, "bob@a.test", text); err != nil {
			t.Fatalf("a send whose only refused copy is for the sender's own device: %v", err)
		}
	}
	if got := bob.recvUntil(2); len(got) != 2 || got[0].Text != "one" || got[1].Text != "two" {
		t.Fatalf("bob got %q", texts(got))
	}
	if p, err := alice.c.Pending(ctx); err != nil || len(p) != 1 || p[0] != dev2 {
		t.Fatalf("pending %v, %v; want alice's device 2", p, err)
	}
	// Device 2 empties its mailbox (the filler's envelopes cannot be
	// opened and are dropped).
	for range 5 {
		if len(drain(t, alice2)) != 0 {
			t.Fatal("device 2 read a message before the pending copies were sent again")
		}
		if servertest.MailboxCount(t, s.DBPath()) < 10 {
			break
		}
	}
	if n := servertest.MailboxCount(t, s.DBPath()); n >= 10 {
		t.Fatalf("%d envelopes still wait after draining device 2", n)
	}
	// The next connection sends the pending copies from the outbox.
	alice.c.Close()
	alice.connect()
	if p, err := alice.c.Pending(ctx); err != nil || len(p) != 0 {
		t.Fatalf("pending after reconnecting %v, %v; want none", p, err)
	}
	if got := alice2.recvUntil(2); len(got) != 2 || got[0].Text != "one" || got[1].Text != "two" {
		t.Fatalf("alice's device 2 got %q, want the pending copies of one and two", texts(got))
	}
	if err := alice.c.Send(ctx, "bob@a.test", "three"); err != nil {
		t.Fatal(err)
	}
	if got := alice2.recvUntil(1); len(got) != 1 || got[0].Text != "three" {
		t.Fatalf("alice's device 2 got %q, want three", texts(got))
	}
}

// A linked device that has not been given the account's delivery token yet
// (its account had no group to add it to) sends none: a contact keeps the
// token it had, and the contact's later messages still carry a valid one.
func TestLinkedDeviceWithoutTokenSendsNone(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	bob2 := linkDevice(t, s, bob)
	if err := alice.c.Send(t.Context(), "bob@a.test", "hello bob"); err != nil {
		t.Fatal(err)
	}
	if got := bob.recvUntil(1); len(got) != 1 {
		t.Fatalf("bob got %q", texts(got))
	}
	if got := bob2.recvUntil(1); len(got) != 1 {
		t.Fatalf("bob's second device got %q", texts(got))
	}
	// bob answers, then his second device, which has not seen bob's answer
	// (and the token it carries) yet, as two ringing devices do.
	if err := bob.c.Send(t.Context(), "alice@a.test", "from bob"); err != nil {
		t.Fatal(err)
	}
	if got := alice.recvUntil(1); len(got) != 1 {
		t.Fatalf("alice got %q", texts(got))
	}
	if err := bob2.c.Send(t.Context(), "alice@a.test", "from bob's second device"); err != nil {
		t.Fatal(err)
	}
	if got := alice.recvUntil(1); len(got) != 1 {
		t.Fatalf("alice got %q", texts(got))
	}
	// Were the second device's token a random one of its own, alice would
	// now hold it, bob's homeserver would refuse it (token_invalid) and the
	// message would reach bob only through the request lane, if at all
	// (across domains the refusal comes back as a notice).
	if err := alice.c.Send(t.Context(), "bob@a.test", "again"); err != nil {
		t.Fatal(err)
	}
	got := bob.recvUntil(2) // his second device's copy, then alice's
	var last *client.Message
	for i := range got {
		if got[i].Text == "again" {
			last = &got[i]
		}
	}
	if last == nil || last.RequestLane {
		t.Fatalf("alice's message after bob's second device wrote: %+v (of %q)", last, texts(got))
	}
}
