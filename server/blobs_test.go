package server_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// blobClient is an authenticated wire-level connection for the blob
// requests of spec/11-files.md, safe for concurrent requests.
type blobClient struct {
	t   *testing.T
	r   *servertest.Raw
	ctx context.Context
}

// newBlobClient registers address on s and returns its connection.
func newBlobClient(t *testing.T, s *servertest.Server, address string) *blobClient {
	t.Helper()
	r := servertest.Dial(t, s)
	if err := r.Register(servertest.NewDevice(t, address), nil); err != nil {
		t.Fatalf("register %s: %v", address, err)
	}
	return &blobClient{t: t, r: r, ctx: servertest.Context(t)}
}

// do sends one request and decodes its response into resp.
func (c *blobClient) do(req wire.Request, resp any) error {
	return wire.RoundTrip(c.ctx, c.r.QC, req, resp)
}

func (c *blobClient) create(size uint64) []byte {
	c.t.Helper()
	var ok wire.BlobCreateOK
	if err := c.do(&wire.BlobCreate{Size: size}, &ok); err != nil {
		c.t.Fatalf("blob-create %d: %v", size, err)
	}
	if len(ok.ID) != wire.BlobIDLen {
		c.t.Fatalf("blob identifier of %d bytes", len(ok.ID))
	}
	return ok.ID
}

func (c *blobClient) put(id []byte, index uint64, data []byte) (uint64, error) {
	var ok wire.BlobPutOK
	err := c.do(&wire.BlobPut{ID: id, Index: index, Data: data}, &ok)
	return ok.Received, err
}

func (c *blobClient) mustPut(id []byte, blob []byte, index uint64) uint64 {
	c.t.Helper()
	got, err := c.put(id, index, part(blob, index))
	if err != nil {
		c.t.Fatalf("blob-put part %d: %v", index, err)
	}
	return got
}

func (c *blobClient) status(id []byte) (wire.BlobStatusOK, error) {
	var ok wire.BlobStatusOK
	err := c.do(&wire.BlobStatus{ID: id}, &ok)
	return ok, err
}

func (c *blobClient) finish(id []byte) (uint64, error) {
	var ok wire.BlobFinishOK
	err := c.do(&wire.BlobFinish{ID: id}, &ok)
	return ok.Expires, err
}

func (c *blobClient) get(domain string, id []byte, off, length uint64) (wire.BlobGetOK, error) {
	var ok wire.BlobGetOK
	err := c.do(&wire.BlobGet{Domain: domain, ID: id, Offset: off, Length: length}, &ok)
	return ok, err
}

// upload creates, uploads and finishes blob and returns its identifier.
func (c *blobClient) upload(blob []byte) []byte {
	c.t.Helper()
	id := c.create(uint64(len(blob)))
	for i := range wire.BlobParts(uint64(len(blob))) {
		c.mustPut(id, blob, i)
	}
	if _, err := c.finish(id); err != nil {
		c.t.Fatalf("blob-finish: %v", err)
	}
	return id
}

// download reads the whole blob id of domain part by part.
func (c *blobClient) download(domain string, id []byte) []byte {
	c.t.Helper()
	var out []byte
	for {
		ok, err := c.get(domain, id, uint64(len(out)), wire.BlobPartSize)
		if err != nil {
			c.t.Fatalf("blob-get at %d: %v", len(out), err)
		}
		out = append(out, ok.Data...)
		if uint64(len(out)) >= ok.Size {
			return out
		}
		if len(ok.Data) == 0 {
			c.t.Fatalf("blob-get at %d of %d returned no bytes", len(out), ok.Size)
		}
	}
}

// randomBlob returns random bytes of the padding bucket of about n bytes.
func randomBlob(n uint64) []byte {
	b := make([]byte, wire.PaddedBlobSize(n))
	rand.Read(b)
	return b
}

// part returns part index of blob.
func part(blob []byte, index uint64) []byte {
	off := index * wire.BlobPartSize
	return blob[off : off+wire.BlobPartLen(uint64(len(blob)), index)]
}

