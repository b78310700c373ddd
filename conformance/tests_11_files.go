package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// filesTests are the tests of section 11, files: uploads of padded blobs
// (blob-create, blob-put, blob-status, blob-finish), downloads (blob-get),
// and fed-blob-get in both directions with the suite as the peer.
var filesTests = []*Test{
	{ID: "11.6/1", Level: MUST, Summary: "blob-create of a padding bucket answers a 16-byte identifier; blob-status shows the new blob empty",
		Cite: "TODO",
		run:  test11_6_1_CreateBucket},
	{ID: "11.6/2", Level: MUST, Summary: "blob-create of a size that is not a padding bucket is bad_padding",
		Cite: "TODO",
		run:  test11_6_2_CreateNotBucket},
	{ID: "11.6/3", Level: MUST, Summary: "blob-create of a bucket above 5 GiB is limit_exceeded",
		Cite: "TODO",
		run:  test11_6_3_CreateTooLarge},
	{ID: "11.6/4", Level: MUST, Summary: "blob-create over the announced quota is quota_exceeded, unfinished blobs counted at full size",
		Cite: "TODO",
		run:  test11_6_4_Quota},
	{ID: "11.6/5", Level: MUST, Summary: "blob-create past the announced number of unfinished uploads is limit_exceeded; finishing one frees a place",
		Cite: "TODO",
		run:  test11_6_5_UnfinishedLimit},
	{ID: "11.6/6", Level: MUST, Summary: "blob-put of a part of the wrong length is bad_range",
		Cite: "TODO",
		run:  test11_6_6_PutWrongLength},
	{ID: "11.6/7", Level: MUST, Summary: "blob-put of a part index past the end of the blob is bad_range",
		Cite: "TODO",
		run:  test11_6_7_PutPastEnd},
	{ID: "11.6/8", Level: MUST, Summary: "blob-put, blob-status and blob-finish of another account's blob or of an unknown identifier are unknown_blob",
		Cite: "TODO",
		run:  test11_6_8_OtherAccountsBlob},
	{ID: "11.6/9", Level: MUST, Summary: "parts put out of order make the blob that was uploaded",
		Cite: "TODO",
		run:  test11_6_9_PartsOutOfOrder},
	{ID: "11.6/10", Level: MUST, Summary: "received is the durable prefix: after parts 0, 1 and 3, two parts, on every connection",
		Cite: "TODO",
		run:  test11_6_10_ReceivedPrefix},
	{ID: "11.6/11", Level: MUST, Summary: "a put to a complete blob changes nothing and answers received = size",
		Cite: "TODO",
		run:  test11_6_11_PutToComplete},
	{ID: "11.6/12", Level: MUST, Summary: "blob-finish with a part missing is blob_incomplete",
		Cite: "TODO",
		run:  test11_6_12_FinishIncomplete},
	{ID: "11.6/13", Level: MUST, Summary: "blob-finish is idempotent",
		Cite: "TODO",
		run:  test11_6_13_FinishIdempotent},
	{ID: "11.6/14", Level: MUST, Summary: "blob requests before authentication are unauthenticated",
		Cite: "TODO",
		run:  test11_6_14_Unauthenticated},
	{ID: "11.7/1", Level: MUST, Summary: "blob-get reads ranges of a finished blob, fewer bytes at its end, for any account of the server",
		Cite: "TODO",
		run:  test11_7_1_GetRanges},
	{ID: "11.7/2", Level: MUST, Summary: "blob-get at an offset at or past the blob's end is bad_range",
		Cite: "TODO",
		run:  test11_7_2_GetPastEnd},
	{ID: "11.7/3", Level: MUST, Summary: "blob-get of an unfinished blob or an unknown identifier is unknown_blob",
		Cite: "TODO",
		run:  test11_7_3_GetUnfinished},
	{ID: "11.7/4", Level: MUST, Summary: "blob-get of 0 bytes or more than 512 KiB is malformed",
		Cite: "TODO",
		run:  test11_7_4_GetLengthBounds},
	{ID: "11.8/1", Level: MUST, Summary: "fed-blob-get from the peer reads a blob a local account uploaded",
		Cite: "TODO",
		run:  test11_8_1_FedBlobGet, Needs: []Need{NeedPeer}},
	{ID: "11.8/2", Level: MUST, Summary: "fed-blob-get before fed-hello is peer_unauthenticated",
		Cite: "TODO",
		run:  test11_8_2_FedBlobGetBeforeHello, Needs: []Need{NeedPeer}},
	{ID: "11.8/3", Level: MUST, Summary: "blob-get of a blob of the peer's domain is fetched with fed-blob-get and its answer passed on",
		Cite: "TODO",
		run:  test11_8_3_RemoteBlobGet, Needs: []Need{NeedPeer}},
	{ID: "11.8/4", Level: MUST, Summary: "the peer's error to fed-blob-get reaches the client unchanged",
		Cite: "TODO",
		run:  test11_8_4_RemoteBlobGetError, Needs: []Need{NeedPeer}},
	{ID: "11.8/5", Level: MUST, Summary: "blob-get of a blob of an unreachable domain is unavailable with a retry-after value",
		Cite: "TODO",
		run:  test11_8_5_RemoteBlobGetUnavailable, Needs: []Need{NeedPeer}},
}

