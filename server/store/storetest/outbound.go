package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// sender is the local device the suite's outbound envelopes come from.
var sender = store.Mailbox{Address: "alice@example.org", Device: 3}

// outbound returns an envelope for domain with ID id(n), queued now: to one
// of three users of the domain, with a token when n is even.
func outbound(domain string, n int) store.Outbound {
	var token []byte
	if n%2 == 0 {
		token = []byte(fmt.Sprintf("token-%d", n))
	}
	return store.Outbound{
		Domain: domain,
		Envelope: store.Envelope{
			ID:         id(n),
			To:         store.Mailbox{Address: fmt.Sprintf("user%d@%s", n%3, domain), Device: uint32(1 + n%2)},
			Sealed:     sealed(n, 40+n%7),
			ReceivedAt: now(),
		},
		Token: token,
		From:  sender,
	}
}

// outbounds returns outbound(domain, n) for each n in ns.
func outbounds(domain string, ns ...int) []store.Outbound {
	out := make([]store.Outbound, len(ns))
	for i, n := range ns {
		out[i] = outbound(domain, n)
	}
	return out
}

// ns returns first, first+1, ..., first+count-1.
func ns(first, count int) []int {
	out := make([]int, count)
	for i := range out {
		out[i] = first + i
	}
	return out
}

// enqueueOut queues out and fails the test if that fails.
func enqueueOut(t *testing.T, s store.Store, out ...store.Outbound) {
	t.Helper()
	wantErr(t, "EnqueueOutbound", s.EnqueueOutbound(t.Context(), out), nil)
}

// claimOut claims for domain and fails the test if that fails. It checks
// that what it returns is in Seq order and carries the lease.
func claimOut(t *testing.T, s store.Store, domain string, at time.Time, lease time.Duration, limit int) []store.Outbound {
	t.Helper()
	got, err := s.ClaimOutbound(t.Context(), domain, at, lease, limit)
	wantErr(t, "ClaimOutbound", err, nil)
	if len(got) > max(limit, 0) {
		t.Fatalf("ClaimOutbound(limit %d) returned %d envelopes", limit, len(got))
	}
	for i, o := range got {
		if i > 0 && o.Seq <= got[i-1].Seq {
			t.Fatalf("ClaimOutbound returned seq %d after %d", o.Seq, got[i-1].Seq)
		}
		if o.Domain != domain {
			t.Fatalf("ClaimOutbound(%q) returned an envelope for %q", domain, o.Domain)
		}
		if !o.NextTry.Equal(at.Add(lease)) {
			t.Fatalf("claimed envelope %q has NextTry %v, want the end of the lease %v", o.Envelope.ID, o.NextTry, at.Add(lease))
		}
	}
	return got
}

// outIDs returns the envelope IDs of out.
func outIDs(out []store.Outbound) []store.EnvelopeID {
	ids := make([]store.EnvelopeID, len(out))
	for i, o := range out {
		ids[i] = o.Envelope.ID
	}
	return ids
}

// outSeqs returns the Seqs of out.
func outSeqs(out []store.Outbound) []int64 {
	seqs := make([]int64, len(out))
	for i, o := range out {
		seqs[i] = o.Seq
	}
	return seqs
}

// wantAttempts fails the test unless every envelope of out has n attempts.
func wantAttempts(t *testing.T, out []store.Outbound, n int) {
	t.Helper()
	for _, o := range out {
		if o.Attempts != n {
			t.Fatalf("envelope %q has %d attempts, want %d", o.Envelope.ID, o.Attempts, n)
		}
	}
}

