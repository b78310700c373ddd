package sqlite_test

import (
	"fmt"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// Policies reads what Policy reads, for many accounts at once, and leaves
// unknown accounts out.
func TestPolicies(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "store.db"), store.DefaultLimits())
	ctx := t.Context()
	var addrs []string
	for i := range 70 { // more than one statement's worth
		a := fmt.Sprintf("u%d@a.test", i)
		d := store.Device{Address: a, ID: 1, SigKey: make([]byte, 32), KEM: 1, HPKEKey: make([]byte, 32), CreatedAt: time.Now()}
		if err := s.CreateAccount(ctx, d, nil); err != nil {
			t.Fatal(err)
		}
		var p store.Policy
		for j := range i % 3 {
			p.Verifiers = append(p.Verifiers, []byte(fmt.Sprintf("verifier %d of %d", j, i)))
		}
		p.RequestLaneOpen = i%2 == 0
		if err := s.SetPolicy(ctx, a, p); err != nil {
			t.Fatal(err)
		}
		addrs = append(addrs, a)
	}
	ask := append([]string{"nobody@a.test", addrs[3]}, addrs...)
	got, err := s.Policies(ctx, ask)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(addrs) {
		t.Fatalf("%d policies, want %d", len(got), len(addrs))
	}
	for _, a := range addrs {
		want, err := s.Policy(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[a], want) {
			t.Errorf("%s: Policies %+v, Policy %+v", a, got[a], want)
		}
	}
}