// Blob sizes of the tests: padding buckets (section 11.3).
var (
	// oneBlob is a bucket of one part.
	oneBlob = wire.PaddedBlobSize(600)
	// fourBlob is a bucket of four parts, the last one short.
	fourBlob = wire.PaddedBlobSize(3*wire.BlobPartSize + 1)
)

// Keys of server-info's limits (section 15.2) about blobs.
const (
	limitMaxBlob    = 11
	limitBlobQuota  = 12
	limitUnfinished = 15
)

// upload is a blob a test created.
type upload struct {
	a        *account
	id       []byte
	size     uint64
	data     []byte // the bytes the test uploads
	finished bool
}

// part returns the bytes of part i of u.
func (u *upload) part(i uint64) []byte {
	start := i * wire.BlobPartSize
	return u.data[start : start+wire.BlobPartLen(u.size, i)]
}

// createBlob creates a blob of size bytes with random content for a on c.
// When t ends the blob is uploaded and finished, if it is not, so that
// unfinished uploads do not pile up on the pool's accounts.
func (t *T) createBlob(c *conn, a *account, size uint64) *upload {
	var ok wire.BlobCreateOK
	t.do(c, &wire.BlobCreate{Size: size}, &ok)
	if len(ok.ID) != wire.BlobIDLen {
		t.Fatalf("blob-create-ok: identifier of %d bytes", len(ok.ID))
	}
	u := &upload{a: a, id: ok.ID, size: size, data: make([]byte, size)}
	rand.Read(u.data)
	a.blobBytes += size
	a.unfinished++
	t.Cleanup(func() { t.tidy(u) })
	return u
}

// tidy uploads what the server lacks of u and finishes it.
func (t *T) tidy(u *upload) {
	if u.finished {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(t.ctx), 30*time.Second)
	defer cancel()
	c, err := t.env.connect(ctx, u.a)
	if err != nil {
		return
	}
	defer c.close()
	var st wire.BlobStatusOK
	if c.request(ctx, &wire.BlobStatus{ID: u.id}, &st) != nil {
		return
	}
	if !st.Complete {
		for i := st.Received / wire.BlobPartSize; i < wire.BlobParts(u.size); i++ {
			if c.request(ctx, &wire.BlobPut{ID: u.id, Index: i, Data: u.part(i)}, &wire.BlobPutOK{}) != nil {
				return
			}
		}
	}
	if c.request(ctx, &wire.BlobFinish{ID: u.id}, &wire.BlobFinishOK{}) == nil {
		u.finished = true
		u.a.unfinished--
	}
}

// put uploads part i of u and returns the received value of the answer.
func (t *T) put(c *conn, u *upload, i uint64) uint64 {
	var ok wire.BlobPutOK
	t.do(c, &wire.BlobPut{ID: u.id, Index: i, Data: u.part(i)}, &ok)
	return ok.Received
}

