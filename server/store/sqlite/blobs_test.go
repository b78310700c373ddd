package sqlite_test

import (
	"bytes"
	"database/sql"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/storetest"
	"github.com/xchat-im/xchat/spec/wire"
)

func TestBlobsReopen(t *testing.T) {
	t.Parallel()
	storetest.RunBlobsReopen(t, func(t *testing.T, limits store.Limits) (store.Store, func(*testing.T) store.Store) {
		path := filepath.Join(t.TempDir(), "store.db")
		return open(t, path, limits), func(t *testing.T) store.Store { return open(t, path, limits) }
	})
}

// blobFile returns the name of the file of the blob id of the store whose
// database is in dir.
func blobFile(dir string, id store.BlobID) string {
	h := hex.EncodeToString(id[:])
	return filepath.Join(dir, "blobs", h[:2], h)
}

// Each blob is one file, written at the parts' offsets, and deleting the
// blob removes it.
func TestBlobFile(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "store.db"), store.DefaultLimits())
	t0 := time.Now()
	b := store.Blob{ID: store.BlobID{0xab, 1, 2}, Owner: "alice@example.org", Size: 2*wire.BlobPartSize + 5, CreatedAt: t0, Expires: t0.Add(time.Hour)}
	if err := s.CreateBlob(ctx, b, store.BlobLimits{}); err != nil {
		t.Fatal(err)
	}
	path := blobFile(dir, b.ID)
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a blob without parts has a file: %v", err)
	}
	last := bytes.Repeat([]byte{7}, 5)
	if _, err := s.PutPart(ctx, b.Owner, b.ID, 2, last, t0); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(data)) != b.Size || !bytes.Equal(data[2*wire.BlobPartSize:], last) ||
		!bytes.Equal(data[:2*wire.BlobPartSize], make([]byte, 2*wire.BlobPartSize)) {
		t.Fatalf("after the last part, the blob file has %d bytes, not the part at its offset", len(data))
	}
	for _, p := range []string{path, filepath.Dir(path), filepath.Dir(filepath.Dir(path))} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("%s has mode %v", p, fi.Mode().Perm())
		}
	}
	if n, err := s.DeleteExpiredBlobs(ctx, b.Expires, 10); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredBlobs = %d, %v", n, err)
	}
	if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after deleting the blob, its file: %v", err)
	}
}

// A crash after DeleteExpiredBlobs committed and before it removed the
// files leaves them listed in blob_deletions: Open removes them.
func TestBlobFilesAfterCrash(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	s := open(t, path, store.DefaultLimits())
	t0 := time.Now()
	data := bytes.Repeat([]byte{1}, wire.MinBlobSize)
	var blobs []store.Blob
	for i := range 2 {
		b := store.Blob{ID: store.BlobID{byte(i + 1)}, Owner: "alice@example.org", Size: wire.MinBlobSize, CreatedAt: t0, Expires: t0.Add(time.Hour)}
		if err := s.CreateBlob(ctx, b, store.BlobLimits{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.PutPart(ctx, b.Owner, b.ID, 0, data, t0); err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, b)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	gone, kept := blobs[0], blobs[1]
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`DELETE FROM blobs WHERE id = ?`, `INSERT INTO blob_deletions (id) VALUES (?)`} {
		if _, err := db.Exec(q, gone.ID[:]); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(blobFile(dir, gone.ID)); err != nil {
		t.Fatal(err)
	}

	s = open(t, path, store.DefaultLimits())
	if _, err := os.Stat(blobFile(dir, gone.ID)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("after Open, the file of a deleted blob: %v", err)
	}
	if _, err := s.FinishBlob(ctx, kept.Owner, kept.ID, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	p := make([]byte, wire.MinBlobSize)
	if n, _, err := s.ReadBlob(ctx, kept.ID, 0, p, t0); err != nil || n != len(p) || !bytes.Equal(p, data) {
		t.Fatalf("after Open, ReadBlob of a kept blob = %d, %v", n, err)
	}
}
