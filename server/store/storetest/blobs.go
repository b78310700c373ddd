package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// blobTests are the tests of store.Blobs.
var blobTests = []namedTest{
	{"BlobCreate", testBlobCreate},
	{"BlobQuota", testBlobQuota},
	{"BlobMaxUnfinished", testBlobMaxUnfinished},
	{"BlobCreateConcurrent", testBlobCreateConcurrent},
	{"BlobExpired", testBlobExpired},
	{"BlobPutPartChecks", testBlobPutPartChecks},
	{"BlobPutPartReplace", testBlobPutPartReplace},
	{"BlobPutPartComplete", testBlobPutPartComplete},
	{"BlobReceivedPrefix", testBlobReceivedPrefix},
	{"BlobPutPartConcurrent", testBlobPutPartConcurrent},
	{"BlobFinish", testBlobFinish},
	{"BlobRead", testBlobRead},
	{"BlobReadUnfinished", testBlobReadUnfinished},
	{"BlobDeleteExpired", testBlobDeleteExpired},
	{"BlobDeleteExpiredMany", testBlobDeleteExpiredMany},
	{"BlobUsage", testBlobUsage},
	{"BlobCopy", testBlobCopy},
	{"BlobFinishWhilePutting", testBlobFinishWhilePutting},
	{"BlobDeleteWhileReading", testBlobDeleteWhileReading},
}

// part is wire.BlobPartSize as an int64.
const part = int64(wire.BlobPartSize)

// Sizes of test blobs: one part (the smallest blob), and four parts with a
// short last one.
const (
	smallBlob = int64(wire.MinBlobSize)
	bigBlob   = 3*part + 1000
)

// noLimits enforces no blob limit.
var noLimits = store.BlobLimits{}

// blobID returns a blob ID made from n.
func blobID(n int) store.BlobID {
	var id store.BlobID
	copy(id[:], fmt.Sprintf("blob-%011d", n))
	return id
}

// newBlob returns a blob n of owner with the given size, created at t0 and
// expiring a day later.
func newBlob(owner string, n int, size int64, t0 time.Time) store.Blob {
	return store.Blob{ID: blobID(n), Owner: owner, Size: size, CreatedAt: t0, Expires: t0.Add(24 * time.Hour)}
}

// createBlob creates b and fails the test unless it was stored.
func createBlob(t *testing.T, s store.Store, b store.Blob, l store.BlobLimits) {
	t.Helper()
	wantErr(t, fmt.Sprintf("CreateBlob(%x, %d bytes)", b.ID[:], b.Size), s.CreateBlob(t.Context(), b, l), nil)
}

// blobData returns the content of a blob of size bytes made from seed.
func blobData(seed byte, size int64) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = seed + byte(i) + byte(i>>16)
	}
	return b
}

// partOf returns part index of data.
func partOf(data []byte, index int64) []byte {
	return data[index*part : min((index+1)*part, int64(len(data)))]
}

// parts returns how many parts a blob of size bytes has.
func parts(size int64) int64 { return int64(wire.BlobParts(uint64(size))) }

// putPart writes part index of data into b and returns the blob's state.
func putPart(t *testing.T, s store.Store, b store.Blob, data []byte, index int64, now time.Time) store.Blob {
	t.Helper()
	got, err := s.PutPart(t.Context(), b.Owner, b.ID, index, partOf(data, index), now)
	wantErr(t, fmt.Sprintf("PutPart(%d)", index), err, nil)
	return got
}

// upload creates b with the content data, writes every part and finishes
// it, to expire at expires.
func upload(t *testing.T, s store.Store, b store.Blob, data []byte, expires time.Time) store.Blob {
	t.Helper()
	createBlob(t, s, b, noLimits)
	for i := range parts(b.Size) {
		putPart(t, s, b, data, i, b.CreatedAt)
	}
	got, err := s.FinishBlob(t.Context(), b.Owner, b.ID, b.CreatedAt, expires)
	wantErr(t, "FinishBlob", err, nil)
	return got
}

// blobState returns the state of b at now and fails the test on an error.
func blobState(t *testing.T, s store.Store, b store.Blob, now time.Time) store.Blob {
	t.Helper()
	got, err := s.BlobState(t.Context(), b.Owner, b.ID, now)
	wantErr(t, "BlobState", err, nil)
	return got
}

// sameBlob fails the test unless got is want with the given progress.
func sameBlob(t *testing.T, what string, got, want store.Blob, received int64, complete bool) {
	t.Helper()
	if got.ID != want.ID || got.Owner != want.Owner || got.Size != want.Size || got.Received != received ||
		got.Complete != complete || !got.CreatedAt.Equal(want.CreatedAt) || !got.Expires.Equal(want.Expires) {
		t.Fatalf("%s: blob\n  %x of %s, %d bytes, %d received, complete %v, created %v, expires %v\nwant\n  %x of %s, %d bytes, %d received, complete %v, created %v, expires %v",
			what, got.ID[:], got.Owner, got.Size, got.Received, got.Complete, got.CreatedAt, got.Expires,
			want.ID[:], want.Owner, want.Size, received, complete, want.CreatedAt, want.Expires)
	}
}

