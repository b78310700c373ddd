package postgres_test

import (
	"bytes"
	"sync"
	"testing"

	"github.com/xchat-im/xchat/server/store"
)

// TestDomainKeyFirstWins has several stores on one schema, like several
// processes, propose different keys at once: every one gets the same key,
// one of those proposed, and keeps getting it.
func TestDomainKeyFirstWins(t *testing.T) {
	t.Parallel()
	u := newSchema(t, true)
	const n = 6
	stores := make([]store.DomainKeys, n)
	for i := range stores {
		stores[i] = open(t, u, store.DefaultLimits())
	}
	got := make([][]byte, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			k, err := stores[i].DomainKey(t.Context(), store.KeySenderCert, bytes.Repeat([]byte{byte(i + 1)}, 32))
			if err != nil {
				t.Errorf("DomainKey: %v", err)
			}
			got[i] = k
		})
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	if len(got[0]) != 32 || got[0][0] < 1 || got[0][0] > n || !bytes.Equal(got[0], bytes.Repeat(got[0][:1], 32)) {
		t.Fatalf("DomainKey returned %x, none of the proposed keys", got[0])
	}
	for i := range n {
		if !bytes.Equal(got[i], got[0]) {
			t.Fatalf("store %d got key %x, store 1 got %x", i+1, got[i], got[0])
		}
	}
	again, err := stores[0].DomainKey(t.Context(), store.KeySenderCert, bytes.Repeat([]byte{99}, 32))
	if err != nil || !bytes.Equal(again, got[0]) {
		t.Fatalf("DomainKey again = %x, %v; want %x", again, err, got[0])
	}
	other, err := stores[1].DomainKey(t.Context(), store.KeyStatelessReset, []byte("reset"))
	if err != nil || string(other) != "reset" {
		t.Fatalf("DomainKey of another name = %q, %v; want the proposed key", other, err)
	}
}