// putAll uploads every part of u in order.
func (t *T) putAll(c *conn, u *upload) {
	for i := range wire.BlobParts(u.size) {
		t.put(c, u, i)
	}
}

// finish finishes u and returns the end of its retention.
func (t *T) finish(c *conn, u *upload) uint64 {
	var ok wire.BlobFinishOK
	t.do(c, &wire.BlobFinish{ID: u.id}, &ok)
	if !u.finished {
		u.finished = true
		u.a.unfinished--
	}
	return ok.Expires
}

// finishedBlob creates, uploads and finishes a blob of size bytes for a.
func (t *T) finishedBlob(c *conn, a *account, size uint64) *upload {
	u := t.createBlob(c, a, size)
	t.putAll(c, u)
	t.finish(c, u)
	return u
}

// status returns the blob-status of u.
func (t *T) status(c *conn, u *upload) wire.BlobStatusOK {
	var ok wire.BlobStatusOK
	t.do(c, &wire.BlobStatus{ID: u.id}, &ok)
	return ok
}

// blobAccount gives t an account of the pool whose blob quota no test
// filled.
func (t *T) blobAccount() *account { return t.accountsWhere(1, blobRoom)[0] }

// checkRange reads length bytes at offset of the blob (domain, id) with
// req (blob-get or fed-blob-get) on c and requires want (the blob's bytes)
// from offset, up to length of them.
func (t *T) checkRange(c *conn, req wire.Request, want []byte, offset, length uint64) {
	var ok wire.BlobGetOK
	t.do(c, req, &ok)
	end := min(offset+length, uint64(len(want)))
	if ok.Size != uint64(len(want)) {
		t.Fatalf("%T at %d, %d bytes: size %d, want %d", req, offset, length, ok.Size, len(want))
	}
	if !bytes.Equal(ok.Data, want[offset:end]) {
		t.Fatalf("%T at %d, %d bytes: %d bytes that are not the blob's bytes %d to %d", req, offset, length, len(ok.Data), offset, end)
	}
}

// blobGet is a blob-get of the server's own domain.
func (t *T) blobGet(id []byte, offset, length uint64) *wire.BlobGet {
	return &wire.BlobGet{Domain: t.env.c.Domain, ID: id, Offset: offset, Length: length}
}

// test11_6_1_CreateBucket checks 11.6/1: blob-create of a padding bucket answers a 16-byte identifier; blob-status shows the new blob empty.
func test11_6_1_CreateBucket(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	before := uint64(time.Now().Add(-time.Minute).UnixMilli())
	seen := map[string]bool{}
	for _, size := range []uint64{wire.MinBlobSize, oneBlob, fourBlob} {
		u := t.createBlob(c, a, size)
		if seen[string(u.id)] {
			t.Fatalf("blob-create answered the identifier %x twice", u.id)
		}
		seen[string(u.id)] = true
		st := t.status(c, u)
		if st.Size != size || st.Received != 0 || st.Complete || st.Expires < before {
			t.Fatalf("blob-status of a new blob of %d bytes: %+v", size, st)
		}
	}
}

// test11_6_2_CreateNotBucket checks 11.6/2: blob-create of a size that is not a padding bucket is bad_padding.
func test11_6_2_CreateNotBucket(t *T) {
	c := t.connect(t.blobAccount())
	for _, size := range []uint64{1, wire.MinBlobSize - 1, wire.MinBlobSize + 1, oneBlob - 1, oneBlob + 1, fourBlob + 1, largestBucket(wire.MaxBlobSize) - 1} {
		t.expectErr(c, &wire.BlobCreate{Size: size}, wire.CodeBadPadding)
	}
}

// largestBucket returns the largest padding bucket of at most n bytes (n
// at least MinBlobSize).
func largestBucket(n uint64) uint64 {
	best := uint64(wire.MinBlobSize)
	for b := best; b != 0 && b <= n; b = wire.PaddedBlobSize(b + 1) {
		best = b
	}
	return best
}