// sameOutbound fails the test unless got is want as queued.
func sameOutbound(t *testing.T, got, want store.Outbound) {
	t.Helper()
	g, w := got.Envelope, want.Envelope
	if got.Domain != want.Domain || g.ID != w.ID || g.To != w.To || !bytes.Equal(g.Sealed, w.Sealed) ||
		!g.ReceivedAt.Equal(w.ReceivedAt) || got.From != want.From ||
		(got.Token == nil) != (want.Token == nil) || !bytes.Equal(got.Token, want.Token) {
		t.Fatalf("queued envelope\n  %q for %s to %v from %v at %v, token %q (nil %t), %d bytes\nwant\n  %q for %s to %v from %v at %v, token %q (nil %t), %d bytes",
			g.ID, got.Domain, g.To, got.From, g.ReceivedAt, got.Token, got.Token == nil, len(g.Sealed),
			w.ID, want.Domain, w.To, want.From, w.ReceivedAt, want.Token, want.Token == nil, len(w.Sealed))
	}
	if g.Sealed == nil {
		t.Fatalf("queued envelope %q has nil Sealed", g.ID)
	}
}

// domains returns OutboundDomains and fails the test if that fails.
func domains(t *testing.T, s store.Store) []store.OutboundDomain {
	t.Helper()
	got, err := s.OutboundDomains(t.Context())
	wantErr(t, "OutboundDomains", err, nil)
	return got
}

func testOutboundClaimOrder(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	// Interleaved with another domain, over several calls.
	want := outbounds("b.example", ns(0, 6)...)
	enqueueOut(t, s, want[0:2]...)
	enqueueOut(t, s, outbounds("c.example", 100)...)
	enqueueOut(t, s, want[2:5]...)
	enqueueOut(t, s, outbound("c.example", 101), want[5])

	got := claimOut(t, s, "b.example", t0.Add(time.Second), time.Minute, 100)
	wantIDs(t, "claimed", outIDs(got), ns(0, 6)...)
	wantAttempts(t, got, 1)
	for i := range got {
		sameOutbound(t, got[i], want[i])
	}
	if got[0].Seq <= 0 {
		t.Fatalf("first seq %d, want positive", got[0].Seq)
	}
	got = claimOut(t, s, "c.example", t0.Add(time.Second), time.Minute, 100)
	wantIDs(t, "claimed", outIDs(got), 100, 101)
}

func testOutboundDuplicate(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	first := outbound("b.example", 1)
	enqueueOut(t, s, first)
	again := outbound("b.example", 1) // same (To, ID), other content
	again.Envelope.Sealed = []byte("other")
	again.Token = []byte("other token")
	enqueueOut(t, s, again)
	// Twice in one batch; and the same ID to another device and another user.
	otherDevice := outbound("b.example", 1)
	otherDevice.Envelope.To.Device = 9
	otherUser := outbound("b.example", 1)
	otherUser.Envelope.To.Address = "zed@b.example"
	two := outbound("b.example", 2)
	enqueueOut(t, s, two, two, otherDevice, otherUser)

	got := claimOut(t, s, "b.example", t0, time.Minute, 100)
	if len(got) != 4 {
		t.Fatalf("%d envelopes queued, want 4: %q", len(got), outIDs(got))
	}
	sameOutbound(t, got[0], first) // the first queued is kept
	sameOutbound(t, got[1], two)
	sameOutbound(t, got[2], otherDevice)
	sameOutbound(t, got[3], otherUser)

	// Still queued while leased: not queued twice.
	enqueueOut(t, s, again)
	if n := len(claimOut(t, s, "b.example", t0.Add(time.Hour), time.Minute, 100)); n != 4 {
		t.Fatalf("after queueing a leased envelope again, %d are queued, want 4", n)
	}

	// Once deleted, the same (To, ID) may be queued again.
	wantErr(t, "DeleteOutbound", s.DeleteOutbound(ctx, []int64{got[0].Seq}), nil)
	enqueueOut(t, s, again)
	got2 := claimOut(t, s, "b.example", t0.Add(2*time.Hour), time.Minute, 100)
	if len(got2) != 4 {
		t.Fatalf("%d envelopes queued, want 4", len(got2))
	}
	sameOutbound(t, got2[3], again)
	if got2[3].Seq <= got[3].Seq {
		t.Fatalf("queued again with seq %d, not after %d", got2[3].Seq, got[3].Seq)
	}
	wantAttempts(t, got2[3:], 1)
}

