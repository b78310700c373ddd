package storetest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

func testEnqueue(t *testing.T, open Opener) {
	s := open(t, testLimits)
	alice := newAccount(t, s, "alice@example.org")
	e0 := env(alice, 0, 100)
	e0.Lane = store.LaneToken
	e1 := env(alice, 1, 0) // an empty payload is stored as such
	e1.Lane = store.LaneRequest
	e1.ReceivedAt = e0.ReceivedAt.Add(-time.Hour)
	e1.Origin = "b.example" // relayed: Pending returns its origin
	enqueue(t, s, e0, e1)

	got := pending(t, s, alice)
	if len(got) != 2 {
		t.Fatalf("Pending: %d envelopes, want 2", len(got))
	}
	sameEnvelope(t, got[0], e0)
	sameEnvelope(t, got[1], e1)
	if got[0].Seq <= 0 || got[1].Seq <= got[0].Seq {
		t.Fatalf("seqs %d, %d: want positive and increasing", got[0].Seq, got[1].Seq)
	}
}

func testEnqueueNotice(t *testing.T, open Opener) {
	s := open(t, testLimits)
	alice := newAccount(t, s, "alice@example.org")
	notice := env(alice, 0, 60)
	notice.Lane = store.LaneNotice
	other := env(alice, 1, 10)
	other.Lane = store.LaneToken
	enqueue(t, s, notice, other)
	got := pending(t, s, alice)
	if len(got) != 2 {
		t.Fatalf("Pending: %d envelopes, want 2", len(got))
	}
	if got[0].Lane != 2 {
		t.Fatalf("notice read back with lane %d, want %d", got[0].Lane, store.LaneNotice)
	}
	sameEnvelope(t, got[0], notice)
	sameEnvelope(t, got[1], other)
}

func testEnqueueDuplicate(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	bob := newAccount(t, s, "bob@example.org")
	first := env(alice, 7, 10)
	enqueue(t, s, first)

	again := env(alice, 7, 20) // same ID, other content
	enqueue(t, s, again)
	// Twice in one batch, and once more to another mailbox.
	enqueue(t, s, env(alice, 8, 10), env(alice, 8, 10), env(bob, 7, 10))

	got := pending(t, s, alice)
	if len(got) != 2 {
		t.Fatalf("Pending: %d envelopes, want 2", len(got))
	}
	sameEnvelope(t, got[0], first) // the first stored is kept
	wantIDs(t, "bob's mailbox", pendingIDs(t, s, bob), 7)

	// Once acknowledged, the ID is no longer waiting and can be stored again.
	wantErr(t, "Ack", s.Ack(ctx, alice, []store.EnvelopeID{id(7)}), nil)
	enqueue(t, s, again)
	wantIDs(t, "alice's mailbox", pendingIDs(t, s, alice), 8, 7)

	// Duplicates take no room: with 2 of 5 waiting, 3 more fit.
	enqueue(t, s, env(alice, 7, 10), env(alice, 8, 10), env(alice, 20, 10), env(alice, 21, 10), env(alice, 22, 10))
	wantIDs(t, "alice's mailbox", pendingIDs(t, s, alice), 8, 7, 20, 21, 22)
}

func testEnqueueUnknownDevice(t *testing.T, open Opener) {
	s := open(t, testLimits)
	newAccount(t, s, "alice@example.org")
	noDevice := store.Mailbox{Address: "alice@example.org", Device: 2}
	noAccount := store.Mailbox{Address: "nobody@example.org", Device: 1}
	res, err := s.Enqueue(t.Context(), []store.Envelope{env(noDevice, 1, 10), env(noAccount, 2, 10)})
	wantErr(t, "Enqueue", err, nil)
	if len(res) != 2 {
		t.Fatalf("Enqueue: %d results, want 2", len(res))
	}
	wantErr(t, "Enqueue to an unknown device", res[0], store.ErrUnknownDevice)
	wantErr(t, "Enqueue to an unknown account", res[1], store.ErrUnknownDevice)
	wantIDs(t, "unknown device", pendingIDs(t, s, noDevice))
	wantIDs(t, "unknown account", pendingIDs(t, s, noAccount))
}

