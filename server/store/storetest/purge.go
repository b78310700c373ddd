package storetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// Deleted writes rows that carry recognisable markers into s and deletes
// them again through the store's own operations: envelopes acknowledged
// (Ack) and expired (Expire), and delivery-token verifiers replaced
// (SetPolicy). It also stores one envelope and one verifier that stay. It
// returns the markers of the deleted rows and of the kept ones: after a
// purge a backend's files must hold none of gone and (as a check that the
// inspection can find anything) every one of kept.
func Deleted(t testing.TB, s store.Store, mb store.Mailbox) (gone, kept [][]byte) {
	t.Helper()
	ctx := context.Background()
	marker := func(what string) []byte {
		b := make([]byte, 6)
		rand.Read(b)
		return []byte("XCHAT-MARKER-" + what + "-" + hex.EncodeToString(b) + "-END")
	}
	sealed := func(m []byte) []byte {
		// Small enough to stay inline in a PostgreSQL heap tuple.
		b := make([]byte, 0, 512)
		for len(b)+len(m) <= cap(b) {
			b = append(b, m...)
		}
		return b
	}
	now := time.Now()
	var (
		envs  []store.Envelope
		acked []store.EnvelopeID
	)
	for i := range 40 {
		m := marker("acked")
		var id store.EnvelopeID
		rand.Read(id[:])
		envs = append(envs, store.Envelope{ID: id, To: mb, Sealed: sealed(m), Lane: store.LaneToken, ReceivedAt: now})
		gone = append(gone, m)
		if i%2 == 0 {
			acked = append(acked, id)
		} else {
			// Expired instead of acknowledged.
			envs[len(envs)-1].ReceivedAt = now.Add(-40 * 24 * time.Hour)
		}
	}
	keep := marker("kept")
	var keepID store.EnvelopeID
	rand.Read(keepID[:])
	envs = append(envs, store.Envelope{ID: keepID, To: mb, Sealed: sealed(keep), Lane: store.LaneRequest, ReceivedAt: now})
	kept = append(kept, keep)

	errs, err := s.Enqueue(ctx, envs)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Enqueue: envelope %d: %v", i, err)
		}
	}
	// A 32-byte verifier that is all marker (markers are 34 bytes: cut).
	verifier := func(what string) []byte { return marker(what)[:32] }
	oldV := [][]byte{verifier("vold1"), verifier("vold2")}
	if err := s.SetPolicy(ctx, mb.Address, store.Policy{Verifiers: oldV, RequestLaneOpen: true}); err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	newV := verifier("vnew")
	if err := s.SetPolicy(ctx, mb.Address, store.Policy{Verifiers: [][]byte{newV}, RequestLaneOpen: true}); err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	gone = append(gone, oldV...)
	kept = append(kept, newV)

	if err := s.Ack(ctx, mb, acked); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if n, err := s.Expire(ctx, now.Add(-30*24*time.Hour)); err != nil || n != 20 {
		t.Fatalf("Expire = %d, %v; want 20 expired", n, err)
	}
	left, err := s.Pending(ctx, mb, 0, 100)
	if err != nil || len(left) != 1 || left[0].ID != keepID {
		t.Fatalf("Pending after Ack and Expire = %d envelopes, %v; want the kept one", len(left), err)
	}
	return gone, kept
}

// Contains returns the markers that occur in data.
func Contains(data []byte, markers [][]byte) [][]byte {
	var found [][]byte
	for _, m := range markers {
		if bytes.Contains(data, m) {
			found = append(found, m)
		}
	}
	return found
}