func testOutboundLease(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	enqueueOut(t, s, outbounds("b.example", 0, 1, 2)...)
	const lease = time.Minute

	got := claimOut(t, s, "b.example", t0, lease, 10)
	wantIDs(t, "first claim", outIDs(got), 0, 1, 2)
	wantAttempts(t, got, 1)
	wantIDs(t, "claim during the lease", outIDs(claimOut(t, s, "b.example", t0, lease, 10)))
	wantIDs(t, "claim just before the lease ends",
		outIDs(claimOut(t, s, "b.example", t0.Add(lease-time.Millisecond), lease, 10)))

	got2 := claimOut(t, s, "b.example", t0.Add(lease), 2*lease, 10)
	wantIDs(t, "claim when the lease ended", outIDs(got2), 0, 1, 2)
	wantAttempts(t, got2, 2)
	for i := range got2 {
		if got2[i].Seq != got[i].Seq {
			t.Fatalf("claimed again with seq %d, first with %d", got2[i].Seq, got[i].Seq)
		}
		sameOutbound(t, got2[i], got[i])
	}
	wantIDs(t, "claim during the second lease",
		outIDs(claimOut(t, s, "b.example", t0.Add(2*lease), lease, 10)))
	got3 := claimOut(t, s, "b.example", t0.Add(3*lease), lease, 10)
	wantIDs(t, "third claim", outIDs(got3), 0, 1, 2)
	wantAttempts(t, got3, 3)
}

func testOutboundDue(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	enqueueOut(t, s, outbounds("b.example", ns(0, 6)...)...)
	all := claimOut(t, s, "b.example", t0, time.Minute, 10)
	// Due at different times: 1 and 4 at t0+1h, 2 at t0+2h, the rest at t0.
	wantErr(t, "RetryOutbound", s.RetryOutbound(ctx, []int64{all[1].Seq, all[4].Seq}, t0.Add(time.Hour)), nil)
	wantErr(t, "RetryOutbound", s.RetryOutbound(ctx, []int64{all[2].Seq}, t0.Add(2*time.Hour)), nil)
	wantErr(t, "RetryOutbound", s.RetryOutbound(ctx, []int64{all[0].Seq, all[3].Seq, all[5].Seq}, t0), nil)

	wantIDs(t, "due at t0", outIDs(claimOut(t, s, "b.example", t0, 3*time.Hour, 10)), 0, 3, 5)
	wantIDs(t, "due just before t0+1h", outIDs(claimOut(t, s, "b.example", t0.Add(time.Hour-time.Millisecond), time.Second, 10)))
	wantIDs(t, "due at t0+1h", outIDs(claimOut(t, s, "b.example", t0.Add(time.Hour), 3*time.Hour, 10)), 1, 4)
	// 1 and 4 are leased until t0+4h.
	wantIDs(t, "due at t0+3h", outIDs(claimOut(t, s, "b.example", t0.Add(3*time.Hour), time.Hour, 10)), 0, 2, 3, 5)
}

func testOutboundLimit(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	enqueueOut(t, s, outbounds("b.example", ns(0, 7)...)...)
	wantIDs(t, "claim of 0", outIDs(claimOut(t, s, "b.example", t0, time.Minute, 0)))
	wantIDs(t, "claim of 3", outIDs(claimOut(t, s, "b.example", t0, time.Minute, 3)), 0, 1, 2)
	wantIDs(t, "claim of 3", outIDs(claimOut(t, s, "b.example", t0, time.Minute, 3)), 3, 4, 5)
	wantIDs(t, "claim of 3", outIDs(claimOut(t, s, "b.example", t0, time.Minute, 3)), 6)
	wantIDs(t, "claim of 3", outIDs(claimOut(t, s, "b.example", t0, time.Minute, 3)))
	wantIDs(t, "claim of 1 after the lease", outIDs(claimOut(t, s, "b.example", t0.Add(time.Minute), time.Minute, 1)), 0)
}