func testMailboxFullByCount(t *testing.T, open Opener) {
	s := open(t, testLimits) // 5 envelopes per mailbox
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	bob := newAccount(t, s, "bob@example.org")
	for i := range 5 {
		enqueue(t, s, env(alice, i, 10))
	}
	res, err := s.Enqueue(ctx, []store.Envelope{env(alice, 5, 10), env(alice, 2, 10), env(bob, 5, 10)})
	wantErr(t, "Enqueue", err, nil)
	wantErr(t, "Enqueue to a full mailbox", res[0], store.ErrLimit)
	wantErr(t, "Enqueue of an envelope already waiting in a full mailbox", res[1], nil)
	wantErr(t, "Enqueue to another mailbox", res[2], nil)
	wantIDs(t, "full mailbox", pendingIDs(t, s, alice), 0, 1, 2, 3, 4)

	// Acknowledging makes room again, for exactly as many.
	wantErr(t, "Ack", s.Ack(ctx, alice, []store.EnvelopeID{id(0), id(1)}), nil)
	res, err = s.Enqueue(ctx, []store.Envelope{env(alice, 5, 10), env(alice, 6, 10), env(alice, 7, 10)})
	wantErr(t, "Enqueue", err, nil)
	wantErr(t, "Enqueue after Ack", res[0], nil)
	wantErr(t, "Enqueue after Ack", res[1], nil)
	wantErr(t, "Enqueue to a full mailbox", res[2], store.ErrLimit)
	wantIDs(t, "mailbox", pendingIDs(t, s, alice), 2, 3, 4, 5, 6)
}

func testMailboxFullByBytes(t *testing.T, open Opener) {
	s := open(t, testLimits) // 1000 bytes per mailbox
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	bob := newAccount(t, s, "bob@example.org")
	enqueue(t, s, env(alice, 0, 400), env(alice, 1, 400))
	res, err := s.Enqueue(ctx, []store.Envelope{env(alice, 2, 201), env(alice, 3, 200), env(alice, 4, 1)})
	wantErr(t, "Enqueue", err, nil)
	wantErr(t, "Enqueue over the byte limit", res[0], store.ErrLimit)
	wantErr(t, "Enqueue up to the byte limit", res[1], nil)
	wantErr(t, "Enqueue over the byte limit", res[2], store.ErrLimit)
	wantIDs(t, "full mailbox", pendingIDs(t, s, alice), 0, 1, 3)

	res, err = s.Enqueue(ctx, []store.Envelope{env(bob, 0, 1001)})
	wantErr(t, "Enqueue", err, nil)
	wantErr(t, "Enqueue of an envelope larger than a mailbox", res[0], store.ErrLimit)

	wantErr(t, "Ack", s.Ack(ctx, alice, []store.EnvelopeID{id(1)}), nil)
	enqueue(t, s, env(alice, 5, 400))
	wantIDs(t, "mailbox", pendingIDs(t, s, alice), 0, 3, 5)
}

func testEnqueueMixedBatch(t *testing.T, open Opener) {
	s := open(t, testLimits)
	alice := newAccount(t, s, "alice@example.org")
	bob := newAccount(t, s, "bob@example.org")
	carol := newAccount(t, s, "carol@example.org")
	for i := range 5 {
		enqueue(t, s, env(carol, 100+i, 10))
	}
	batch := []store.Envelope{
		env(alice, 1, 10),
		env(store.Mailbox{Address: "nobody@example.org", Device: 1}, 2, 10),
		env(carol, 3, 10),
		env(alice, 4, 10),
		env(alice, 1, 10),
		env(bob, 5, 10),
		env(alice, 6, 2000),
		env(store.Mailbox{Address: "bob@example.org", Device: 9}, 7, 10),
		env(bob, 8, 10),
	}
	want := []error{nil, store.ErrUnknownDevice, store.ErrLimit, nil, nil, nil, store.ErrLimit, store.ErrUnknownDevice, nil}
	res, err := s.Enqueue(t.Context(), batch)
	wantErr(t, "Enqueue", err, nil)
	if len(res) != len(want) {
		t.Fatalf("Enqueue: %d results, want %d", len(res), len(want))
	}
	for i := range want {
		if (want[i] == nil) != (res[i] == nil) || !errors.Is(res[i], want[i]) {
			t.Errorf("Enqueue: envelope %d: result %v, want %v", i, res[i], want[i])
		}
	}
	wantIDs(t, "alice's mailbox", pendingIDs(t, s, alice), 1, 4)
	wantIDs(t, "bob's mailbox", pendingIDs(t, s, bob), 5, 8)
	wantIDs(t, "carol's mailbox", pendingIDs(t, s, carol), 100, 101, 102, 103, 104)
}