// readAll reads the blob id in pieces of n bytes and returns its content.
func readAll(t *testing.T, s store.Store, id store.BlobID, n int, now time.Time) []byte {
	t.Helper()
	var out []byte
	p := make([]byte, n)
	for {
		got, size, err := s.ReadBlob(t.Context(), id, int64(len(out)), p, now)
		wantErr(t, fmt.Sprintf("ReadBlob at %d", len(out)), err, nil)
		if got == 0 || got > n {
			t.Fatalf("ReadBlob at %d read %d bytes into %d", len(out), got, n)
		}
		out = append(out, p[:got]...)
		if int64(len(out)) > size {
			t.Fatalf("ReadBlob read %d bytes of a blob of %d", len(out), size)
		}
		if int64(len(out)) == size {
			return out
		}
	}
}

// wantUsage fails the test unless owner's usage at now is bytes in blobs.
func wantUsage(t *testing.T, s store.Store, owner string, now time.Time, bytes int64, blobs int) {
	t.Helper()
	gotBytes, gotBlobs, err := s.BlobUsage(t.Context(), owner, now)
	wantErr(t, "BlobUsage", err, nil)
	if gotBytes != bytes || gotBlobs != blobs {
		t.Fatalf("BlobUsage(%s) = %d bytes in %d blobs, want %d in %d", owner, gotBytes, gotBlobs, bytes, blobs)
	}
}

func testBlobCreate(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	b := newBlob("alice@example.org", 1, bigBlob, t0)
	createBlob(t, s, b, store.BlobLimits{Quota: 1 << 30, MaxUnfinished: 8})
	sameBlob(t, "new blob", blobState(t, s, b, t0), b, 0, false)
	_, err := s.BlobState(t.Context(), "bob@example.org", b.ID, t0)
	wantErr(t, "BlobState of another owner", err, store.ErrUnknownBlob)
	_, err = s.BlobState(t.Context(), b.Owner, blobID(2), t0)
	wantErr(t, "BlobState of an unknown blob", err, store.ErrUnknownBlob)
	if err := s.CreateBlob(t.Context(), b, noLimits); err == nil {
		t.Fatal("CreateBlob with a taken ID succeeded")
	}
	for _, size := range []int64{0, -1, wire.MaxBlobSize + 1} {
		bad := newBlob(b.Owner, 3, size, t0)
		wantErr(t, fmt.Sprintf("CreateBlob of %d bytes", size), s.CreateBlob(t.Context(), bad, noLimits), store.ErrBadRange)
	}
	wantUsage(t, s, b.Owner, t0, bigBlob, 1)
}

// The quota counts unexpired blobs, finished or not, at their full size;
// expired ones free it.
func testBlobQuota(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	alice := "alice@example.org"
	l := store.BlobLimits{Quota: 3000}
	short := newBlob(alice, 1, 2000, t0)
	short.Expires = t0.Add(time.Hour)
	createBlob(t, s, short, l)
	wantErr(t, "CreateBlob over the quota", s.CreateBlob(ctx, newBlob(alice, 2, 1001, t0), l), store.ErrQuota)
	wantErr(t, "CreateBlob of another owner", s.CreateBlob(ctx, newBlob("bob@example.org", 3, 3000, t0), l), nil)
	full := newBlob(alice, 4, 1000, t0) // up to the quota exactly
	createBlob(t, s, full, l)
	wantErr(t, "CreateBlob over the quota", s.CreateBlob(ctx, newBlob(alice, 5, 1, t0), l), store.ErrQuota)
	if _, err := s.BlobState(ctx, alice, blobID(5), t0); err == nil {
		t.Fatal("a blob refused for the quota exists")
	}
	// Finished, the blob counts the same.
	data := blobData(1, full.Size)
	putPart(t, s, full, data, 0, t0)
	_, err := s.FinishBlob(ctx, alice, full.ID, t0, t0.Add(48*time.Hour))
	wantErr(t, "FinishBlob", err, nil)
	wantErr(t, "CreateBlob over the quota", s.CreateBlob(ctx, newBlob(alice, 6, 1, t0), l), store.ErrQuota)
	// Once the first blob expired, its bytes are free again.
	later := newBlob(alice, 7, 2000, t0.Add(time.Hour))
	createBlob(t, s, later, l)
	wantUsage(t, s, alice, t0.Add(time.Hour), 3000, 2)
}