// bucketAbove returns floor(1.05^k) for the smallest k at which it exceeds
// n: the first size of the padding sequence above n.
func bucketAbove(n uint64) uint64 {
	num, den, q := big.NewInt(1), big.NewInt(1), new(big.Int)
	for {
		if q.Quo(num, den); q.Uint64() > n {
			return q.Uint64()
		}
		num.Mul(num, big.NewInt(21))
		den.Mul(den, big.NewInt(20))
	}
}

// test11_6_3_CreateTooLarge checks 11.6/3: blob-create of a bucket above 5 GiB is limit_exceeded.
func test11_6_3_CreateTooLarge(t *T) {
	c := t.connect(t.blobAccount())
	t.expectErr(c, &wire.BlobCreate{Size: bucketAbove(wire.MaxBlobSize)}, wire.CodeLimitExceeded)
}

// test11_6_4_Quota checks 11.6/4: blob-create over the announced quota is quota_exceeded, unfinished blobs counted at full size.
func test11_6_4_Quota(t *T) {
	quota, ok := t.env.limit(limitBlobQuota)
	if !ok {
		t.Skipf("the server announces no blob quota (server-info limits key %d)", limitBlobQuota)
	}
	maxBlob := uint64(wire.MaxBlobSize)
	if v, ok := t.env.limit(limitMaxBlob); ok {
		maxBlob = min(maxBlob, v)
	}
	unfinished, ok := t.env.limit(limitUnfinished)
	if !ok {
		unfinished = wire.MaxUnfinished
	}
	big := largestBucket(maxBlob)
	a := t.blobAccount()
	// The creates that fit, then one that does not.
	if a.blobBytes > quota {
		t.Fatalf("the suite's blobs of %s (%d bytes) exceed the announced quota %d", a.address, a.blobBytes, quota)
	}
	fit := (quota - a.blobBytes) / big
	if fit+1+uint64(a.unfinished) > unfinished {
		t.Skipf("the quota of %d bytes takes %d unfinished uploads of %d bytes to fill, the server allows %d", quota, fit+1, big, unfinished)
	}
	c := t.connect(a)
	a.quotaFull = true // whatever happens next: nothing deletes a blob
	for i := range fit {
		var ok wire.BlobCreateOK
		if err := c.request(t.ctx, &wire.BlobCreate{Size: big}, &ok); err != nil {
			t.Fatalf("blob-create %d of %d bytes, with %d of %d bytes of quota used: %v", i+1, big, a.blobBytes, quota, err)
		}
		a.blobBytes += big
		a.unfinished++
	}
	t.expectErr(c, &wire.BlobCreate{Size: big}, wire.CodeQuotaExceeded)
	// What is left still fits.
	if left := quota - a.blobBytes; left >= wire.MinBlobSize && uint64(a.unfinished)+2 <= unfinished {
		size := largestBucket(left)
		var ok wire.BlobCreateOK
		if err := c.request(t.ctx, &wire.BlobCreate{Size: size}, &ok); err != nil {
			t.Fatalf("blob-create of %d bytes with %d of %d bytes of quota left: %v", size, left, quota, err)
		}
		a.blobBytes += size
		a.unfinished++
		t.expectErr(c, &wire.BlobCreate{Size: wire.PaddedBlobSize(quota - a.blobBytes + 1)}, wire.CodeQuotaExceeded)
	}
}

// test11_6_5_UnfinishedLimit checks 11.6/5: blob-create past the announced number of unfinished uploads is limit_exceeded; finishing one frees a place.
func test11_6_5_UnfinishedLimit(t *T) {
	limit, ok := t.env.limit(limitUnfinished)
	if !ok {
		t.Skipf("the server announces no limit of unfinished uploads (server-info limits key %d)", limitUnfinished)
	}
	if limit > 256 {
		t.Skipf("the server allows %d unfinished uploads; the suite tests at most 256", limit)
	}
	a := t.blobAccount()
	if quota, ok := t.env.limit(limitBlobQuota); ok && a.blobBytes+(limit+1)*wire.MinBlobSize > quota {
		t.Skipf("the blob quota of %s is too full to test the limit of unfinished uploads", a.address)
	}
	c := t.connect(a)
	var ups []*upload
	for uint64(a.unfinished) < limit {
		ups = append(ups, t.createBlob(c, a, wire.MinBlobSize))
	}
	t.expectErr(c, &wire.BlobCreate{Size: wire.MinBlobSize}, wire.CodeLimitExceeded)
	if len(ups) == 0 {
		t.Fatalf("%s had %d unfinished uploads of the suite", a.address, a.unfinished)
	}
	t.putAll(c, ups[0])
	t.finish(c, ups[0])
	t.createBlob(c, a, wire.MinBlobSize)
}