// prefix returns the durable prefix of a blob of size bytes with the parts
// in have: the bytes of parts 0.. up to the first missing one.
func prefix(size uint64, have map[uint64]bool) uint64 {
	var n uint64
	for i := uint64(0); have[i]; i++ {
		n += wire.BlobPartLen(size, i)
	}
	return n
}

// A blob uploaded, finished and read back on one server, by its owner and
// by another account (a blob identifier is a capability).
func TestBlobUploadFinishGet(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice := newBlobClient(t, s, "alice@a.test")
	bob := newBlobClient(t, s, "bob@a.test")
	blob := randomBlob(2*wire.BlobPartSize + 1000) // three parts, the last short
	size := uint64(len(blob))
	if wire.BlobParts(size) != 3 {
		t.Fatalf("blob of %d bytes has %d parts, want 3", size, wire.BlobParts(size))
	}
	before := time.Now().Truncate(time.Millisecond) // expiries are Unix milliseconds
	var created wire.BlobCreateOK
	if err := alice.do(&wire.BlobCreate{Size: size}, &created); err != nil {
		t.Fatal(err)
	}
	id := created.ID
	if exp := time.UnixMilli(int64(created.Expires)); exp.Before(before.Add(server.DefaultUploadLifetime)) || exp.After(time.Now().Add(server.DefaultUploadLifetime)) {
		t.Errorf("unfinished blob expires %v, want 24 h after its creation", exp)
	}
	for i := range uint64(3) {
		if got, want := alice.mustPut(id, blob, i), prefix(size, map[uint64]bool{0: true, 1: i >= 1, 2: i >= 2}); got != want {
			t.Errorf("part %d: received %d, want %d", i, got, want)
		}
	}
	st, err := alice.status(id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != size || st.Received != size || st.Complete {
		t.Errorf("status before finish: %+v, want size and received %d, not complete", st, size)
	}
	// Not readable before it is finished, not even by its owner.
	_, err = alice.get("a.test", id, 0, 100)
	servertest.MustCode(t, err, wire.CodeUnknownBlob)

	exp, err := alice.finish(id)
	if err != nil {
		t.Fatal(err)
	}
	if e := time.UnixMilli(int64(exp)); e.Before(before.Add(server.DefaultBlobRetention)) || e.After(time.Now().Add(server.DefaultBlobRetention)) {
		t.Errorf("finished blob expires %v, want 30 days after finishing", e)
	}
	if again, err := alice.finish(id); err != nil || again != exp {
		t.Errorf("finish again: %d, %v; want the same expiry %d", again, err, exp)
	}
	if st, err := alice.status(id); err != nil || !st.Complete || st.Expires != exp {
		t.Errorf("status after finish: %+v, %v", st, err)
	}
	// A put to a complete blob writes nothing and answers its size.
	zeros := make([]byte, wire.BlobPartSize)
	if got, err := alice.put(id, 0, zeros); err != nil || got != size {
		t.Errorf("put to a complete blob: %d, %v; want %d", got, err, size)
	}
	if got := bob.download("a.test", id); !bytes.Equal(got, blob) {
		t.Fatal("another account read different bytes")
	}
	if got := alice.download("a.test", id); !bytes.Equal(got, blob) {
		t.Fatal("the owner read different bytes")
	}
	// A range across the end gives what is left; any offset inside works.
	ok, err := bob.get("a.test", id, size-10, 100)
	if err != nil || ok.Size != size || !bytes.Equal(ok.Data, blob[size-10:]) {
		t.Errorf("range across the end: %d bytes, size %d, %v", len(ok.Data), ok.Size, err)
	}
	ok, err = bob.get("a.test", id, 12345, 1)
	if err != nil || !bytes.Equal(ok.Data, blob[12345:12346]) {
		t.Errorf("one byte at 12345: %x, %v", ok.Data, err)
	}
}

// Parts arrive in any order and concurrently, on several connections of
// the account; received is always the durable prefix.
func TestBlobPartsOutOfOrderConcurrent(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	d := servertest.NewDevice(t, "alice@a.test")
	r := servertest.Dial(t, s)
	if err := r.Register(d, nil); err != nil {
		t.Fatal(err)
	}
	alice := &blobClient{t: t, r: r, ctx: servertest.Context(t)}
	r2 := servertest.Dial(t, s)
	if err := r2.Authenticate(d); err != nil {
		t.Fatal(err)
	}
	alice2 := &blobClient{t: t, r: r2, ctx: servertest.Context(t)}

	blob := randomBlob(7*wire.BlobPartSize + 3000)
	size := uint64(len(blob))
	n := wire.BlobParts(size)
	id := alice.create(size)
	// The last part first, then the first: received stays at the prefix.
	if got := alice.mustPut(id, blob, n-1); got != 0 {
		t.Errorf("last part alone: received %d, want 0", got)
	}
	if got := alice.mustPut(id, blob, 0); got != wire.BlobPartSize {
		t.Errorf("parts 0 and last: received %d, want %d", got, wire.BlobPartSize)
	}
	// The rest concurrently, in random order, over both connections,
	// each part twice (a part written again is replaced).
	order := mrand.Perm(int(n - 2))
	var wg sync.WaitGroup
	errs := make(chan error, 2*len(order))
	for k, p := range append(order, order...) {
		c := alice
		if k%2 == 1 {
			c = alice2
		}
		index := uint64(p + 1)
		wg.Go(func() {
			got, err := c.put(id, index, part(blob, index))
			switch {
			case err != nil:
				errs <- fmt.Errorf("part %d: %w", index, err)
			case got < wire.BlobPartSize || got > size:
				errs <- fmt.Errorf("part %d: received %d, outside [%d, %d]", index, got, wire.BlobPartSize, size)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	st, err := alice2.status(id)
	if err != nil || st.Received != size {
		t.Fatalf("status: %+v, %v; want all %d bytes received", st, err, size)
	}
	if _, err := alice2.finish(id); err != nil {
		t.Fatal(err)
	}
	if got := alice.download("a.test", id); !bytes.Equal(got, blob) {
		t.Fatal("the blob read back differs")
	}
}

// An interrupted upload resumes from blob-status on a new connection:
// the client sends every part from received on.
func TestBlobResume(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	d := servertest.NewDevice(t, "alice@a.test")
	r := servertest.Dial(t, s)
	if err := r.Register(d, nil); err != nil {
		t.Fatal(err)
	}
	first := &blobClient{t: t, r: r, ctx: servertest.Context(t)}
	blob := randomBlob(4*wire.BlobPartSize + 10)
	size := uint64(len(blob))
	id := first.create(size)
	first.mustPut(id, blob, 0)
	first.mustPut(id, blob, 1)
	first.mustPut(id, blob, 3) // sent, but after the gap
	r.QC.CloseWithError(0, "interrupted")

	r2 := servertest.Dial(t, s)
	if err := r2.Authenticate(d); err != nil {
		t.Fatal(err)
	}
	second := &blobClient{t: t, r: r2, ctx: servertest.Context(t)}
	st, err := second.status(id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Size != size || st.Received != 2*wire.BlobPartSize || st.Complete {
		t.Fatalf("status after the interruption: %+v, want received %d", st, 2*wire.BlobPartSize)
	}
	_, err = second.finish(id)
	servertest.MustCode(t, err, wire.CodeBlobIncomplete)
	for i := st.Received / wire.BlobPartSize; i < wire.BlobParts(size); i++ {
		second.mustPut(id, blob, i)
	}
	if _, err := second.finish(id); err != nil {
		t.Fatal(err)
	}
	if got := second.download("a.test", id); !bytes.Equal(got, blob) {
		t.Fatal("the resumed blob differs")
	}
}

// Every refusal of the blob requests, with its code.
func TestBlobErrors(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice := newBlobClient(t, s, "alice@a.test")
	bob := newBlobClient(t, s, "bob@a.test")
	size := wire.PaddedBlobSize(wire.BlobPartSize + 100) // two parts
	blob := randomBlob(size)
	unknown := servertest.RandomID()

	// Before authentication nothing is answered.
	anon := servertest.Dial(t, s)
	servertest.MustCode(t, anon.Request(&wire.BlobCreate{Size: size}, &wire.BlobCreateOK{}), wire.CodeUnauthenticated)

	for _, c := range []struct {
		name string
		size uint64
		code wire.Code
	}{
		{"not a bucket", size + 1, wire.CodeBadPadding},
		{"below the smallest blob", wire.MinBlobSize - 1, wire.CodeBadPadding},
		{"above 5 GiB", wire.MaxBlobSize + 1, wire.CodeLimitExceeded},
		{"far above 5 GiB", 1 << 62, wire.CodeLimitExceeded},
		{"zero", 0, wire.CodeMalformed},
	} {
		err := alice.do(&wire.BlobCreate{Size: c.size}, &wire.BlobCreateOK{})
		var pe *wire.Error
		if !errors.As(err, &pe) || pe.Code != c.code {
			t.Errorf("blob-create %s (%d): %v, want %s", c.name, c.size, err, c.code)
		}
	}

	id := alice.create(size)
	for _, c := range []struct {
		name  string
		id    []byte
		index uint64
		data  []byte
		code  wire.Code
	}{
		{"short first part", id, 0, blob[:wire.BlobPartSize-1], wire.CodeBadRange},
		{"long last part", id, 1, blob[:wire.BlobPartLen(size, 1)+1], wire.CodeBadRange},
		{"index past the end", id, 2, blob[:100], wire.CodeBadRange},
		{"index far past the end", id, 1 << 63, blob[:100], wire.CodeBadRange},
		{"unknown blob", unknown, 0, part(blob, 0), wire.CodeUnknownBlob},
	} {
		_, err := alice.put(c.id, c.index, c.data)
		var pe *wire.Error
		if !errors.As(err, &pe) || pe.Code != c.code {
			t.Errorf("blob-put %s: %v, want %s", c.name, err, c.code)
		}
	}
	// Another account's blob is unknown to every request of its own.
	_, err := bob.put(id, 0, part(blob, 0))
	servertest.MustCode(t, err, wire.CodeUnknownBlob)
	_, err = bob.status(id)
	servertest.MustCode(t, err, wire.CodeUnknownBlob)
	_, err = bob.finish(id)
	servertest.MustCode(t, err, wire.CodeUnknownBlob)
	_, err = alice.status(unknown)
	servertest.MustCode(t, err, wire.CodeUnknownBlob)
	_, err = alice.finish(unknown)
	servertest.MustCode(t, err, wire.CodeUnknownBlob)

	alice.mustPut(id, blob, 1)
	_, err = alice.finish(id)
	servertest.MustCode(t, err, wire.CodeBlobIncomplete)
	_, err = alice.get("a.test", id, 0, 10)
	servertest.MustCode(t, err, wire.CodeUnknownBlob) // unfinished
	alice.mustPut(id, blob, 0)
	if _, err := alice.finish(id); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name        string
		id          []byte
		off, length uint64
		code        wire.Code
	}{
		{"offset at the end", id, size, 10, wire.CodeBadRange},
		{"offset far past the end", id, 1 << 63, 10, wire.CodeBadRange},
		{"unknown blob", unknown, 0, 10, wire.CodeUnknownBlob},
		{"length 0", id, 0, 0, wire.CodeMalformed},
		{"length above a part", id, 0, wire.BlobPartSize + 1, wire.CodeMalformed},
	} {
		_, err := bob.get("a.test", c.id, c.off, c.length)
		var pe *wire.Error
		if !errors.As(err, &pe) || pe.Code != c.code {
			t.Errorf("blob-get %s: %v, want %s", c.name, err, c.code)
		}
	}
	_, err = bob.get("A.test", id, 0, 10)
	servertest.MustCode(t, err, wire.CodeInvalidAddress)
}

// The quota counts unfinished blobs at their full size, and the unfinished
// uploads of an account are bounded; finishing one frees a slot.
func TestBlobQuotaAndUnfinishedLimit(t *testing.T) {
	t.Parallel()
	small := wire.PaddedBlobSize(1000)
	large := wire.PaddedBlobSize(3 * wire.BlobPartSize)
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{
		MaxUnfinished: 2, BlobQuota: int64(large + large/2)}})
	alice := newBlobClient(t, s, "alice@a.test")
	first := alice.create(small)
	alice.create(small)
	err := alice.do(&wire.BlobCreate{Size: small}, &wire.BlobCreateOK{})
	servertest.MustCode(t, err, wire.CodeLimitExceeded)
	blob := randomBlob(small)
	alice.mustPut(first, blob, 0)
	if _, err := alice.finish(first); err != nil {
		t.Fatal(err)
	}
	alice.create(small) // a slot is free again

	bob := newBlobClient(t, s, "bob@a.test")
	id := bob.create(large) // nothing uploaded yet: counted at full size
	err = bob.do(&wire.BlobCreate{Size: large}, &wire.BlobCreateOK{})
	servertest.MustCode(t, err, wire.CodeQuotaExceeded)
	if st, err := bob.status(id); err != nil || st.Received != 0 {
		t.Fatalf("status: %+v, %v", st, err)
	}
	bob.create(small) // what is left of the quota

	// Without either limit (the operator's none), neither applies.
	free := servertest.Start(t, servertest.Options{Limits: server.Limits{MaxUnfinished: -1, BlobQuota: -1}})
	carol := newBlobClient(t, free, "carol@a.test")
	const largest = 5_319_713_863 // the largest padding bucket of at most 5 GiB
	if wire.PaddedBlobSize(largest) != largest || wire.PaddedBlobSize(largest+1) != 0 {
		t.Fatalf("%d is not the largest bucket", largest)
	}
	for range wire.MaxUnfinished + 1 {
		carol.create(largest)
	}
}

// The sweeper deletes blobs once they expired: an unfinished upload after
// the upload lifetime, a finished blob after the retention. Both are
// unknown as soon as they expired, before the sweep. On the embedded store
// their files go too.
func TestBlobSweeper(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		testBlobSweeper(t, "")
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		testBlobSweeper(t, servertest.PostgresURL(t))
	})
}

func testBlobSweeper(t *testing.T, db string) {
	if db != "" {
		if err := daemon.Migrate(servertest.Context(t), db); err != nil {
			t.Fatal(err)
		}
	}
	clock := servertest.NewClock(time.Now())
	s := servertest.Start(t, servertest.Options{Now: clock.Now, BlobSweep: 20 * time.Millisecond, DB: db})
	alice := newBlobClient(t, s, "alice@a.test")
	blob := randomBlob(5000)
	done := alice.upload(blob)
	pending := alice.create(uint64(len(blob)))
	alice.mustPut(pending, blob, 0)
	// The embedded store keeps each blob in DATA/blobs/<2 hex>/<32 hex>.
	files := func(id []byte) string {
		h := hex.EncodeToString(id)
		return filepath.Join(s.Data, "blobs", h[:2], h)
	}
	onDisk := db == ""
	for _, id := range [][]byte{done, pending} {
		if _, err := os.Stat(files(id)); onDisk && err != nil {
			t.Fatalf("blob file: %v", err)
		}
	}

	clock.Advance(server.DefaultUploadLifetime + time.Minute)
	_, err := alice.status(pending)
	servertest.MustCode(t, err, wire.CodeUnknownBlob)
	_, err = alice.put(pending, 0, blob)
	servertest.MustCode(t, err, wire.CodeUnknownBlob)
	waitSwept(t, s, 1)
	if _, err := os.Stat(files(pending)); onDisk && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data of the swept upload is still there: %v", err)
	}
	if got := alice.download("a.test", done); !bytes.Equal(got, blob) {
		t.Fatal("the finished blob went with the unfinished one")
	}

	clock.Advance(server.DefaultBlobRetention)
	_, err = alice.get("a.test", done, 0, 10)
	servertest.MustCode(t, err, wire.CodeUnknownBlob)
	waitSwept(t, s, 2)
	if _, err := os.Stat(files(done)); onDisk && !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the data of the expired blob is still there: %v", err)
	}
	// What the log says of blobs is counts only.
	if logs := string(s.Logs()); strings.Contains(logs, hex.EncodeToString(done)) {
		t.Error("the log names a blob")
	}
}

