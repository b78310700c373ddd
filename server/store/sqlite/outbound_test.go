package sqlite_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

func TestClaimOutboundRefusesNoLease(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "store.db"), store.DefaultLimits())
	for _, lease := range []time.Duration{0, -time.Second} {
		if _, err := s.ClaimOutbound(t.Context(), "b.example", time.Now(), lease, 10); err == nil {
			t.Errorf("ClaimOutbound with lease %v succeeded", lease)
		}
	}
}

// TestOutboundGroupCommit checks that queued EnqueueOutbound and
// ClaimOutbound calls share transactions, and that claims in one transaction
// see each other's leases.
func TestOutboundGroupCommit(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "store.db"), store.DefaultLimits())
	ctx := t.Context()

	release := s.BlockWriter(t)
	txs0, ops0 := s.Stats()
	const enqueuers, per = 20, 5
	var wg sync.WaitGroup
	for g := range enqueuers {
		wg.Go(func() {
			out := make([]store.Outbound, per)
			for i := range out {
				out[i] = outboundEnvelope("b.example", g*per+i)
			}
			if err := s.EnqueueOutbound(context.Background(), out); err != nil {
				t.Errorf("EnqueueOutbound: %v", err)
			}
		})
	}
	waitFor(t, "the calls to queue", func() bool { return s.Queued() == enqueuers })
	release()
	wg.Wait()
	txs, ops := s.Stats()
	if ops-ops0 != enqueuers || txs-txs0 > 2 {
		t.Fatalf("%d EnqueueOutbound calls ran as %d operations in %d transactions", enqueuers, ops-ops0, txs-txs0)
	}

	// 12 claims of 10 for 100 envelopes, all in one transaction.
	release = s.BlockWriter(t)
	txs0, _ = s.Stats()
	const claimers, limit = 12, 10
	claims := make([][]store.Outbound, claimers)
	at := time.Now()
	for i := range claims {
		wg.Go(func() {
			var err error
			claims[i], err = s.ClaimOutbound(context.Background(), "b.example", at, time.Minute, limit)
			if err != nil {
				t.Errorf("ClaimOutbound: %v", err)
			}
		})
	}
	waitFor(t, "the claims to queue", func() bool { return s.Queued() == claimers })
	release()
	wg.Wait()
	if txs, _ := s.Stats(); txs-txs0 > 2 {
		t.Fatalf("%d queued claims took %d transactions", claimers, txs-txs0)
	}
	seen := make(map[int64]bool)
	for _, c := range claims {
		for _, o := range c {
			if seen[o.Seq] {
				t.Fatalf("seq %d claimed twice", o.Seq)
			}
			seen[o.Seq] = true
		}
	}
	if len(seen) != enqueuers*per {
		t.Fatalf("%d envelopes claimed, want %d", len(seen), enqueuers*per)
	}
	if got, err := s.ClaimOutbound(ctx, "b.example", at, time.Minute, limit); err != nil || len(got) != 0 {
		t.Fatalf("claim after all were claimed = %d envelopes, %v", len(got), err)
	}
}