// test11_6_6_PutWrongLength checks 11.6/6: blob-put of a part of the wrong length is bad_range.
func test11_6_6_PutWrongLength(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, fourBlob)
	last := wire.BlobParts(fourBlob) - 1
	lastLen := wire.BlobPartLen(fourBlob, last)
	for _, p := range []struct{ index, n uint64 }{{0, 1000}, {0, wire.BlobPartSize - 1}, {1, lastLen}, {last, lastLen - 1}, {last, lastLen + 1}, {last, wire.BlobPartSize}} {
		t.expectErr(c, &wire.BlobPut{ID: u.id, Index: p.index, Data: make([]byte, p.n)}, wire.CodeBadRange)
	}
	if st := t.status(c, u); st.Received != 0 {
		t.Fatalf("after refused puts, received %d", st.Received)
	}
}

// test11_6_7_PutPastEnd checks 11.6/7: blob-put of a part index past the end of the blob is bad_range.
func test11_6_7_PutPastEnd(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, oneBlob)
	for _, i := range []uint64{1, 2, 1 << 32, 1<<64 - 1} {
		t.expectErr(c, &wire.BlobPut{ID: u.id, Index: i, Data: make([]byte, oneBlob)}, wire.CodeBadRange)
	}
}

// test11_6_8_OtherAccountsBlob checks 11.6/8: blob-put, blob-status and blob-finish of another account's blob or of an unknown identifier are unknown_blob.
func test11_6_8_OtherAccountsBlob(t *T) {
	as := t.accountsWhere(2, blobRoom)
	owner, other := t.connect(as[0]), t.connect(as[1])
	u := t.createBlob(owner, as[0], oneBlob)
	done := t.createBlob(owner, as[0], oneBlob)
	t.putAll(owner, done)
	for _, id := range [][]byte{u.id, randomID()} {
		t.expectErr(other, &wire.BlobPut{ID: id, Index: 0, Data: u.part(0)}, wire.CodeUnknownBlob)
		t.expectErr(other, &wire.BlobStatus{ID: id}, wire.CodeUnknownBlob)
		t.expectErr(other, &wire.BlobFinish{ID: id}, wire.CodeUnknownBlob)
	}
	t.expectErr(other, &wire.BlobFinish{ID: done.id}, wire.CodeUnknownBlob)
	if st := t.status(owner, u); st.Received != 0 {
		t.Fatalf("another account's put was kept: received %d", st.Received)
	}
	if st := t.status(owner, done); !st.Complete {
		t.Fatalf("blob-status after every part: %+v", st)
	}
	t.expectErr(owner, t.blobGet(done.id, 0, 1), wire.CodeUnknownBlob) // another account's finish did nothing
}

// test11_6_9_PartsOutOfOrder checks 11.6/9: parts put out of order make the blob that was uploaded.
func test11_6_9_PartsOutOfOrder(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, fourBlob)
	for _, i := range []uint64{3, 1, 2} {
		if got := t.put(c, u, i); got != 0 {
			t.Fatalf("put of part %d without part 0: received %d, want 0", i, got)
		}
	}
	if got := t.put(c, u, 0); got != fourBlob {
		t.Fatalf("put of the last missing part: received %d, want %d", got, fourBlob)
	}
	t.finish(c, u)
	for off := uint64(0); off < u.size; off += wire.BlobPartSize {
		t.checkRange(c, t.blobGet(u.id, off, wire.BlobPartSize), u.data, off, wire.BlobPartSize)
	}
}