// waitSwept waits until the server's log reports n blobs deleted in all.
func waitSwept(t *testing.T, s *servertest.Server, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		total := 0
		for line := range strings.Lines(string(s.Logs())) {
			var k int
			if i := strings.Index(line, `msg="blob sweep" deleted=`); i >= 0 {
				fmt.Sscanf(line[i+len(`msg="blob sweep" deleted=`):], "%d", &k)
				total += k
			}
		}
		if total >= n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sweeper deleted %d blobs, want %d; log:\n%s", total, n, s.Logs())
		}
		time.Sleep(10 * time.Millisecond) // polling the condition, with a deadline
	}
}

// Two processes sharing one PostgreSQL database, each with a data
// directory of its own, serve the same blobs: parts uploaded through
// either, read through the other.
func TestBlobsOnSharedPostgres(t *testing.T) {
	t.Parallel()
	db := servertest.PostgresURL(t)
	if err := daemon.Migrate(servertest.Context(t), db); err != nil {
		t.Fatal(err)
	}
	s1 := servertest.Start(t, servertest.Options{DB: db})
	s2 := servertest.Start(t, servertest.Options{DB: db, Data: t.TempDir(), CADir: s1.CADir()})
	d := servertest.NewDevice(t, "alice@a.test")
	r1 := servertest.Dial(t, s1)
	if err := r1.Register(d, nil); err != nil {
		t.Fatal(err)
	}
	r2 := servertest.Dial(t, s2)
	if err := r2.Authenticate(d); err != nil {
		t.Fatal(err)
	}
	on1 := &blobClient{t: t, r: r1, ctx: servertest.Context(t)}
	on2 := &blobClient{t: t, r: r2, ctx: servertest.Context(t)}
	blob := randomBlob(2*wire.BlobPartSize + 9)
	id := on1.create(uint64(len(blob)))
	on2.mustPut(id, blob, 2)
	on1.mustPut(id, blob, 0)
	if got := on2.mustPut(id, blob, 1); got != uint64(len(blob)) {
		t.Fatalf("received %d after every part, want %d", got, len(blob))
	}
	if _, err := on1.finish(id); err != nil {
		t.Fatal(err)
	}
	bob := newBlobClient(t, s2, "bob@a.test")
	if got := bob.download("a.test", id); !bytes.Equal(got, blob) {
		t.Fatal("the blob read through the other process differs")
	}
}