func testEnqueueCanceled(t *testing.T, open Opener) {
	s := open(t, testLimits)
	alice := newAccount(t, s, "alice@example.org")
	res, err := s.Enqueue(canceled(), []store.Envelope{env(alice, 1, 10)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Enqueue with a canceled context = %v, %v; want context.Canceled", res, err)
	}
	wantIDs(t, "mailbox", pendingIDs(t, s, alice))
	err = s.Ack(canceled(), alice, []store.EnvelopeID{id(1)})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Ack with a canceled context = %v; want context.Canceled", err)
	}
}

// testSeqOrder: a mailbox reads in the order its envelopes were accepted,
// and its sequence numbers are its own: no counter is shared across
// mailboxes, so the copies of one send in two mailboxes do not get
// neighbouring numbers (spec/16-security.md section 16.11).
func testSeqOrder(t *testing.T, open Opener) {
	s := open(t, testLimits)
	alice := newAccount(t, s, "alice@example.org")
	bob := newAccount(t, s, "bob@example.org")
	carol := newAccount(t, s, "carol@example.org")
	enqueue(t, s, env(carol, 10, 10), env(carol, 11, 10))
	enqueue(t, s, env(alice, 0, 10))
	enqueue(t, s, env(bob, 1, 10))
	enqueue(t, s, env(alice, 2, 10), env(bob, 3, 10), env(alice, 4, 10))
	enqueue(t, s, env(bob, 5, 10))

	seqsOf := func(mb store.Mailbox, ids ...int) []int64 {
		got := pending(t, s, mb)
		if len(got) != len(ids) {
			t.Fatalf("%s has %d envelopes waiting, want %d", mb.Address, len(got), len(ids))
		}
		var seqs []int64
		for i, st := range got {
			if st.ID != id(ids[i]) {
				t.Fatalf("%s reads envelope %x at position %d, want envelope %d", mb.Address, st.ID, i, ids[i])
			}
			if i > 0 && st.Seq <= seqs[i-1] {
				t.Fatalf("%s: envelope %d has seq %d, not after %d", mb.Address, ids[i], st.Seq, seqs[i-1])
			}
			seqs = append(seqs, st.Seq)
		}
		return seqs
	}
	a, b := seqsOf(alice, 0, 2, 4), seqsOf(bob, 1, 3, 5)
	seqsOf(carol, 10, 11)
	if fmt.Sprint(a) != fmt.Sprint(b) {
		t.Fatalf("alice's envelopes have seqs %v and bob's %v: a counter is shared across mailboxes", a, b)
	}
}

func testSeqNotReused(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	enqueue(t, s, env(alice, 0, 10), env(alice, 1, 10))
	got := pending(t, s, alice)
	last := got[1].Seq
	wantErr(t, "Ack", s.Ack(ctx, alice, []store.EnvelopeID{id(0), id(1)}), nil)
	enqueue(t, s, env(alice, 2, 10))
	got = pending(t, s, alice)
	if len(got) != 1 || got[0].Seq <= last {
		t.Fatalf("after acknowledging seq %d, the next envelope has seq %d", last, got[0].Seq)
	}
}