// test11_6_10_ReceivedPrefix checks 11.6/10: received is the durable prefix: after parts 0, 1 and 3, two parts, on every connection.
func test11_6_10_ReceivedPrefix(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, fourBlob)
	want := []uint64{wire.BlobPartSize, 2 * wire.BlobPartSize, 2 * wire.BlobPartSize}
	for k, i := range []uint64{0, 1, 3} {
		if got := t.put(c, u, i); got != want[k] {
			t.Fatalf("put of part %d after parts %v: received %d, want %d", i, []uint64{0, 1, 3}[:k], got, want[k])
		}
	}
	for _, cc := range []*conn{c, t.connect(a)} {
		if st := t.status(cc, u); st.Size != fourBlob || st.Received != 2*wire.BlobPartSize || st.Complete {
			t.Fatalf("blob-status after parts 0, 1 and 3: %+v, want size %d, received %d, not complete", st, fourBlob, 2*wire.BlobPartSize)
		}
	}
	if got := t.put(c, u, 2); got != fourBlob {
		t.Fatalf("put of part 2 after parts 0, 1 and 3: received %d, want %d", got, fourBlob)
	}
	if st := t.status(t.connect(a), u); st.Received != fourBlob || !st.Complete {
		t.Fatalf("blob-status after every part: %+v", st)
	}
}

// test11_6_11_PutToComplete checks 11.6/11: a put to a complete blob changes nothing and answers received = size.
func test11_6_11_PutToComplete(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, fourBlob)
	t.putAll(c, u)
	other := make([]byte, wire.BlobPartSize)
	rand.Read(other)
	var ok wire.BlobPutOK
	t.do(c, &wire.BlobPut{ID: u.id, Index: 0, Data: other}, &ok)
	if ok.Received != fourBlob {
		t.Fatalf("put to a complete blob: received %d, want %d", ok.Received, fourBlob)
	}
	t.finish(c, u)
	t.do(c, &wire.BlobPut{ID: u.id, Index: 1, Data: other}, &ok)
	if ok.Received != fourBlob {
		t.Fatalf("put to a finished blob: received %d, want %d", ok.Received, fourBlob)
	}
	t.checkRange(c, t.blobGet(u.id, 0, wire.BlobPartSize), u.data, 0, wire.BlobPartSize)
	t.checkRange(c, t.blobGet(u.id, wire.BlobPartSize, wire.BlobPartSize), u.data, wire.BlobPartSize, wire.BlobPartSize)
}

// test11_6_12_FinishIncomplete checks 11.6/12: blob-finish with a part missing is blob_incomplete.
func test11_6_12_FinishIncomplete(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, fourBlob)
	t.expectErr(c, &wire.BlobFinish{ID: u.id}, wire.CodeBlobIncomplete)
	for _, i := range []uint64{0, 1, 3} {
		t.put(c, u, i)
	}
	t.expectErr(c, &wire.BlobFinish{ID: u.id}, wire.CodeBlobIncomplete)
	t.expectErr(c, t.blobGet(u.id, 0, 1), wire.CodeUnknownBlob)
}

// test11_6_13_FinishIdempotent checks 11.6/13: blob-finish is idempotent.
func test11_6_13_FinishIdempotent(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, oneBlob)
	t.putAll(c, u)
	first := t.finish(c, u)
	if first < uint64(time.Now().UnixMilli()) {
		t.Fatalf("blob-finish-ok: retention ends at %d, in the past", first)
	}
	if again := t.finish(t.connect(a), u); again != first {
		t.Fatalf("a second blob-finish: retention ends at %d, the first said %d", again, first)
	}
	if st := t.status(c, u); !st.Complete || st.Expires != first {
		t.Fatalf("blob-status after blob-finish: %+v, want complete, expires %d", st, first)
	}
	t.checkRange(c, t.blobGet(u.id, 0, wire.BlobPartSize), u.data, 0, wire.BlobPartSize)
}