// Many concurrent blob-gets of whole parts on one connection, more than
// the connection's budget of response bytes holds at once, all get their
// bytes: the excess waits for budget instead of being held in memory.
func TestBlobGetsWithinBudget(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice := newBlobClient(t, s, "alice@a.test")
	blob := randomBlob(4 * wire.BlobPartSize)
	id := alice.upload(blob)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for k := range 32 {
		off := uint64(k%4) * wire.BlobPartSize
		wg.Go(func() {
			ok, err := alice.get("a.test", id, off, wire.BlobPartSize)
			if err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(ok.Data, blob[off:min(off+wire.BlobPartSize, uint64(len(blob)))]) {
				errs <- fmt.Errorf("wrong bytes at %d", off)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// More blob-puts in flight on one connection than its frame budget holds
// at once all complete: the excess waits for budget without keeping the
// admitted parts from arriving (the connection's flow-control window
// holds every waiting stream's first bytes and more).
func TestBlobPutsBeyondBudget(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice := newBlobClient(t, s, "alice@a.test")
	blob := randomBlob(24 * wire.BlobPartSize)
	size := uint64(len(blob))
	id := alice.create(size)
	var wg sync.WaitGroup
	errs := make(chan error, wire.BlobParts(size))
	for i := range wire.BlobParts(size) {
		wg.Go(func() {
			if _, err := alice.put(id, i, part(blob, i)); err != nil {
				errs <- fmt.Errorf("part %d: %w", i, err)
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if st, err := alice.status(id); err != nil || st.Received != size {
		t.Fatalf("status: %+v, %v; want every byte received", st, err)
	}
}