func testPending(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	bob := newAccount(t, s, "bob@example.org")
	var envs []store.Envelope
	for i := range 10 {
		envs = append(envs, env(alice, i, 10), env(bob, 100+i, 10))
	}
	enqueue(t, s, envs...)

	all := pending(t, s, alice)
	wantIDs(t, "Pending", pendingIDs(t, s, alice), 0, 1, 2, 3, 4, 5, 6, 7, 8, 9)
	for i := range all {
		sameEnvelope(t, all[i], envs[2*i])
	}

	ids := func(sts []store.Stored) []store.EnvelopeID {
		var out []store.EnvelopeID
		for _, st := range sts {
			out = append(out, st.ID)
		}
		return out
	}
	page, err := s.Pending(ctx, alice, 0, 3)
	wantErr(t, "Pending", err, nil)
	wantIDs(t, "first page", ids(page), 0, 1, 2)
	page, err = s.Pending(ctx, alice, page[2].Seq, 3)
	wantErr(t, "Pending", err, nil)
	wantIDs(t, "second page", ids(page), 3, 4, 5)
	page, err = s.Pending(ctx, alice, all[8].Seq, 3)
	wantErr(t, "Pending", err, nil)
	wantIDs(t, "last page", ids(page), 9)
	page, err = s.Pending(ctx, alice, all[9].Seq, 3)
	wantErr(t, "Pending", err, nil)
	wantIDs(t, "past the end", ids(page))
	// after need not be the seq of a waiting envelope.
	wantErr(t, "Ack", s.Ack(ctx, alice, []store.EnvelopeID{id(4)}), nil)
	page, err = s.Pending(ctx, alice, all[4].Seq, 2)
	wantErr(t, "Pending", err, nil)
	wantIDs(t, "after an acknowledged envelope", ids(page), 5, 6)

	page, err = s.Pending(ctx, store.Mailbox{Address: "nobody@example.org", Device: 1}, 0, 10)
	wantErr(t, "Pending of an unknown mailbox", err, nil)
	wantIDs(t, "Pending of an unknown mailbox", ids(page))
}

func testAck(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	bob := newAccount(t, s, "bob@example.org")
	enqueue(t, s, env(alice, 0, 10), env(alice, 1, 10), env(alice, 2, 10), env(alice, 3, 10), env(alice, 4, 10))
	enqueue(t, s, env(bob, 0, 10), env(bob, 2, 10))

	wantErr(t, "Ack", s.Ack(ctx, alice, []store.EnvelopeID{id(0), id(2), id(99)}), nil)
	wantIDs(t, "alice's mailbox", pendingIDs(t, s, alice), 1, 3, 4)
	wantIDs(t, "bob's mailbox", pendingIDs(t, s, bob), 0, 2)

	wantErr(t, "Ack again", s.Ack(ctx, alice, []store.EnvelopeID{id(0), id(2)}), nil)
	wantErr(t, "Ack of nothing", s.Ack(ctx, alice, nil), nil)
	wantErr(t, "Ack in an unknown mailbox",
		s.Ack(ctx, store.Mailbox{Address: "nobody@example.org", Device: 1}, []store.EnvelopeID{id(1)}), nil)
	wantIDs(t, "alice's mailbox", pendingIDs(t, s, alice), 1, 3, 4)

	wantErr(t, "Ack", s.Ack(ctx, alice, []store.EnvelopeID{id(4), id(1), id(3)}), nil)
	wantIDs(t, "alice's mailbox", pendingIDs(t, s, alice))
	wantIDs(t, "bob's mailbox", pendingIDs(t, s, bob), 0, 2)
}