// test11_6_14_Unauthenticated checks 11.6/14: blob requests before authentication are unauthenticated.
func test11_6_14_Unauthenticated(t *T) {
	c := t.dial()
	id := randomID()
	for _, r := range []wire.Request{
		&wire.BlobCreate{Size: wire.MinBlobSize},
		&wire.BlobPut{ID: id, Index: 0, Data: make([]byte, wire.MinBlobSize)},
		&wire.BlobStatus{ID: id},
		&wire.BlobFinish{ID: id},
		t.blobGet(id, 0, 1),
	} {
		t.expectErr(c, r, wire.CodeUnauthenticated)
	}
}

// test11_7_1_GetRanges checks 11.7/1: blob-get reads ranges of a finished blob, fewer bytes at its end, for any account of the server.
func test11_7_1_GetRanges(t *T) {
	as := t.accountsWhere(2, blobRoom)
	c := t.connect(as[0])
	u := t.finishedBlob(c, as[0], fourBlob)
	for _, cc := range []*conn{c, t.connect(as[1])} {
		for _, r := range []struct{ off, n uint64 }{
			{0, wire.BlobPartSize}, {wire.BlobPartSize - 100, 1000}, {1, 1}, {3 * wire.BlobPartSize, wire.BlobPartSize},
			{fourBlob - 10, wire.BlobPartSize}, {fourBlob - 1, 1}, {fourBlob - 1000, 1000},
		} {
			t.checkRange(cc, t.blobGet(u.id, r.off, r.n), u.data, r.off, r.n)
		}
	}
}

// test11_7_2_GetPastEnd checks 11.7/2: blob-get at an offset at or past the blob's end is bad_range.
func test11_7_2_GetPastEnd(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.finishedBlob(c, a, oneBlob)
	for _, off := range []uint64{oneBlob, oneBlob + 1, 1 << 40, 1<<64 - 1} {
		t.expectErr(c, t.blobGet(u.id, off, 1), wire.CodeBadRange)
	}
}

// test11_7_3_GetUnfinished checks 11.7/3: blob-get of an unfinished blob or an unknown identifier is unknown_blob.
func test11_7_3_GetUnfinished(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	empty := t.createBlob(c, a, oneBlob)
	full := t.createBlob(c, a, oneBlob)
	t.putAll(c, full) // every part, not finished
	for _, id := range [][]byte{empty.id, full.id, randomID()} {
		t.expectErr(c, t.blobGet(id, 0, 1), wire.CodeUnknownBlob)
	}
}

// test11_7_4_GetLengthBounds checks 11.7/4: blob-get of 0 bytes or more than 512 KiB is malformed.
func test11_7_4_GetLengthBounds(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.finishedBlob(c, a, oneBlob)
	for _, n := range []uint64{0, wire.BlobPartSize + 1, 1<<64 - 1} {
		raw, err := wire.Marshal(map[uint64]any{0: uint64(wire.TypeBlobGet), 1: t.env.c.Domain, 2: u.id, 3: uint64(0), 4: n})
		t.must(err, "encode")
		t.expectRaw(c, frameOf(raw), wire.CodeMalformed)
	}
}

// test11_8_1_FedBlobGet checks 11.8/1: fed-blob-get from the peer reads a blob a local account uploaded.
func test11_8_1_FedBlobGet(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.finishedBlob(c, a, fourBlob)
	f := t.fedConn(t.env.peer.c.Domain)
	for _, r := range []struct{ off, n uint64 }{{0, wire.BlobPartSize}, {wire.BlobPartSize - 7, 100}, {fourBlob - 10, wire.BlobPartSize}} {
		t.checkRange(f, &wire.FedBlobGet{ID: u.id, Offset: r.off, Length: r.n}, u.data, r.off, r.n)
	}
	t.expectErr(f, &wire.FedBlobGet{ID: u.id, Offset: fourBlob, Length: 1}, wire.CodeBadRange)
	t.expectErr(f, &wire.FedBlobGet{ID: randomID(), Offset: 0, Length: 1}, wire.CodeUnknownBlob)
	open := t.createBlob(c, a, oneBlob)
	t.putAll(c, open)
	t.expectErr(f, &wire.FedBlobGet{ID: open.id, Offset: 0, Length: 1}, wire.CodeUnknownBlob)
}