// At most MaxUnfinished blobs of an owner wait for their parts; finished
// and expired ones do not count.
func testBlobMaxUnfinished(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	alice := "alice@example.org"
	l := store.BlobLimits{Quota: 1 << 30, MaxUnfinished: 2}
	first := newBlob(alice, 1, smallBlob, t0)
	first.Expires = t0.Add(time.Hour)
	createBlob(t, s, first, l)
	second := newBlob(alice, 2, smallBlob, t0)
	createBlob(t, s, second, l)
	wantErr(t, "CreateBlob of a third unfinished blob", s.CreateBlob(ctx, newBlob(alice, 3, smallBlob, t0), l), store.ErrLimit)
	createBlob(t, s, newBlob("bob@example.org", 4, smallBlob, t0), l)
	putPart(t, s, second, blobData(2, smallBlob), 0, t0)
	_, err := s.FinishBlob(ctx, alice, second.ID, t0, t0.Add(48*time.Hour))
	wantErr(t, "FinishBlob", err, nil)
	createBlob(t, s, newBlob(alice, 5, smallBlob, t0), l)
	wantErr(t, "CreateBlob of a third unfinished blob", s.CreateBlob(ctx, newBlob(alice, 6, smallBlob, t0), l), store.ErrLimit)
	// The first expires.
	t1 := t0.Add(time.Hour)
	createBlob(t, s, newBlob(alice, 7, smallBlob, t1), l)
	// Over both limits, the quota is what refuses.
	both := store.BlobLimits{Quota: 3 * smallBlob, MaxUnfinished: 2}
	wantErr(t, "CreateBlob over both limits", s.CreateBlob(ctx, newBlob(alice, 8, smallBlob, t1), both), store.ErrQuota)
}

// Concurrent creates never together exceed the limits.
func testBlobCreateConcurrent(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	const n = 16
	for k, l := range []store.BlobLimits{{Quota: 5 * smallBlob}, {MaxUnfinished: 5}} {
		t.Run(fmt.Sprintf("quota=%d,max=%d", l.Quota, l.MaxUnfinished), func(t *testing.T) {
			owner := fmt.Sprintf("alice%d@example.org", k)
			var wg sync.WaitGroup
			errs := make([]error, n)
			for i := range n {
				wg.Go(func() {
					b := newBlob(owner, 100*k+i, smallBlob, t0)
					errs[i] = s.CreateBlob(t.Context(), b, l)
				})
			}
			wg.Wait()
			created := 0
			for _, err := range errs {
				switch {
				case err == nil:
					created++
				case l.Quota > 0:
					wantErr(t, "CreateBlob", err, store.ErrQuota)
				default:
					wantErr(t, "CreateBlob", err, store.ErrLimit)
				}
			}
			if created != 5 {
				t.Fatalf("%d concurrent creates succeeded, want 5", created)
			}
		})
	}
}

// An expired blob is unknown to every method, finished or not, before it
// is deleted.
func testBlobExpired(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	b := newBlob("alice@example.org", 1, bigBlob, t0)
	b.Expires = t0.Add(time.Hour)
	createBlob(t, s, b, noLimits)
	data := blobData(1, b.Size)
	putPart(t, s, b, data, 0, t0.Add(time.Hour-time.Millisecond))
	at := b.Expires
	_, err := s.BlobState(ctx, b.Owner, b.ID, at)
	wantErr(t, "BlobState of an expired blob", err, store.ErrUnknownBlob)
	_, err = s.PutPart(ctx, b.Owner, b.ID, 1, partOf(data, 1), at)
	wantErr(t, "PutPart to an expired blob", err, store.ErrUnknownBlob)
	_, err = s.FinishBlob(ctx, b.Owner, b.ID, at, at.Add(time.Hour))
	wantErr(t, "FinishBlob of an expired blob", err, store.ErrUnknownBlob)
	wantUsage(t, s, b.Owner, at, 0, 0)

	done := upload(t, s, newBlob(b.Owner, 2, smallBlob, t0), blobData(2, smallBlob), t0.Add(time.Hour))
	_, _, err = s.ReadBlob(ctx, done.ID, 0, make([]byte, 10), t0.Add(time.Hour))
	wantErr(t, "ReadBlob of an expired blob", err, store.ErrUnknownBlob)
	_, err = s.PutPart(ctx, b.Owner, done.ID, 0, blobData(2, smallBlob), t0.Add(time.Hour))
	wantErr(t, "PutPart to an expired complete blob", err, store.ErrUnknownBlob)
	_, err = s.FinishBlob(ctx, b.Owner, done.ID, t0.Add(time.Hour), t0.Add(2*time.Hour))
	wantErr(t, "FinishBlob of an expired complete blob", err, store.ErrUnknownBlob)
}

