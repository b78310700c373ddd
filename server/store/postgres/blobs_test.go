package postgres_test

import (
	"path/filepath"

	"testing"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/sqlite"
	"github.com/xchat-im/xchat/server/store/storetest"
)

func TestBlobsReopen(t *testing.T) {
	t.Parallel()
	storetest.RunBlobsReopen(t, func(t *testing.T, limits store.Limits) (store.Store, func(*testing.T) store.Store) {
		u := newSchema(t, true)
		return open(t, u, limits), func(t *testing.T) store.Store { return open(t, u, limits) }
	})
}

// Blobs copy from the SQLite store (xchatd copy).
func TestCopyBlobsFromSQLite(t *testing.T) {
	t.Parallel()
	from, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "store.db"), store.DefaultLimits(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { from.Close() })
	storetest.CopyBlobs(t, from, open(t, newSchema(t, true), store.DefaultLimits()))
}