// test11_8_2_FedBlobGetBeforeHello checks 11.8/2: fed-blob-get before fed-hello is peer_unauthenticated.
func test11_8_2_FedBlobGetBeforeHello(t *T) {
	a := t.blobAccount()
	u := t.finishedBlob(t.connect(a), a, oneBlob)
	t.expectErr(t.fedConn(""), &wire.FedBlobGet{ID: u.id, Offset: 0, Length: 1}, wire.CodePeerUnauthenticated)
}

// peerBlob gives the peer a finished blob of size random bytes and returns
// its identifier and bytes.
func (t *T) peerBlob(p *peer, size uint64) ([]byte, []byte) {
	id, data := randomID(), make([]byte, size)
	rand.Read(data)
	p.behave(func(p *peer) {
		if p.blobs == nil {
			p.blobs = map[string][]byte{}
		}
		p.blobs[string(id)] = data
	})
	return id, data
}

// test11_8_3_RemoteBlobGet checks 11.8/3: blob-get of a blob of the peer's domain is fetched with fed-blob-get and its answer passed on.
func test11_8_3_RemoteBlobGet(t *T) {
	p := t.usePeer()
	size := wire.PaddedBlobSize(wire.BlobPartSize + 1)
	id, data := t.peerBlob(p, size)
	c := t.connect(t.account())
	for _, r := range []struct{ off, n uint64 }{{0, wire.BlobPartSize}, {wire.BlobPartSize - 5, 100}, {size - 10, wire.BlobPartSize}} {
		from := p.mark()
		t.checkRange(c, &wire.BlobGet{Domain: p.c.Domain, ID: id, Offset: r.off, Length: r.n}, data, r.off, r.n)
		_, _, err := p.await(t.ctx, from, func(ev peerEvent) bool {
			g, ok := ev.req.(*wire.FedBlobGet)
			return ok && bytes.Equal(g.ID, id) && g.Offset == r.off && g.Length == r.n
		})
		t.must(err, fmt.Sprintf("fed-blob-get at %d, %d bytes, sent to the peer", r.off, r.n))
	}
}

// test11_8_4_RemoteBlobGetError checks 11.8/4: the peer's error to fed-blob-get reaches the client unchanged.
func test11_8_4_RemoteBlobGetError(t *T) {
	p := t.usePeer()
	id, _ := t.peerBlob(p, oneBlob)
	c := t.connect(t.account())
	t.expectErr(c, &wire.BlobGet{Domain: p.c.Domain, ID: randomID(), Offset: 0, Length: 1}, wire.CodeUnknownBlob)
	t.expectErr(c, &wire.BlobGet{Domain: p.c.Domain, ID: id, Offset: oneBlob, Length: 1}, wire.CodeBadRange)
	p.behave(func(p *peer) {
		p.onBlobGet = func(*wire.FedBlobGet) []byte {
			return wire.EncodeError(&wire.Error{Code: wire.CodeRateLimited, Message: "slow down", RetryAfter: 9 * time.Second})
		}
	})
	err := c.request(t.ctx, &wire.BlobGet{Domain: p.c.Domain, ID: id, Offset: 0, Length: 1}, &wire.BlobGetOK{})
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeRateLimited || pe.RetryAfter != 9*time.Second {
		t.Fatalf("got %v, want rate_limited with retry-after 9s", err)
	}
}

// test11_8_5_RemoteBlobGetUnavailable checks 11.8/5: blob-get of a blob of an unreachable domain is unavailable with a retry-after value.
func test11_8_5_RemoteBlobGetUnavailable(t *T) {
	p := t.usePeer()
	p.setUnreachable(true)
	err := t.connect(t.account()).request(t.ctx, &wire.BlobGet{Domain: p.c.Domain, ID: randomID(), Offset: 0, Length: 1}, &wire.BlobGetOK{})
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeUnavailable || pe.RetryAfter <= 0 {
		t.Fatalf("got %v, want unavailable with a retry-after value", err)
	}
}