// PutPart takes parts of exactly their length, inside the blob, from its
// owner only.
func testBlobPutPartChecks(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	b := newBlob("alice@example.org", 1, bigBlob, t0)
	createBlob(t, s, b, noLimits)
	data := blobData(1, b.Size)
	last := parts(b.Size) - 1
	for _, c := range []struct {
		what  string
		index int64
		data  []byte
	}{
		{"a short part", 0, data[:part-1]},
		{"a long part", 0, data[:part+1]},
		{"an empty part", 0, nil},
		{"a full-size last part", last, data[:part]},
		{"a short last part", last, data[last*part : b.Size-1]},
		{"a negative index", -1, data[:part]},
		{"an index past the end", last + 1, data[:part]},
		{"an index past the end", last + 1, data[last*part:]},
	} {
		_, err := s.PutPart(ctx, b.Owner, b.ID, c.index, c.data, t0)
		wantErr(t, "PutPart of "+c.what, err, store.ErrBadRange)
	}
	_, err := s.PutPart(ctx, "bob@example.org", b.ID, 0, partOf(data, 0), t0)
	wantErr(t, "PutPart from another owner", err, store.ErrUnknownBlob)
	_, err = s.PutPart(ctx, b.Owner, blobID(2), 0, partOf(data, 0), t0)
	wantErr(t, "PutPart to an unknown blob", err, store.ErrUnknownBlob)
	_, err = s.PutPart(ctx, "bob@example.org", b.ID, -1, nil, t0)
	wantErr(t, "PutPart from another owner at a bad index", err, store.ErrUnknownBlob)
	sameBlob(t, "after refused parts", blobState(t, s, b, t0), b, 0, false)
	got := putPart(t, s, b, data, last, t0)
	sameBlob(t, "after the last part", got, b, 0, false)
	got = putPart(t, s, b, data, 0, t0)
	sameBlob(t, "after the first part", got, b, part, false)
}

// Writing a part again replaces it.
func testBlobPutPartReplace(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	b := newBlob("alice@example.org", 1, bigBlob, t0)
	createBlob(t, s, b, noLimits)
	old, data := blobData(1, b.Size), blobData(2, b.Size)
	for i := range parts(b.Size) {
		putPart(t, s, b, old, i, t0)
	}
	putPart(t, s, b, data, 1, t0)
	got := putPart(t, s, b, data, parts(b.Size)-1, t0)
	sameBlob(t, "after replacing parts", got, b, b.Size, false)
	if _, err := s.FinishBlob(t.Context(), b.Owner, b.ID, t0, b.Expires); err != nil {
		t.Fatalf("FinishBlob: %v", err)
	}
	want := append([]byte{}, old...)
	copy(want[part:], partOf(data, 1))
	copy(want[3*part:], partOf(data, 3))
	if !bytes.Equal(readAll(t, s, b.ID, int(part), t0), want) {
		t.Fatal("the blob does not hold the replaced parts")
	}
}

// A part for a complete blob changes nothing.
func testBlobPutPartComplete(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	b := newBlob("alice@example.org", 1, bigBlob, t0)
	data := blobData(1, b.Size)
	done := upload(t, s, b, data, t0.Add(time.Hour))
	other := blobData(2, b.Size)
	for i := range parts(b.Size) {
		sameBlob(t, "PutPart to a complete blob", putPart(t, s, b, other, i, t0), done, b.Size, true)
	}
	// Whatever the index and the data.
	for _, index := range []int64{-1, 0, parts(b.Size)} {
		got, err := s.PutPart(t.Context(), b.Owner, b.ID, index, other[:10], t0)
		wantErr(t, fmt.Sprintf("PutPart(%d) of 10 bytes to a complete blob", index), err, nil)
		sameBlob(t, "PutPart to a complete blob", got, done, b.Size, true)
	}
	_, err := s.PutPart(t.Context(), "bob@example.org", b.ID, 0, partOf(other, 0), t0)
	wantErr(t, "PutPart from another owner to a complete blob", err, store.ErrUnknownBlob)
	if !bytes.Equal(readAll(t, s, b.ID, int(part), t0), data) {
		t.Fatal("a part written to a complete blob changed it")
	}
}

// Received is the durable prefix, whatever order the parts arrive in.
func testBlobReceivedPrefix(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	b := newBlob("alice@example.org", 1, 5*part+7, t0) // 6 parts
	createBlob(t, s, b, noLimits)
	data := blobData(1, b.Size)
	for _, step := range []struct {
		index, received int64
	}{
		{2, 0}, {5, 0}, {0, part}, {0, part}, {1, 3 * part}, {4, 3 * part}, {3, b.Size},
	} {
		got := putPart(t, s, b, data, step.index, t0)
		sameBlob(t, fmt.Sprintf("after part %d", step.index), got, b, step.received, false)
		sameBlob(t, fmt.Sprintf("BlobState after part %d", step.index), blobState(t, s, b, t0), b, step.received, false)
	}
}

// Parts of one blob written at once are all kept.
func testBlobPutPartConcurrent(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	b := newBlob("alice@example.org", 1, 7*part+3, t0)
	createBlob(t, s, b, noLimits)
	data := blobData(1, b.Size)
	var wg sync.WaitGroup
	errs := make([]error, parts(b.Size))
	for i := range parts(b.Size) {
		wg.Go(func() {
			_, errs[i] = s.PutPart(t.Context(), b.Owner, b.ID, i, partOf(data, i), t0)
		})
	}
	wg.Wait()
	for i, err := range errs {
		wantErr(t, fmt.Sprintf("PutPart(%d)", i), err, nil)
	}
	sameBlob(t, "after concurrent parts", blobState(t, s, b, t0), b, b.Size, false)
	if _, err := s.FinishBlob(t.Context(), b.Owner, b.ID, t0, b.Expires); err != nil {
		t.Fatalf("FinishBlob: %v", err)
	}
	if !bytes.Equal(readAll(t, s, b.ID, int(part), t0), data) {
		t.Fatal("the blob written concurrently does not hold its parts")
	}
}

