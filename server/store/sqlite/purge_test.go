package sqlite_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/storetest"
)

// TestPurgeLeavesNoDeletedBytes checks that what Ack, Expire and SetPolicy
// delete is gone from the database file and its write-ahead log once Purge
// returned (spec/16-security.md section 16.11), while the store stays open.
func TestPurgeLeavesNoDeletedBytes(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "store.db")
	s := open(t, path, store.DefaultLimits())
	mb := account(t, s, "alice@example.org")
	gone, kept := storetest.Deleted(t, s, mb)

	var p store.Purger = s
	if err := p.Purge(context.Background()); err != nil {
		t.Fatalf("Purge: %v", err)
	}
	var all []byte
	for _, suffix := range []string{"", "-wal", "-shm", "-journal"} {
		b, err := os.ReadFile(path + suffix)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if found := storetest.Contains(b, gone); len(found) > 0 {
			t.Errorf("%s holds %d of %d deleted markers after Purge, e.g. %q", filepath.Base(path+suffix), len(found), len(gone), found[0])
		}
		all = append(all, b...)
	}
	if found := storetest.Contains(all, kept); len(found) != len(kept) {
		t.Errorf("the files hold %d of the %d kept markers: the scan does not see the store's data", len(found), len(kept))
	}
}

// TestPurgeWhileWriting purges while other goroutines enqueue: a purge runs
// between the writer's transactions, and every write before and after it
// commits.
func TestPurgeWhileWriting(t *testing.T) {
	t.Parallel()
	s := open(t, filepath.Join(t.TempDir(), "store.db"), store.DefaultLimits())
	mb := account(t, s, "alice@example.org")
	const writers, each = 4, 50
	done := make(chan struct{})
	errc := make(chan error, writers)
	for g := range writers {
		go func() {
			for i := range each {
				res, err := s.Enqueue(context.Background(), []store.Envelope{envelope(mb, g*each+i)})
				if err == nil {
					err = res[0]
				}
				if err != nil {
					errc <- err
					return
				}
			}
			errc <- nil
		}()
	}
	go func() {
		defer close(done)
		for range 20 {
			if err := s.Purge(context.Background()); err != nil {
				t.Errorf("Purge: %v", err)
				return
			}
		}
	}()
	for range writers {
		if err := <-errc; err != nil {
			t.Fatalf("Enqueue: %v", err)
		}
	}
	<-done
	got, err := s.Pending(context.Background(), mb, 0, 2*writers*each)
	if err != nil || len(got) != writers*each {
		t.Fatalf("Pending = %d envelopes, %v; want %d", len(got), err, writers*each)
	}
}
