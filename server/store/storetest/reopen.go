package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// Reopener opens a new, empty store with the given limits for t, like
// [Opener], and returns with it a function that opens the same durable
// state again once the store was closed. Every store it opens is closed
// when t ends.
type Reopener func(t *testing.T, limits store.Limits) (s store.Store, reopen func(t *testing.T) store.Store)

// RunReopen checks that everything a store acknowledged survives closing
// and reopening it.
func RunReopen(t *testing.T, open Reopener) {
	s, reopen := open(t, testLimits)
	ctx := t.Context()
	aliceDev := device("alice@example.org")
	wantErr(t, "CreateAccount", s.CreateAccount(ctx, aliceDev, nil), nil)
	alice := store.Mailbox{Address: aliceDev.Address, Device: 1}
	bob := newAccount(t, s, "bob@example.org")
	policy := store.Policy{Verifiers: [][]byte{bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)}}
	wantErr(t, "SetPolicy", s.SetPolicy(ctx, alice.Address, policy), nil)
	invite := bytes.Repeat([]byte{9}, 32)
	wantErr(t, "CreateInvite", s.CreateInvite(ctx, invite, time.Now().Add(time.Hour)), nil)
	publish(t, s, alice, kps("a", 3), []byte("a-lr"), 3)
	claim(t, s, alice, []byte("a-0"), false)

	var envs []store.Envelope
	for i := range 5 {
		envs = append(envs, env(alice, i, 100))
	}
	enqueue(t, s, envs...)
	wantErr(t, "Ack", s.Ack(ctx, alice, []store.EnvelopeID{id(1), id(4)}), nil)
	enqueue(t, s, env(alice, 5, 100), env(alice, 6, 100), env(bob, 7, 100))
	before := pending(t, s, alice)
	lastSeq := pending(t, s, bob)[0].Seq // bob's mailbox's last

	t0 := now()
	outB := outbounds("b.example", 10, 11, 12) // 11 has no token
	outC := outbound("c.example", 13)
	enqueueOut(t, s, append(outB, outC)...)
	leased := claimOut(t, s, "b.example", t0, time.Hour, 1)
	wantIDs(t, "claimed", outIDs(leased), 10)
	domainsBefore := domains(t, s)

	// Bob links device 2 and removes it; a link token waits.
	createLink(t, s, bob.Address, 1, t0)
	link(t, s, bob.Address, 1, t0, 2)
	wantErr(t, "RemoveDevice", s.RemoveDevice(ctx, store.Mailbox{Address: bob.Address, Device: 2}), nil)
	createLink(t, s, bob.Address, 2, t0)

	wantErr(t, "Close", s.Close(), nil)
	s = reopen(t)

	domainsAfter := domains(t, s)
	if len(domainsAfter) != len(domainsBefore) {
		t.Fatalf("after reopening, OutboundDomains = %v, want %v", domainsAfter, domainsBefore)
	}
	for i := range domainsAfter {
		if domainsAfter[i].Domain != domainsBefore[i].Domain || !domainsAfter[i].NextTry.Equal(domainsBefore[i].NextTry) {
			t.Fatalf("after reopening, OutboundDomains = %v, want %v", domainsAfter, domainsBefore)
		}
	}
	wantIDs(t, "claim during the lease", outIDs(claimOut(t, s, "b.example", t0, time.Hour, 10)), 11, 12)
	outs := claimOut(t, s, "b.example", t0.Add(time.Hour), time.Hour, 10)
	wantIDs(t, "claim after the lease", outIDs(outs), 10, 11, 12)
	if outs[0].Seq != leased[0].Seq {
		t.Fatalf("after reopening, the leased envelope has seq %d, want %d", outs[0].Seq, leased[0].Seq)
	}
	for i := range outs {
		sameOutbound(t, outs[i], outB[i])
	}
	wantAttempts(t, outs, 2) // 10 before reopening, 11 and 12 after
	outsC := claimOut(t, s, "c.example", t0, time.Hour, 10)
	wantIDs(t, "c.example", outIDs(outsC), 13)
	sameOutbound(t, outsC[0], outC)
	wantAttempts(t, outsC, 1)
	enqueueOut(t, s, outbound("b.example", 14))
	outs = claimOut(t, s, "b.example", t0.Add(5*time.Hour), time.Hour, 10)
	wantIDs(t, "after queueing more", outIDs(outs), 10, 11, 12, 14)
	if outs[3].Seq <= outsC[0].Seq {
		t.Fatalf("after reopening, a new outbound envelope has seq %d, not after %d", outs[3].Seq, outsC[0].Seq)
	}

	got, err := s.Device(ctx, alice)
	wantErr(t, "Device", err, nil)
	sameDevice(t, got, aliceDev)
	p, err := s.Policy(ctx, alice.Address)
	wantErr(t, "Policy", err, nil)
	samePolicy(t, p, policy)
	p, err = s.Policy(ctx, bob.Address)
	wantErr(t, "Policy", err, nil)
	samePolicy(t, p, store.Policy{RequestLaneOpen: true})

	after := pending(t, s, alice)
	if len(after) != len(before) {
		t.Fatalf("after reopening, %d envelopes wait, want %d", len(after), len(before))
	}
	for i := range after {
		if after[i].Seq != before[i].Seq {
			t.Fatalf("after reopening, envelope %d has seq %d, want %d", i, after[i].Seq, before[i].Seq)
		}
		sameEnvelope(t, after[i], before[i].Envelope)
	}
	wantIDs(t, "bob's mailbox", pendingIDs(t, s, bob), 7)

	// The mailbox is still full (5), and the next seq is new.
	res, err := s.Enqueue(ctx, []store.Envelope{env(alice, 8, 100), env(bob, 9, 100)})
	wantErr(t, "Enqueue", err, nil)
	wantErr(t, "Enqueue to a full mailbox", res[0], store.ErrLimit)
	wantErr(t, "Enqueue", res[1], nil)
	bobs := pending(t, s, bob)
	if bobs[1].Seq <= lastSeq {
		t.Fatalf("after reopening, a new envelope has seq %d, not after %d", bobs[1].Seq, lastSeq)
	}

	claim(t, s, alice, []byte("a-1"), false)
	claim(t, s, alice, []byte("a-2"), false)
	claim(t, s, alice, []byte("a-lr"), true)

	wantErr(t, "CreateAccount with the invite", s.CreateAccount(ctx, device("carol@example.org"), invite), nil)
	wantErr(t, "CreateAccount with the used invite",
		s.CreateAccount(ctx, device("dave@example.org"), invite), store.ErrInviteInvalid)
	wantErr(t, "CreateAccount of a taken address", s.CreateAccount(ctx, device("bob@example.org"), nil), store.ErrAccountExists)

	// The link token survived, and the removed device's identifier is not
	// reused.
	link(t, s, bob.Address, 2, t0, 3)
	wantDeviceIDs(t, s, bob.Address, 1, 3)
}