func testExpire(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	bob := newAccount(t, s, "bob@example.org")
	t0 := now()
	at := func(e store.Envelope, d time.Duration) store.Envelope {
		e.ReceivedAt = t0.Add(d)
		return e
	}
	enqueue(t, s,
		at(env(alice, 0, 10), -3*time.Hour),
		at(env(alice, 1, 10), time.Millisecond-time.Hour),
		at(env(alice, 2, 10), -2*time.Hour),
		at(env(alice, 3, 10), -time.Hour),
		at(env(alice, 4, 10), 0),
		at(env(bob, 5, 10), -5*time.Hour),
		at(env(bob, 6, 10), time.Hour),
	)
	n, err := s.Expire(ctx, t0.Add(-time.Hour))
	wantErr(t, "Expire", err, nil)
	if n != 3 {
		t.Fatalf("Expire deleted %d envelopes, want 3", n)
	}
	wantIDs(t, "alice's mailbox", pendingIDs(t, s, alice), 1, 3, 4)
	wantIDs(t, "bob's mailbox", pendingIDs(t, s, bob), 6)

	n, err = s.Expire(ctx, t0.Add(-time.Hour))
	wantErr(t, "Expire", err, nil)
	if n != 0 {
		t.Fatalf("Expire again deleted %d envelopes, want 0", n)
	}

	// Expired envelopes no longer count against the mailbox limit (5).
	enqueue(t, s, env(alice, 10, 10), env(alice, 11, 10))
	res, err := s.Enqueue(ctx, []store.Envelope{env(alice, 12, 10)})
	wantErr(t, "Enqueue", err, nil)
	wantErr(t, "Enqueue to a full mailbox", res[0], store.ErrLimit)

	n, err = s.Expire(ctx, t0.Add(2*time.Hour))
	wantErr(t, "Expire", err, nil)
	if n != 6 {
		t.Fatalf("Expire deleted %d envelopes, want 6", n)
	}
	wantIDs(t, "alice's mailbox", pendingIDs(t, s, alice))
	wantIDs(t, "bob's mailbox", pendingIDs(t, s, bob))
}

func testExpireMany(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	alice := newAccount(t, s, "alice@example.org")
	old := now().Add(-48 * time.Hour)
	var envs []store.Envelope
	for i := range 2500 {
		e := env(alice, i, 16)
		e.ReceivedAt = old.Add(time.Duration(i) * time.Millisecond)
		envs = append(envs, e)
	}
	enqueue(t, s, envs...)
	enqueue(t, s, env(alice, 9999, 16))
	n, err := s.Expire(t.Context(), now().Add(-time.Hour))
	wantErr(t, "Expire", err, nil)
	if n != len(envs) {
		t.Fatalf("Expire deleted %d envelopes, want %d", n, len(envs))
	}
	wantIDs(t, "mailbox", pendingIDs(t, s, alice), 9999)
}

func testConcurrentEnqueue(t *testing.T, open Opener) {
	s := open(t, store.DefaultLimits())
	mbs := []store.Mailbox{
		newAccount(t, s, "alice@example.org"),
		newAccount(t, s, "bob@example.org"),
		newAccount(t, s, "carol@example.org"),
	}
	const goroutines, calls = 40, 10
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for c := range calls {
				n := 2 * (g*calls + c)
				envs := []store.Envelope{env(mbs[n%3], n, 64), env(mbs[(n+1)%3], n+1, 64)}
				res, err := s.Enqueue(t.Context(), envs)
				if err != nil {
					t.Errorf("Enqueue: %v", err)
					return
				}
				for i, err := range res {
					if err != nil {
						t.Errorf("Enqueue: envelope %d: %v", n+i, err)
					}
				}
			}
		})
	}
	wg.Wait()

	ids := make(map[store.EnvelopeID]bool)
	for _, mb := range mbs {
		seen := make(map[int64]bool)
		var last int64
		for _, st := range pending(t, s, mb) {
			if seen[st.Seq] {
				t.Fatalf("seq %d used twice", st.Seq)
			}
			if st.Seq <= last {
				t.Fatalf("mailbox %v reads seq %d after %d", mb, st.Seq, last)
			}
			seen[st.Seq], ids[st.ID], last = true, true, st.Seq
		}
	}
	if len(ids) != 2*goroutines*calls {
		t.Fatalf("%d envelopes stored, want %d", len(ids), 2*goroutines*calls)
	}
}