// FinishBlob needs every part, sets the expiry once and is idempotent.
func testBlobFinish(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	b := newBlob("alice@example.org", 1, bigBlob, t0)
	createBlob(t, s, b, noLimits)
	data := blobData(1, b.Size)
	_, err := s.FinishBlob(ctx, b.Owner, b.ID, t0, t0.Add(time.Hour))
	wantErr(t, "FinishBlob without parts", err, store.ErrBlobIncomplete)
	for _, i := range []int64{0, 1, 3} {
		putPart(t, s, b, data, i, t0)
	}
	_, err = s.FinishBlob(ctx, b.Owner, b.ID, t0, t0.Add(time.Hour))
	wantErr(t, "FinishBlob with a part missing", err, store.ErrBlobIncomplete)
	_, _, err = s.ReadBlob(ctx, b.ID, 0, make([]byte, 10), t0)
	wantErr(t, "ReadBlob of an unfinished blob", err, store.ErrUnknownBlob)
	putPart(t, s, b, data, 2, t0)
	_, err = s.FinishBlob(ctx, "bob@example.org", b.ID, t0, t0.Add(time.Hour))
	wantErr(t, "FinishBlob of another owner", err, store.ErrUnknownBlob)
	_, err = s.FinishBlob(ctx, b.Owner, blobID(2), t0, t0.Add(time.Hour))
	wantErr(t, "FinishBlob of an unknown blob", err, store.ErrUnknownBlob)

	t1 := t0.Add(time.Minute)
	want := b
	want.Expires = t1.Add(30 * 24 * time.Hour) // after the upload lifetime
	got, err := s.FinishBlob(ctx, b.Owner, b.ID, t1, want.Expires)
	wantErr(t, "FinishBlob", err, nil)
	sameBlob(t, "finished", got, want, b.Size, true)
	got, err = s.FinishBlob(ctx, b.Owner, b.ID, t1.Add(time.Minute), t1.Add(time.Hour))
	wantErr(t, "FinishBlob again", err, nil)
	sameBlob(t, "finished again", got, want, b.Size, true)
	sameBlob(t, "BlobState", blobState(t, s, b, t0.Add(25*time.Hour)), want, b.Size, true)
}

// ReadBlob reads any range of a complete blob.
func testBlobRead(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	b := newBlob("alice@example.org", 1, bigBlob, t0)
	data := blobData(1, b.Size)
	upload(t, s, b, data, t0.Add(time.Hour))
	for _, c := range []struct{ off, n, want int64 }{
		{0, 1, 1},
		{0, part, part},
		{1, part, part},                          // across a part boundary
		{part - 10, 20, 20},                      // across a part boundary
		{part, 2*part + 1000, 2*part + 1000},     // whole parts to the end
		{part - 1, 3 * part, 2*part + 1001},      // to the end, short
		{b.Size - 1, part, 1},                    // the last byte
		{b.Size - 1000, 1000, 1000},              // exactly the end
		{10, 3*part + 5000, b.Size - 10},         // larger than the blob
		{3 * part, part, 1000},                   // the short last part
		{2*part + 100, part - 200, part - 200},   // inside one part
		{2*part - 100, 2 * part, part + 1100},    // over three parts
		{0, 2 * b.Size, b.Size},                  // all of it at once
		{b.Size - 1000 - 1, 1001, 1001},          // the last part and one byte before
		{part * 2, 0, 0},                         // nothing
		{b.Size - part - 5, part + 10, part + 5}, // to the end
	} {
		p := make([]byte, c.n)
		n, size, err := s.ReadBlob(ctx, b.ID, c.off, p, t0)
		wantErr(t, fmt.Sprintf("ReadBlob(%d, %d)", c.off, c.n), err, nil)
		if int64(n) != c.want || size != b.Size {
			t.Fatalf("ReadBlob(%d, %d) = %d bytes of %d, want %d of %d", c.off, c.n, n, size, c.want, b.Size)
		}
		if !bytes.Equal(p[:n], data[c.off:c.off+c.want]) {
			t.Fatalf("ReadBlob(%d, %d) read the wrong bytes", c.off, c.n)
		}
	}
	for _, off := range []int64{b.Size, b.Size + 1, b.Size + part, -1} {
		_, _, err := s.ReadBlob(ctx, b.ID, off, make([]byte, 10), t0)
		wantErr(t, fmt.Sprintf("ReadBlob at %d", off), err, store.ErrBadRange)
	}
	_, _, err := s.ReadBlob(ctx, blobID(2), 0, make([]byte, 10), t0)
	wantErr(t, "ReadBlob of an unknown blob", err, store.ErrUnknownBlob)
	if !bytes.Equal(readAll(t, s, b.ID, 100<<10, t0), data) {
		t.Fatal("ReadBlob in 100 KiB pieces read the wrong bytes")
	}
	small := newBlob("bob@example.org", 3, smallBlob, t0)
	smallData := blobData(3, smallBlob)
	upload(t, s, small, smallData, t0.Add(time.Hour))
	if !bytes.Equal(readAll(t, s, small.ID, int(part), t0), smallData) {
		t.Fatal("ReadBlob of the smallest blob read the wrong bytes")
	}
}

