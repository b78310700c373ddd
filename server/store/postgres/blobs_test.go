package postgres_test

import (
	"path/filepath"

	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/postgres"
	"github.com/xchat-im/xchat/server/store/sqlite"
	"github.com/xchat-im/xchat/server/store/storetest"
	"github.com/xchat-im/xchat/spec/wire"
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

// Deleting a blob deletes its parts' rows.
func TestBlobPartsDeleted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	u := newSchema(t, true)
	s := open(t, u, store.DefaultLimits())
	t0 := time.Now()
	var blobs []store.Blob
	for i := range 2 {
		b := store.Blob{ID: store.BlobID{byte(i + 1)}, Owner: "alice@example.org", Size: 2 * wire.BlobPartSize,
			CreatedAt: t0, Expires: t0.Add(time.Duration(i+1) * time.Hour)}
		if err := s.CreateBlob(ctx, b, store.BlobLimits{}); err != nil {
			t.Fatal(err)
		}
		for j := range int64(2) {
			if _, err := s.PutPart(ctx, b.Owner, b.ID, j, make([]byte, wire.BlobPartSize), t0); err != nil {
				t.Fatal(err)
			}
		}
		blobs = append(blobs, b)
	}
	if n, err := s.DeleteExpiredBlobs(ctx, t0.Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredBlobs = %d, %v", n, err)
	}
	conn := connect(t, u)
	for i, want := range []int{0, 2} {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM blob_parts WHERE blob_id = $1`, blobs[i].ID[:]).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != want {
			t.Fatalf("blob %d has %d part rows, want %d", i, n, want)
		}
	}
}

// A schema of version 5, with an account in it, upgrades to the blob store.
func TestUpgradeToBlobs(t *testing.T) {
	t.Parallel()
	u := newSchema(t, false)
	ctx := t.Context()
	if err := postgres.MigrateTo(ctx, u, 5); err != nil {
		t.Fatal(err)
	}
	if _, err := connect(t, u).Exec(ctx, `INSERT INTO accounts (address, created_at_ms) VALUES ('alice@example.org', 1)`); err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(ctx, u); err != nil {
		t.Fatalf("Migrate from version 5: %v", err)
	}
	s := open(t, u, store.DefaultLimits())
	t0 := time.Now()
	b := store.Blob{ID: store.BlobID{1}, Owner: "alice@example.org", Size: wire.MinBlobSize, CreatedAt: t0, Expires: t0.Add(time.Hour)}
	if err := s.CreateBlob(ctx, b, store.BlobLimits{}); err != nil {
		t.Fatalf("CreateBlob after the upgrade: %v", err)
	}
	if got, err := s.PutPart(ctx, b.Owner, b.ID, 0, make([]byte, wire.MinBlobSize), t0); err != nil || got.Received != b.Size {
		t.Fatalf("PutPart after the upgrade = %+v, %v", got, err)
	}
}