// testOutboundLimitMixed checks that a limited claim takes the lowest Seqs
// of the due envelopes, whether they were claimed before or never.
func testOutboundLimitMixed(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	enqueueOut(t, s, outbounds("b.example", ns(0, 6)...)...)
	all := claimOut(t, s, "b.example", t0, time.Hour, 6)
	// 1 and 3 are due again (1 later than 3), 0, 2, 4 and 5 leased.
	wantErr(t, "RetryOutbound", s.RetryOutbound(ctx, []int64{all[1].Seq}, t0.Add(2*time.Millisecond)), nil)
	wantErr(t, "RetryOutbound", s.RetryOutbound(ctx, []int64{all[3].Seq}, t0.Add(time.Millisecond)), nil)
	enqueueOut(t, s, outbounds("b.example", 6, 7, 8)...)
	at := t0.Add(time.Minute)
	wantIDs(t, "claim of 1", outIDs(claimOut(t, s, "b.example", at, time.Hour, 1)), 1)
	wantIDs(t, "claim of 2", outIDs(claimOut(t, s, "b.example", at, time.Hour, 2)), 3, 6)
	wantIDs(t, "claim of 1", outIDs(claimOut(t, s, "b.example", at, time.Hour, 1)), 7)

	// New envelopes before ones claimed again.
	enqueueOut(t, s, outbounds("b.example", 9, 10)...)
	wantErr(t, "RetryOutbound", s.RetryOutbound(ctx, []int64{all[0].Seq, all[5].Seq}, t0), nil)
	wantIDs(t, "claim of 3", outIDs(claimOut(t, s, "b.example", at, time.Hour, 3)), 0, 5, 8)
	wantIDs(t, "claim of 3", outIDs(claimOut(t, s, "b.example", at, time.Hour, 3)), 9, 10)
}

func testOutboundDomainsIndependent(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	enqueueOut(t, s, outbound("a.example", 0), outbound("b.example", 1), outbound("a.example", 2),
		outbound("b.example", 3), outbound("a.example", 4))
	wantIDs(t, "claim of a", outIDs(claimOut(t, s, "a.example", t0, time.Hour, 2)), 0, 2)
	wantIDs(t, "claim of b", outIDs(claimOut(t, s, "b.example", t0, time.Hour, 10)), 1, 3)
	wantIDs(t, "claim of a", outIDs(claimOut(t, s, "a.example", t0, time.Hour, 10)), 4)
	wantIDs(t, "claim of an unknown domain", outIDs(claimOut(t, s, "c.example", t0, time.Hour, 10)))
	wantIDs(t, "claim of a prefix of a domain", outIDs(claimOut(t, s, "a.exampl", t0.Add(2*time.Hour), time.Hour, 10)))
	wantIDs(t, "claim of a", outIDs(claimOut(t, s, "a.example", t0.Add(time.Hour), time.Hour, 10)), 0, 2, 4)
}

