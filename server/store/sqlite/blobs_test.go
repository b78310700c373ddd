package sqlite_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/sqlite"
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

// crashDirEnv names the directory of the store that the child process of
// TestBlobCrash writes parts into until it is killed.
const crashDirEnv = "XCHAT_TEST_BLOB_CRASH_DIR"

// crashBlob is the blob of TestBlobCrash and its content.
var (
	crashBlob = store.Blob{ID: store.BlobID{0xc7}, Owner: "alice@example.org", Size: 32*wire.BlobPartSize - 100,
		CreatedAt: time.UnixMilli(1_700_000_000_000), Expires: time.UnixMilli(1_700_000_000_000).Add(1000 * time.Hour)}
	crashData = func() []byte {
		b := make([]byte, crashBlob.Size)
		for i := range b {
			b[i] = byte(i*7 + i>>12)
		}
		return b
	}()
)

// crashPart returns part i of crashData.
func crashPart(i int64) []byte {
	return crashData[i*wire.BlobPartSize : min((i+1)*wire.BlobPartSize, crashBlob.Size)]
}

// A process killed while it writes parts loses none it acknowledged: the
// child process (this test, run again) writes parts from four goroutines
// and prints the index of each acknowledged one; it is killed (SIGKILL)
// after some; the store reopened holds every acknowledged part, which are
// not written again before the blob is finished and read back.
func TestBlobCrash(t *testing.T) {
	if dir := os.Getenv(crashDirEnv); dir != "" {
		blobCrashChild(dir)
		return
	}
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	s := open(t, path, store.DefaultLimits())
	if err := s.CreateBlob(t.Context(), crashBlob, store.BlobLimits{}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestBlobCrash$")
	cmd.Env = append(os.Environ(), crashDirEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	// The child ends when its standard input does: if this process dies.
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := make(map[int64]bool)
	sc := bufio.NewScanner(out)
	for len(acked) < 12 && sc.Scan() {
		var i int64
		if _, err := fmt.Sscanf(sc.Text(), "acked %d", &i); err != nil {
			continue
		}
		acked[i] = true
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	if len(acked) < 12 {
		t.Fatalf("the child acknowledged %d parts before it ended", len(acked))
	}

	s = open(t, path, store.DefaultLimits())
	ctx := t.Context()
	now := crashBlob.CreatedAt
	b, err := s.BlobState(ctx, crashBlob.Owner, crashBlob.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	prefix := int64(0)
	for acked[prefix] {
		prefix++
	}
	if b.Received < min(prefix*wire.BlobPartSize, b.Size) {
		t.Fatalf("after the crash, received %d bytes, but parts 0 to %d were acknowledged", b.Received, prefix-1)
	}
	for i := range int64(wire.BlobParts(uint64(b.Size))) {
		if !acked[i] {
			if _, err := s.PutPart(ctx, b.Owner, b.ID, i, crashPart(i), now); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.FinishBlob(ctx, b.Owner, b.ID, now, b.Expires); err != nil {
		t.Fatalf("after the crash, with the parts not acknowledged written again: %v", err)
	}
	got := make([]byte, b.Size)
	for off := 0; off < len(got); {
		n, _, err := s.ReadBlob(ctx, b.ID, int64(off), got[off:], now)
		if err != nil {
			t.Fatal(err)
		}
		off += n
	}
	if !bytes.Equal(got, crashData) {
		t.Fatal("after the crash, the blob does not hold the acknowledged parts")
	}
}

// blobCrashChild writes the parts of crashBlob, in a shuffled order, from
// four goroutines, printing "acked INDEX" for each acknowledged one, until
// it is killed, or its standard input ends.
func blobCrashChild(dir string) {
	s, err := sqlite.Open(context.Background(), filepath.Join(dir, "store.db"), store.DefaultLimits(), nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	parts := int64(wire.BlobParts(uint64(crashBlob.Size)))
	order := rand.Perm(int(parts))
	var mu sync.Mutex
	next := 0
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				mu.Lock()
				if next == len(order) {
					mu.Unlock()
					return
				}
				i := int64(order[next])
				next++
				mu.Unlock()
				if _, err := s.PutPart(context.Background(), crashBlob.Owner, crashBlob.ID, i, crashPart(i), crashBlob.CreatedAt); err != nil {
					fmt.Fprintln(os.Stderr, err)
					os.Exit(1)
				}
				mu.Lock()
				fmt.Printf("acked %d\n", i)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// Every part is written: wait to be killed, or for the parent's end.
	_, _ = io.Copy(io.Discard, os.Stdin)
	os.Exit(1)
}