// An unfinished blob is unknown to ReadBlob, even when every part is there;
// an unknown blob too, even at a bad offset.
func testBlobReadUnfinished(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	b := newBlob("alice@example.org", 1, smallBlob, t0)
	createBlob(t, s, b, noLimits)
	putPart(t, s, b, blobData(1, smallBlob), 0, t0)
	for _, off := range []int64{0, smallBlob} {
		_, _, err := s.ReadBlob(ctx, b.ID, off, make([]byte, 10), t0)
		wantErr(t, fmt.Sprintf("ReadBlob at %d of an unfinished blob", off), err, store.ErrUnknownBlob)
	}
	_, _, err := s.ReadBlob(ctx, blobID(2), smallBlob+1, make([]byte, 10), t0)
	wantErr(t, "ReadBlob past the end of an unknown blob", err, store.ErrUnknownBlob)
}

// DeleteExpiredBlobs deletes expired blobs, finished or not, at most limit
// at a time, and nothing else.
func testBlobDeleteExpired(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	alice := "alice@example.org"
	var gone []store.Blob
	for i := range 5 {
		b := newBlob(alice, i, bigBlob, t0)
		b.Expires = t0.Add(time.Duration(i+1) * time.Minute)
		data := blobData(byte(i), b.Size)
		if i%2 == 0 {
			b = upload(t, s, b, data, b.Expires)
		} else {
			createBlob(t, s, b, noLimits)
			putPart(t, s, b, data, 1, t0)
		}
		gone = append(gone, b)
	}
	kept := upload(t, s, newBlob(alice, 10, bigBlob, t0), blobData(10, bigBlob), t0.Add(time.Hour))
	keptUnfinished := newBlob(alice, 11, bigBlob, t0)
	createBlob(t, s, keptUnfinished, noLimits)
	putPart(t, s, keptUnfinished, blobData(11, bigBlob), 0, t0)

	at := t0.Add(5 * time.Minute)
	n, err := s.DeleteExpiredBlobs(ctx, t0, 10)
	if err != nil || n != 0 {
		t.Fatalf("DeleteExpiredBlobs before any expired = %d, %v; want 0", n, err)
	}
	n, err = s.DeleteExpiredBlobs(ctx, at, 2)
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpiredBlobs(limit 2) = %d, %v; want 2", n, err)
	}
	n, err = s.DeleteExpiredBlobs(ctx, at, 10)
	if err != nil || n != 3 {
		t.Fatalf("DeleteExpiredBlobs = %d, %v; want 3", n, err)
	}
	n, err = s.DeleteExpiredBlobs(ctx, at, 10)
	if err != nil || n != 0 {
		t.Fatalf("DeleteExpiredBlobs again = %d, %v; want 0", n, err)
	}
	// Deleted, the blobs are unknown even at a time before their expiry.
	for _, b := range gone {
		_, err := s.BlobState(ctx, alice, b.ID, t0)
		wantErr(t, "BlobState of a deleted blob", err, store.ErrUnknownBlob)
		_, _, err = s.ReadBlob(ctx, b.ID, 0, make([]byte, 10), t0)
		wantErr(t, "ReadBlob of a deleted blob", err, store.ErrUnknownBlob)
		_, err = s.PutPart(ctx, alice, b.ID, 0, blobData(0, part), t0)
		wantErr(t, "PutPart to a deleted blob", err, store.ErrUnknownBlob)
	}
	wantUsage(t, s, alice, t0, 2*bigBlob, 2)
	if !bytes.Equal(readAll(t, s, kept.ID, int(part), at), blobData(10, bigBlob)) {
		t.Fatal("a kept blob changed")
	}
	sameBlob(t, "kept unfinished blob", blobState(t, s, keptUnfinished, at), keptUnfinished, part, false)
	n, err = s.DeleteExpiredBlobs(ctx, t0.Add(48*time.Hour), 10)
	if err != nil || n != 2 {
		t.Fatalf("DeleteExpiredBlobs of the rest = %d, %v; want 2", n, err)
	}
	n, err = s.DeleteExpiredBlobs(ctx, t0.Add(48*time.Hour), 0)
	if err != nil || n != 0 {
		t.Fatalf("DeleteExpiredBlobs(limit 0) = %d, %v; want 0", n, err)
	}
	wantUsage(t, s, alice, t0, 0, 0)
}