func testOutboundConcurrentClaims(t *testing.T, open Opener) {
	s := open(t, testLimits)
	const rows, claimers = 200, 10
	enqueueOut(t, s, outbounds("b.example", ns(0, rows)...)...)
	enqueueOut(t, s, outbounds("c.example", ns(1000, 10)...)...)
	t0 := now()
	var (
		mu      sync.Mutex
		claimed = make(map[int64]int)
		ids     = make(map[store.EnvelopeID]bool)
		wg      sync.WaitGroup
	)
	for g := range claimers {
		wg.Go(func() {
			for {
				got, err := s.ClaimOutbound(t.Context(), "b.example", t0, time.Hour, 3+g)
				if err != nil {
					t.Errorf("ClaimOutbound: %v", err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, o := range got {
					claimed[o.Seq]++
					ids[o.Envelope.ID] = true
					if o.Attempts != 1 {
						t.Errorf("envelope %q claimed with %d attempts", o.Envelope.ID, o.Attempts)
					}
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != rows || len(ids) != rows {
		t.Fatalf("%d seqs, %d IDs claimed, want %d", len(claimed), len(ids), rows)
	}
	for seq, n := range claimed {
		if n != 1 {
			t.Errorf("seq %d claimed %d times", seq, n)
		}
	}
	wantIDs(t, "claim of c", outIDs(claimOut(t, s, "c.example", t0, time.Hour, 100)), ns(1000, 10)...)
}

func testOutboundDelete(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	enqueueOut(t, s, outbounds("b.example", ns(0, 5)...)...)
	enqueueOut(t, s, outbounds("c.example", 10)...)
	all := claimOut(t, s, "b.example", t0, time.Minute, 10)
	c := claimOut(t, s, "c.example", t0, time.Minute, 10)

	// Leased rows are deleted; unknown seqs (and seqs of other domains) are
	// no obstacle.
	wantErr(t, "DeleteOutbound", s.DeleteOutbound(ctx, []int64{all[1].Seq, c[0].Seq + 1000, all[3].Seq, -1}), nil)
	wantErr(t, "DeleteOutbound again", s.DeleteOutbound(ctx, []int64{all[1].Seq}), nil)
	wantErr(t, "DeleteOutbound of nothing", s.DeleteOutbound(ctx, nil), nil)
	wantIDs(t, "after the lease", outIDs(claimOut(t, s, "b.example", t0.Add(time.Minute), time.Minute, 10)), 0, 2, 4)
	wantIDs(t, "other domain", outIDs(claimOut(t, s, "c.example", t0.Add(time.Minute), time.Minute, 10)), 10)

	// Due rows are deleted too.
	wantErr(t, "DeleteOutbound", s.DeleteOutbound(ctx, []int64{all[0].Seq, all[2].Seq, all[4].Seq, c[0].Seq}), nil)
	wantIDs(t, "after deleting all", outIDs(claimOut(t, s, "b.example", t0.Add(time.Hour), time.Minute, 10)))
	wantIDs(t, "after deleting all", outIDs(claimOut(t, s, "c.example", t0.Add(time.Hour), time.Minute, 10)))
	if d := domains(t, s); len(d) != 0 {
		t.Fatalf("OutboundDomains of an empty queue: %v", d)
	}
}

func testOutboundRetry(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	enqueueOut(t, s, outbounds("b.example", 0, 1, 2)...)
	all := claimOut(t, s, "b.example", t0, time.Hour, 10)

	// Retry shortens the lease of 0 and 2; 1 keeps its hour.
	at := t0.Add(10 * time.Second)
	wantErr(t, "RetryOutbound", s.RetryOutbound(ctx, []int64{all[0].Seq, all[2].Seq, all[2].Seq + 1000}, at), nil)
	wantErr(t, "RetryOutbound of nothing", s.RetryOutbound(ctx, nil, at), nil)
	wantIDs(t, "before the retry", outIDs(claimOut(t, s, "b.example", at.Add(-time.Millisecond), time.Minute, 10)))
	got := claimOut(t, s, "b.example", at, time.Minute, 10)
	wantIDs(t, "at the retry", outIDs(got), 0, 2)
	wantAttempts(t, got, 2) // retrying is not an attempt, claiming is

	// Retry may also postpone: 1 is now due only in two hours.
	wantErr(t, "RetryOutbound", s.RetryOutbound(ctx, []int64{all[1].Seq}, t0.Add(2*time.Hour)), nil)
	wantIDs(t, "after the first lease", outIDs(claimOut(t, s, "b.example", t0.Add(time.Hour), time.Minute, 10)), 0, 2)
	got = claimOut(t, s, "b.example", t0.Add(2*time.Hour), time.Minute, 10)
	wantIDs(t, "at the postponed retry", outIDs(got), 0, 1, 2)
	wantAttempts(t, got[1:2], 2)
	wantAttempts(t, got[0:1], 4)
}

func testOutboundDomains(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	if d := domains(t, s); len(d) != 0 {
		t.Fatalf("OutboundDomains of an empty queue: %v", d)
	}
	t0 := now()
	queued := func(domain string, n int, d time.Duration) store.Outbound {
		o := outbound(domain, n)
		o.Envelope.ReceivedAt = t0.Add(d)
		return o
	}
	enqueueOut(t, s, queued("c.example", 0, -time.Minute), queued("a.example", 1, -2*time.Minute),
		queued("b.example", 2, -3*time.Minute), queued("a.example", 3, -4*time.Minute), queued("b.example", 4, 0))
	got := domains(t, s)
	wantNames := func(what string, got []store.OutboundDomain, names ...string) {
		t.Helper()
		var have []string
		for _, d := range got {
			have = append(have, d.Domain)
		}
		if fmt.Sprint(have) != fmt.Sprint(names) {
			t.Fatalf("%s: domains %q, want %q", what, have, names)
		}
	}
	wantNames("OutboundDomains", got, "a.example", "b.example", "c.example")
	// Due at once: no later than they were queued.
	for i, earliest := range []time.Duration{-4 * time.Minute, -3 * time.Minute, -time.Minute} {
		if got[i].NextTry.After(t0.Add(earliest)) {
			t.Fatalf("new envelopes for %s are due at %v, after they were queued at %v", got[i].Domain, got[i].NextTry, t0.Add(earliest))
		}
	}

	// Leased, a is next due when its lease ends.
	as := claimOut(t, s, "a.example", t0, time.Hour, 10)
	got = domains(t, s)
	wantNames("after a claim", got, "a.example", "b.example", "c.example")
	if !got[0].NextTry.Equal(t0.Add(time.Hour)) {
		t.Fatalf("leased domain next due at %v, want %v", got[0].NextTry, t0.Add(time.Hour))
	}
	// The earliest of its envelopes counts.
	wantErr(t, "RetryOutbound", s.RetryOutbound(ctx, []int64{as[1].Seq}, t0.Add(time.Minute)), nil)
	got = domains(t, s)
	if !got[0].NextTry.Equal(t0.Add(time.Minute)) {
		t.Fatalf("domain next due at %v, want its earliest envelope's %v", got[0].NextTry, t0.Add(time.Minute))
	}

	// A domain disappears with its last envelope.
	bs := claimOut(t, s, "b.example", t0, time.Hour, 10)
	wantErr(t, "DeleteOutbound", s.DeleteOutbound(ctx, outSeqs(bs[:1])), nil)
	wantNames("after deleting some of b", domains(t, s), "a.example", "b.example", "c.example")
	wantErr(t, "DeleteOutbound", s.DeleteOutbound(ctx, outSeqs(bs[1:])), nil)
	wantNames("after deleting all of b", domains(t, s), "a.example", "c.example")
	wantErr(t, "DeleteOutbound", s.DeleteOutbound(ctx, outSeqs(as)), nil)
	wantNames("after deleting all of a", domains(t, s), "c.example")
}

func testOutboundToken(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	withToken := outbound("b.example", 0)
	withToken.Token = bytes.Repeat([]byte{0xA5}, 32)
	noToken := outbound("b.example", 1)
	noToken.Token = nil
	emptyToken := outbound("b.example", 2)
	emptyToken.Token = []byte{}
	enqueueOut(t, s, withToken, noToken, emptyToken)
	got := claimOut(t, s, "b.example", t0, time.Minute, 10)
	if len(got) != 3 {
		t.Fatalf("%d envelopes queued, want 3", len(got))
	}
	sameOutbound(t, got[0], withToken)
	sameOutbound(t, got[1], noToken)
	if got[1].Token != nil {
		t.Fatalf("nil token read back as %q", got[1].Token)
	}
	sameOutbound(t, got[2], emptyToken)
	if got[2].Token == nil {
		t.Fatal("empty token read back as nil")
	}
}

func testOutboundRoundTrip(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	a := outbound("b.example", 0)
	a.Envelope.To = store.Mailbox{Address: "bob@b.example", Device: 0xFFFFFFFF}
	a.From = store.Mailbox{Address: "carol@example.org", Device: 0xFFFFFFFE}
	a.Envelope.ReceivedAt = time.UnixMilli(1_700_000_000_123)
	a.Envelope.Sealed = sealed(7, 4096)
	b := outbound("b.example", 1)
	b.Envelope.Sealed = []byte{} // an empty payload is queued as such
	b.Envelope.ReceivedAt = t0.Add(-36 * time.Hour)
	b.From = store.Mailbox{Address: "dave@example.org", Device: 1}
	// Fields the store sets are ignored.
	b.Seq, b.Attempts, b.NextTry = 12345, 7, t0.Add(24*time.Hour)
	b.Envelope.Lane = store.LaneRequest
	enqueueOut(t, s, a, b)
	got := claimOut(t, s, "b.example", t0, time.Minute, 10)
	if len(got) != 2 {
		t.Fatalf("%d envelopes queued, want 2", len(got))
	}
	sameOutbound(t, got[0], a)
	sameOutbound(t, got[1], b)
	wantAttempts(t, got, 1)
}

func testOutboundCanceled(t *testing.T, open Opener) {
	s := open(t, testLimits)
	err := s.EnqueueOutbound(canceled(), outbounds("b.example", 0))
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("EnqueueOutbound with a canceled context = %v; want context.Canceled", err)
	}
	if d := domains(t, s); len(d) != 0 {
		t.Fatalf("after a canceled EnqueueOutbound: %v", d)
	}
	_, err = s.ClaimOutbound(canceled(), "b.example", now(), time.Minute, 10)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("ClaimOutbound with a canceled context = %v; want context.Canceled", err)
	}
}

func testOutboundClosed(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	enqueueOut(t, s, outbounds("b.example", 0)...)
	wantErr(t, "Close", s.Close(), nil)
	check := func(what string, err error) {
		t.Helper()
		wantErr(t, what+" after Close", err, store.ErrClosed)
	}
	check("EnqueueOutbound", s.EnqueueOutbound(ctx, outbounds("b.example", 1)))
	_, err := s.ClaimOutbound(ctx, "b.example", now(), time.Minute, 10)
	check("ClaimOutbound", err)
	check("DeleteOutbound", s.DeleteOutbound(ctx, []int64{1}))
	check("RetryOutbound", s.RetryOutbound(ctx, []int64{1}, now()))
	_, err = s.OutboundDomains(ctx)
	check("OutboundDomains", err)
}

// OutboundUsage counts the envelopes and sealed bytes of each submitting
// account and domain, duplicates once, and forgets what left the queue.
func testOutboundUsage(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	usage := func() map[[2]string]store.OutboundUse {
		t.Helper()
		got, err := s.OutboundUsage(ctx)
		wantErr(t, "OutboundUsage", err, nil)
		m := make(map[[2]string]store.OutboundUse, len(got))
		for _, u := range got {
			m[[2]string{u.From, u.Domain}] = u
		}
		return m
	}
	if u := usage(); len(u) != 0 {
		t.Fatalf("OutboundUsage of an empty queue: %v", u)
	}
	b := outbounds("b.example", ns(0, 3)...)
	other := outbound("b.example", 7)
	other.From = store.Mailbox{Address: "bob@example.org", Device: 1}
	c := outbound("c.example", 9)
	enqueueOut(t, s, append(b, other, c)...)
	enqueueOut(t, s, b[0]) // a duplicate is queued once
	bytesOf := func(out ...store.Outbound) int64 {
		n := int64(0)
		for _, o := range out {
			n += int64(len(o.Envelope.Sealed))
		}
		return n
	}
	want := map[[2]string]store.OutboundUse{
		{sender.Address, "b.example"}:    {From: sender.Address, Domain: "b.example", Envelopes: 3, Bytes: bytesOf(b...)},
		{"bob@example.org", "b.example"}: {From: "bob@example.org", Domain: "b.example", Envelopes: 1, Bytes: bytesOf(other)},
		{sender.Address, "c.example"}:    {From: sender.Address, Domain: "c.example", Envelopes: 1, Bytes: bytesOf(c)},
	}
	got := usage()
	if len(got) != len(want) {
		t.Fatalf("OutboundUsage: %v, want %v", got, want)
	}
	for k, w := range want {
		if got[k] != w {
			t.Fatalf("OutboundUsage %v: %+v, want %+v", k, got[k], w)
		}
	}
	claimed := claimOut(t, s, "c.example", now(), time.Minute, 10)
	wantErr(t, "DeleteOutbound", s.DeleteOutbound(ctx, []int64{claimed[0].Seq}), nil)
	if _, ok := usage()[[2]string{sender.Address, "c.example"}]; ok {
		t.Fatal("OutboundUsage still counts a deleted envelope")
	}
}