func testClosed(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	enqueue(t, s, env(alice, 0, 10))
	wantErr(t, "Close", s.Close(), nil)

	check := func(what string, err error) {
		t.Helper()
		wantErr(t, what+" after Close", err, store.ErrClosed)
	}
	check("CreateInvite", s.CreateInvite(ctx, []byte("h"), time.Now().Add(time.Hour)))
	check("CreateAccount", s.CreateAccount(ctx, device("bob@example.org"), nil))
	_, err := s.Device(ctx, alice)
	check("Device", err)
	_, err = s.Devices(ctx, alice.Address)
	check("Devices", err)
	_, err = s.Policy(ctx, alice.Address)
	check("Policy", err)
	check("SetPolicy", s.SetPolicy(ctx, alice.Address, store.Policy{}))
	_, err = s.PublishKeyPackages(ctx, alice, kps("a", 1), nil)
	check("PublishKeyPackages", err)
	_, _, err = s.ClaimKeyPackage(ctx, alice)
	check("ClaimKeyPackage", err)
	_, err = s.Enqueue(ctx, []store.Envelope{env(alice, 1, 10)})
	check("Enqueue", err)
	_, err = s.Pending(ctx, alice, 0, 10)
	check("Pending", err)
	check("Ack", s.Ack(ctx, alice, []store.EnvelopeID{id(0)}))
	_, err = s.Expire(ctx, time.Now())
	check("Expire", err)
}

// relayed returns env(mb, n, size) as relayed from origin.
func relayed(mb store.Mailbox, n, size int, origin string) store.Envelope {
	e := env(mb, n, size)
	e.Origin = origin
	return e
}

// The envelopes one origin domain relayed hold at most their share of a
// mailbox, by count and by bytes; other origins and local senders still
// get in (spec/07-envelopes.md section 7.13).
func testMailboxOriginShare(t *testing.T, open Opener) {
	limits := testLimits
	limits.MailboxMaxEnvelopes, limits.MailboxMaxBytes = 8, 10000
	limits.OriginMaxEnvelopes, limits.OriginMaxBytes = 2, 500
	s := open(t, limits)
	ctx := t.Context()
	alice := newAccount(t, s, "alice@example.org")
	bob := newAccount(t, s, "bob@example.org")
	res, err := s.Enqueue(ctx, []store.Envelope{relayed(alice, 0, 10, "evil.test"), relayed(alice, 1, 10, "evil.test"),
		relayed(alice, 2, 10, "evil.test"), relayed(alice, 3, 10, "b.test"), env(alice, 4, 10), relayed(bob, 5, 10, "evil.test"),
		relayed(alice, 1, 10, "evil.test")})
	wantErr(t, "Enqueue", err, nil)
	for i, want := range []error{nil, nil, store.ErrLimit, nil, nil, nil, nil} {
		wantErr(t, fmt.Sprintf("Enqueue of envelope %d", i), res[i], want)
	}
	wantIDs(t, "alice's mailbox", pendingIDs(t, s, alice), 0, 1, 3, 4)
	// A second call sees what the first stored.
	res, err = s.Enqueue(ctx, []store.Envelope{relayed(alice, 6, 10, "evil.test"), env(alice, 7, 10)})
	wantErr(t, "Enqueue", err, nil)
	wantErr(t, "Enqueue past the origin's share", res[0], store.ErrLimit)
	wantErr(t, "Enqueue of a local envelope", res[1], nil)
	// Acknowledging makes room for the origin again.
	wantErr(t, "Ack", s.Ack(ctx, alice, []store.EnvelopeID{id(0)}), nil)
	enqueue(t, s, relayed(alice, 8, 10, "evil.test"))
	// By bytes: 500 per origin.
	enqueue(t, s, relayed(alice, 9, 300, "c.test"))
	res, err = s.Enqueue(ctx, []store.Envelope{relayed(alice, 10, 300, "c.test")})
	wantErr(t, "Enqueue", err, nil)
	wantErr(t, "Enqueue past the origin's byte share", res[0], store.ErrLimit)
	wantIDs(t, "alice's mailbox", pendingIDs(t, s, alice), 1, 3, 4, 7, 8, 9)
}