// DeleteExpiredBlobs deletes as many as it is asked to, however it splits
// the work.
func testBlobDeleteExpiredMany(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	for i := range 40 {
		b := newBlob(fmt.Sprintf("user%d@example.org", i%3), i, smallBlob, t0)
		if i < 37 {
			b.Expires = t0.Add(time.Minute)
		}
		createBlob(t, s, b, noLimits)
		putPart(t, s, b, blobData(byte(i), smallBlob), 0, t0)
	}
	for _, c := range []struct{ limit, want int }{{1, 1}, {33, 33}, {100, 3}, {100, 0}} {
		n, err := s.DeleteExpiredBlobs(ctx, t0.Add(time.Minute), c.limit)
		if err != nil || n != c.want {
			t.Fatalf("DeleteExpiredBlobs(limit %d) = %d, %v; want %d", c.limit, n, err, c.want)
		}
	}
	total := 0
	for i := range 3 {
		_, n, err := s.BlobUsage(ctx, fmt.Sprintf("user%d@example.org", i), t0)
		wantErr(t, "BlobUsage", err, nil)
		total += n
	}
	if total != 3 {
		t.Fatalf("after deleting the expired blobs, %d are left, want 3", total)
	}
}

// BlobUsage counts an owner's unexpired blobs at their full size.
func testBlobUsage(t *testing.T, open Opener) {
	s := open(t, testLimits)
	t0 := now()
	alice, bob := "alice@example.org", "bob@example.org"
	wantUsage(t, s, alice, t0, 0, 0)
	a1 := newBlob(alice, 1, bigBlob, t0)
	a1.Expires = t0.Add(time.Hour)
	createBlob(t, s, a1, noLimits)
	upload(t, s, newBlob(alice, 2, smallBlob, t0), blobData(2, smallBlob), t0.Add(2*time.Hour))
	createBlob(t, s, newBlob(bob, 3, smallBlob, t0), noLimits)
	wantUsage(t, s, alice, t0, bigBlob+smallBlob, 2)
	wantUsage(t, s, bob, t0, smallBlob, 1)
	wantUsage(t, s, alice, t0.Add(time.Hour), smallBlob, 1)
	wantUsage(t, s, alice, t0.Add(2*time.Hour), 0, 0)
}

// RunBlobsReopen checks that the parts a store acknowledged, and the blobs
// it finished, survive closing and reopening it.
func RunBlobsReopen(t *testing.T, open Reopener) {
	s, reopen := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	done := newBlob("alice@example.org", 1, bigBlob, t0)
	doneData := blobData(1, bigBlob)
	done = upload(t, s, done, doneData, t0.Add(time.Hour))
	b := newBlob("alice@example.org", 2, 5*part+7, t0)
	createBlob(t, s, b, noLimits)
	data := blobData(2, b.Size)
	for _, i := range []int64{0, 1, 3, 5} {
		putPart(t, s, b, data, i, t0)
	}
	wantErr(t, "Close", s.Close(), nil)
	s = reopen(t)

	sameBlob(t, "after reopening", blobState(t, s, b, t0), b, 2*part, false)
	sameBlob(t, "after reopening", blobState(t, s, done, t0), done, done.Size, true)
	if !bytes.Equal(readAll(t, s, done.ID, int(part), t0), doneData) {
		t.Fatal("after reopening, the complete blob changed")
	}
	putPart(t, s, b, data, 2, t0)
	sameBlob(t, "after reopening and a part", putPart(t, s, b, data, 4, t0), b, b.Size, false)
	if _, err := s.FinishBlob(ctx, b.Owner, b.ID, t0, t0.Add(time.Hour)); err != nil {
		t.Fatalf("FinishBlob: %v", err)
	}
	if !bytes.Equal(readAll(t, s, b.ID, int(part), t0), data) {
		t.Fatal("after reopening, the parts written before do not read back")
	}
	wantUsage(t, s, b.Owner, t0, done.Size+b.Size, 2)
}

func testBlobCopy(t *testing.T, open Opener) {
	CopyBlobs(t, open(t, testLimits), open(t, testLimits))
}

