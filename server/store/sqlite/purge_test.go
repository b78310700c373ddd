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