// CopyBlobs checks that store.CopyBlobs copies the complete, unexpired
// blobs of from, an empty store, into to, an empty store, and only them.
func CopyBlobs(t *testing.T, from, to store.Store) {
	ctx := t.Context()
	t0 := now()
	var want []store.Blob
	for i, size := range []int64{smallBlob, bigBlob, 2 * part} {
		b := newBlob(fmt.Sprintf("user%d@example.org", i%2), i, size, t0)
		want = append(want, upload(t, from, b, blobData(byte(i), size), t0.Add(time.Duration(i+1)*time.Hour)))
	}
	unfinished := newBlob("user0@example.org", 10, bigBlob, t0)
	createBlob(t, from, unfinished, noLimits)
	putPart(t, from, unfinished, blobData(10, bigBlob), 0, t0)
	expired := newBlob("user0@example.org", 11, smallBlob, t0)
	upload(t, from, expired, blobData(11, smallBlob), t0.Add(time.Minute))

	at := t0.Add(time.Minute)
	n, err := store.CopyBlobs(ctx, from.(store.BlobSource), to, at, nil)
	if err != nil || n != len(want) {
		t.Fatalf("CopyBlobs = %d, %v; want %d", n, err, len(want))
	}
	for i, b := range want {
		sameBlob(t, "copied blob", blobState(t, to, b, at), b, b.Size, true)
		if !bytes.Equal(readAll(t, to, b.ID, int(part), at), blobData(byte(i), b.Size)) {
			t.Fatalf("copied blob %d does not read back", i)
		}
	}
	for _, b := range []store.Blob{unfinished, expired} {
		_, err := to.BlobState(ctx, b.Owner, b.ID, t0)
		wantErr(t, "BlobState of a blob not copied", err, store.ErrUnknownBlob)
	}
	// Again: nothing changes.
	n, err = store.CopyBlobs(ctx, from.(store.BlobSource), to, at, nil)
	if err != nil || n != len(want) {
		t.Fatalf("CopyBlobs again = %d, %v; want %d", n, err, len(want))
	}
	wantUsage(t, to, "user0@example.org", at, smallBlob+2*part, 2)
}

// Parts written while the blob is finished change it before FinishBlob
// returns or never: a complete blob's content is fixed, each part whole.
func testBlobFinishWhilePutting(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	b := newBlob("alice@example.org", 1, bigBlob, t0)
	versions := make([][]byte, 4)
	for k := range versions {
		versions[k] = blobData(byte(k), b.Size)
	}
	createBlob(t, s, b, noLimits)
	for i := range parts(b.Size) {
		putPart(t, s, b, versions[0], i, t0)
	}
	var wg sync.WaitGroup
	started := make(chan struct{}, parts(b.Size))
	stop := make(chan struct{})
	errs := make(chan error, parts(b.Size))
	for i := range parts(b.Size) {
		wg.Go(func() {
			for k := 0; ; k++ {
				got, err := s.PutPart(ctx, b.Owner, b.ID, i, partOf(versions[1+k%3], i), t0)
				if err != nil {
					errs <- fmt.Errorf("PutPart(%d): %w", i, err)
					return
				}
				if k == 0 {
					started <- struct{}{}
				}
				select {
				case <-stop:
					return
				default:
				}
				if got.Complete && k > 0 {
					<-stop
					return
				}
			}
		})
	}
	for range parts(b.Size) {
		<-started
	}
	_, err := s.FinishBlob(ctx, b.Owner, b.ID, t0, b.Expires)
	wantErr(t, "FinishBlob", err, nil)
	first := readAll(t, s, b.ID, int(part), t0)
	close(stop)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if !bytes.Equal(readAll(t, s, b.ID, int(part), t0), first) {
		t.Fatal("a complete blob changed")
	}
	for i := range parts(b.Size) {
		whole := false
		for _, v := range versions {
			whole = whole || bytes.Equal(partOf(first, i), partOf(v, i))
		}
		if !whole {
			t.Fatalf("part %d of the complete blob is no part written", i)
		}
	}
}

// A blob being deleted reads whole, or not at all.
func testBlobDeleteWhileReading(t *testing.T, open Opener) {
	s := open(t, testLimits)
	ctx := t.Context()
	t0 := now()
	b := newBlob("alice@example.org", 1, bigBlob, t0)
	data := blobData(1, b.Size)
	upload(t, s, b, data, t0.Add(time.Hour))
	const readers = 4
	var wg sync.WaitGroup
	started := make(chan struct{}, readers)
	errs := make(chan error, readers)
	for r := range readers {
		wg.Go(func() {
			p := make([]byte, part)
			for k := 0; k < 10000; k++ {
				off := (int64(r)*part/3 + int64(k)*7919) % b.Size
				n, _, err := s.ReadBlob(ctx, b.ID, off, p, t0)
				if k == 0 {
					started <- struct{}{}
				}
				if errors.Is(err, store.ErrUnknownBlob) {
					return
				}
				if err != nil {
					errs <- err
					return
				}
				if int64(n) != min(part, b.Size-off) || !bytes.Equal(p[:n], data[off:off+int64(n)]) {
					errs <- fmt.Errorf("ReadBlob at %d while deleting read %d wrong bytes", off, n)
					return
				}
			}
		})
	}
	for range readers {
		<-started
	}
	if n, err := s.DeleteExpiredBlobs(ctx, t0.Add(time.Hour), 10); err != nil || n != 1 {
		t.Fatalf("DeleteExpiredBlobs = %d, %v", n, err)
	}
	_, _, err := s.ReadBlob(ctx, b.ID, 0, make([]byte, 10), t0)
	wantErr(t, "ReadBlob after the delete", err, store.ErrUnknownBlob)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
