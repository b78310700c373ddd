package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// filesTests are the tests of section 11, files: uploads of padded blobs
// (blob-create, blob-put, blob-status, blob-finish), reads (blob-get), and
// fed-blob-get in both directions with the suite as the peer.
var filesTests = []*Test{
	{ID: "11.6/1", Level: MUST, Summary: "received is the durable prefix: after parts 0, 1 and 3 of four, two parts, on every connection",
		Cite: "The received value that a server answers for a blob MUST be the length of the blob's durable prefix.",
		run:  test11_6_1_ReceivedPrefix},
	{ID: "11.6.1/1", Level: MUST, Summary: "blob-create of a padding bucket answers a new 16-byte identifier and the end of the upload lifetime",
		Cite: "Then the server MUST create an unfinished blob of S bytes with a new identifier of 16 bytes, and answer blob-create-ok with the identifier and the blob's expiry time.",
		run:  test11_6_1_1_CreateBucket},
	{ID: "11.6.1/2", Level: MUST, Summary: "blob-create above the maximum blob size is limit_exceeded, before the bucket check",
		Cite: "S is at most the server's maximum blob size (limits key 11: 5 GiB by default, section 11.8), else limit_exceeded (21).",
		run:  test11_6_1_2_CreateTooLarge},
	{ID: "11.6.1/3", Level: MUST, Summary: "blob-create of a size that is not a padding bucket is bad_padding",
		Cite: "S is a padding bucket (section 11.3), else bad_padding (19).",
		run:  test11_6_1_3_CreateNotBucket},
	{ID: "11.6.1/4", Level: MUST, Summary: "blob-create over the announced quota is quota_exceeded, unfinished blobs counted at full size",
		Cite: "The account's unexpired blobs, unfinished ones counted at their full size, plus S, are at most the account's quota (limits key 12: 10 GiB by default), else quota_exceeded (31).",
		run:  test11_6_1_4_Quota},
	{ID: "11.6.1/5", Level: MUST, Summary: "blob-create past the announced number of unfinished uploads is limit_exceeded; finishing one frees a place",
		Cite: "The account has fewer unfinished, unexpired blobs than its limit (limits key 15: 8 by default), else limit_exceeded (21).",
		run:  test11_6_1_5_UnfinishedLimit},
	{ID: "11.6.2/1", Level: MUST, Summary: "blob-put to another account's blob or an unknown identifier is unknown_blob and writes nothing",
		Cite: "The blob is not unknown (as defined above), else unknown_blob (32).",
		run:  test11_6_2_1_PutUnknown},
	{ID: "11.6.2/2", Level: MUST, Summary: "blob-put to a finished blob writes nothing and answers received = size, whatever the index and data",
		Cite: "The blob is not finished; for a finished blob the server writes nothing and answers blob-put-ok with received equal to the blob's size, whatever the part index and data.",
		run:  test11_6_2_2_PutToFinished},
	{ID: "11.6.2/3", Level: MUST, Summary: "blob-put of a part index past the end of the blob is bad_range",
		Cite: "The part index is below the blob's number of parts, else bad_range (33).",
		run:  test11_6_2_3_PutPastEnd},
	{ID: "11.6.2/4", Level: MUST, Summary: "blob-put of a part of the wrong length is bad_range",
		Cite: "The data is exactly as long as that part (524,288 bytes, or for the last part the rest of the blob), else bad_range (33).",
		run:  test11_6_2_4_PutWrongLength},
	{ID: "11.6.2/5", Level: MUST, Summary: "parts put in order are written at their offsets, each answer counting the part",
		Cite: "Then the server MUST write the data at the part's offset, replacing any earlier data of that part, and answer blob-put-ok with the blob's received value after the write.",
		run:  test11_6_2_5_PutInOrder},
	{ID: "11.6.2/6", Level: MUST, Summary: "parts put out of order, and at once on several connections, make the blob that was uploaded",
		Cite: "A server MUST accept the parts of a blob in any order, and several blob-put requests of one blob at once, on one connection or several.",
		run:  test11_6_2_6_PartsAnyOrder},
	{ID: "11.6.3/1", Level: MUST, Summary: "blob-status of another account's blob or an unknown identifier is unknown_blob",
		Cite: "If the blob is unknown, the answer MUST be unknown_blob (32).",
		run:  test11_6_3_1_StatusUnknown},
	{ID: "11.6.3/2", Level: MUST, Summary: "blob-status answers the size, received, finished and expiry of the blob, unfinished and finished",
		Cite: "Otherwise the server MUST answer blob-status-ok with the blob's size, its received value, whether it is finished, and when it expires",
		run:  test11_6_3_2_Status},
	{ID: "11.6.4/1", Level: MUST, Summary: "blob-finish of another account's blob or an unknown identifier is unknown_blob",
		Cite: "The blob is not unknown, else unknown_blob (32).",
		run:  test11_6_4_1_FinishUnknown},
	{ID: "11.6.4/2", Level: MUST, Summary: "blob-finish with a part missing is blob_incomplete and leaves the blob unreadable",
		Cite: "Every part of the blob is on stable storage (its received value equals its size), else blob_incomplete (34); nothing changes.",
		run:  test11_6_4_2_FinishIncomplete},
	{ID: "11.6.4/3", Level: MUST, Summary: "a second blob-finish answers the expiry time of the first",
		Cite: "If the blob is already finished, nothing changes, and the server MUST answer blob-finish-ok with the expiry time that the first blob-finish set.",
		run:  test11_6_4_3_FinishIdempotent},
	{ID: "11.6.4/4", Level: MUST, Summary: "blob-finish answers the end of the announced retention",
		Cite: "Otherwise the server MUST make the blob finished and answer blob-finish-ok with its new expiry time: the current time plus the blob retention (limits key 13: 30 days by default).",
		run:  test11_6_4_4_FinishRetention},
	{ID: "11.6.4/5", Level: MUST, Summary: "a blob-get that follows the blob-finish answer, on another connection, finds the blob",
		Cite: "A blob-get of the blob that arrives after the answer MUST find it finished.",
		run:  test11_6_4_5_ReadableAfterFinish},
	{ID: "11.7.1/1", Level: MUST, Summary: "blob-get reads ranges of a finished blob, fewer bytes at its end, with the blob's size",
		Cite: "otherwise blob-get-ok with the min(length, S − offset) bytes of the blob from the offset, and S",
		run:  test11_7_1_1_GetRanges},
	{ID: "11.7.1/2", Level: MUST, Summary: "blob-get at an offset at or past the blob's end is bad_range",
		Cite: "bad_range (33) when the offset is not below S",
		run:  test11_7_1_2_GetPastEnd},
	{ID: "11.7.1/3", Level: MUST, Summary: "blob-get of an unfinished blob or an unknown identifier is unknown_blob",
		Cite: "unknown_blob (32) when no blob of its domain has the identifier, the blob is unfinished, or it has expired",
		run:  test11_7_1_3_GetUnfinished},
	{ID: "11.7.1/4", Level: MUST, Summary: "blob-get serves a finished blob to another account of the server",
		Cite: "A server MUST serve a finished blob of its own domain to every authenticated client that asks for it, whatever the account that uploaded it.",
		run:  test11_7_1_4_GetAnyAccount},
	{ID: "11.7.1/5", Level: MUST, Summary: "blob-get naming a domain not in normal form is invalid_address",
		Cite: "a value that is not a valid domain in normal form (section 4.1) MUST get invalid_address (6) (section 1.8)",
		run:  test11_7_1_5_GetInvalidDomain},
	{ID: "11.7.1/6", Level: MUST, Summary: "blob-get of a blob of the peer's domain sends fed-blob-get with the id, offset and length only, and passes the answer on",
		Cite: "otherwise sends fed-blob-get (section 11.7.2) with the request's blob identifier, offset and length to the domain's server, on its established connection to that domain (dialling one if it has none, section 8.5); nothing about the client is added",
		run:  test11_7_1_6_RemoteGet, Needs: []Need{NeedPeer}},
	{ID: "11.7.1/7", Level: MUST, Summary: "the peer's error to fed-blob-get reaches the client unchanged, retry-after included",
		Cite: "returns the peer's response to the client unchanged, success or error, retry-after included",
		run:  test11_7_1_7_RemoteGetError, Needs: []Need{NeedPeer}},
	{ID: "11.7.1/8", Level: MUST, Summary: "blob-get of a blob of an unreachable domain is unavailable with a retry-after value",
		Cite: "the homeserver MUST answer unavailable (23) with a retry-after value",
		run:  test11_7_1_8_RemoteGetUnavailable, Needs: []Need{NeedPeer}},
	{ID: "11.7.1/9", Level: MUST, Summary: "a peer answer with more or fewer bytes than the range, or a size that is no bucket, is unavailable",
		Cite: "The homeserver MUST answer such a response with unavailable (23) to the client",
		run:  test11_7_1_9_RemoteGetInvalidAnswer, Needs: []Need{NeedPeer}},
	{ID: "11.7.2/1", Level: MUST, Summary: "fed-blob-get from the peer reads ranges of a blob a local account uploaded",
		Cite: "the range rule of section 11.7.1: bad_range (33) when the offset is not below the blob's size, otherwise blob-get-ok with the bytes and the size",
		run:  test11_7_2_1_FedGet, Needs: []Need{NeedPeer}},
	{ID: "11.7.2/2", Level: MUST, Summary: "fed-blob-get before fed-hello is peer_unauthenticated",
		Cite: "a request before fed-hello succeeded gets peer_unauthenticated (26)",
		run:  test11_7_2_2_FedGetBeforeHello, Needs: []Need{NeedPeer}},
	{ID: "11.7.2/3", Level: MUST, Summary: "fed-blob-get of an unfinished blob or an unknown identifier is unknown_blob",
		Cite: "the blob: unknown_blob (32) when no blob of the listener's domain has the identifier, the blob is unfinished, or it has expired",
		run:  test11_7_2_3_FedGetUnknown, Needs: []Need{NeedPeer}},
	{ID: "11.8/1", Level: MUST, Summary: "server-info announces the maximum blob size, the retention and the upload lifetime",
		Cite: "A server that offers files MUST announce in server-info (section 15.2) key 11, the maximum blob size in bytes, key 13, the retention of a finished blob in seconds, and key 14, the lifetime of an unfinished upload in seconds.",
		run:  test11_8_1_AnnouncedLimits},
	{ID: "11.8/2", Level: MUST, Summary: "the announced blob retention is not shorter than the mailbox retention",
		Cite: "A server MUST NOT announce a blob retention (key 13) shorter than its mailbox retention (key 7).",
		run:  test11_8_2_RetentionAtLeastMailbox},
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
	limitMaxBlob        = 11
	limitBlobQuota      = 12
	limitBlobRetention  = 13
	limitUploadLifetime = 14
	limitUnfinished     = 15
)

// upload is a blob a test created.
type upload struct {
	a        *account
	id       []byte
	size     uint64
	data     []byte // the bytes the test uploads
	expires  uint64 // blob-create-ok's
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
	u := &upload{a: a, id: ok.ID, size: size, data: make([]byte, size), expires: ok.Expires}
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

// checkRange sends req, a blob-get or fed-blob-get of the range (offset,
// length) of a blob whose bytes are want, on c, and requires the bytes of
// the range (fewer at the blob's end) and the blob's size.
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

// maxBlob is the maximum blob size the server announces (key 11), at most
// 5 GiB.
func (t *T) maxBlob() uint64 {
	if v, ok := t.env.limit(limitMaxBlob); ok {
		return min(v, wire.MaxBlobSize)
	}
	return wire.MaxBlobSize
}

// clockSlack is how far the server's clock and the suite's may disagree
// when a test checks an expiry time that the server states.
const clockSlack = 5 * time.Minute

// checkExpiry requires expires (Unix ms) to be lifetime after a moment
// between before and after, within clockSlack.
func (t *T) checkExpiry(what string, expires uint64, before, after time.Time, lifetime time.Duration) {
	lo, hi := before.Add(lifetime-clockSlack), after.Add(lifetime+clockSlack)
	if got := time.UnixMilli(int64(expires)); got.Before(lo) || got.After(hi) {
		t.Fatalf("%s: expires %s, want %s after now (%s)", what, got.UTC().Format(time.RFC3339), lifetime, after.UTC().Format(time.RFC3339))
	}
}

// announced returns the limit of key in seconds as a duration, or def.
func (t *T) announced(key uint64, def time.Duration) time.Duration {
	if v, ok := t.env.limit(key); ok {
		return time.Duration(v) * time.Second
	}
	return def
}

// test11_6_1_ReceivedPrefix checks 11.6/1: received is the durable prefix: after parts 0, 1 and 3 of four, two parts, on every connection.
func test11_6_1_ReceivedPrefix(t *T) {
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
			t.Fatalf("blob-status after parts 0, 1 and 3: %+v, want size %d, received %d, not finished", st, fourBlob, 2*wire.BlobPartSize)
		}
	}
	if got := t.put(c, u, 2); got != fourBlob {
		t.Fatalf("put of part 2 after parts 0, 1 and 3: received %d, want %d", got, fourBlob)
	}
	if st := t.status(t.connect(a), u); st.Received != fourBlob || st.Complete {
		t.Fatalf("blob-status after every part, before blob-finish: %+v, want received %d, not finished", st, fourBlob)
	}
}

// test11_6_1_1_CreateBucket checks 11.6.1/1: blob-create of a padding bucket answers a new 16-byte identifier and the end of the upload lifetime.
func test11_6_1_1_CreateBucket(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	lifetime := t.announced(limitUploadLifetime, wire.UploadLifetime*time.Second)
	seen := map[string]bool{}
	for _, size := range []uint64{wire.MinBlobSize, oneBlob, fourBlob} {
		before := time.Now()
		u := t.createBlob(c, a, size) // checks the identifier's length
		t.checkExpiry(fmt.Sprintf("blob-create-ok of %d bytes", size), u.expires, before, time.Now(), lifetime)
		if seen[string(u.id)] {
			t.Fatalf("blob-create answered the identifier %x twice", u.id)
		}
		seen[string(u.id)] = true
		if st := t.status(c, u); st.Size != size || st.Received != 0 || st.Complete {
			t.Fatalf("blob-status of a new blob of %d bytes: %+v", size, st)
		}
	}
}

// test11_6_1_2_CreateTooLarge checks 11.6.1/2: blob-create above the maximum blob size is limit_exceeded, before the bucket check.
func test11_6_1_2_CreateTooLarge(t *T) {
	c := t.connect(t.blobAccount())
	for _, size := range []uint64{bucketAbove(t.maxBlob()), t.maxBlob() + 1, wire.MaxBlobSize + 1, 1<<64 - 1} {
		t.expectErr(c, &wire.BlobCreate{Size: size}, wire.CodeLimitExceeded)
	}
}

// test11_6_1_3_CreateNotBucket checks 11.6.1/3: blob-create of a size that is not a padding bucket is bad_padding.
func test11_6_1_3_CreateNotBucket(t *T) {
	c := t.connect(t.blobAccount())
	top := largestBucket(t.maxBlob())
	for _, size := range []uint64{1, wire.MinBlobSize - 1, wire.MinBlobSize + 1, oneBlob - 1, oneBlob + 1, fourBlob - 1, fourBlob + 1, top - 1} {
		t.expectErr(c, &wire.BlobCreate{Size: size}, wire.CodeBadPadding)
	}
}

// test11_6_1_4_Quota checks 11.6.1/4: blob-create over the announced quota is quota_exceeded, unfinished blobs counted at full size.
func test11_6_1_4_Quota(t *T) {
	quota, ok := t.env.limit(limitBlobQuota)
	if !ok {
		t.Skipf("the server announces no blob quota (server-info limits key %d)", limitBlobQuota)
	}
	unfinished, ok := t.env.limit(limitUnfinished)
	if !ok {
		unfinished = 1 << 20
	}
	big := largestBucket(t.maxBlob())
	a := t.blobAccount()
	if a.blobBytes > quota {
		t.Fatalf("the suite's blobs of %s (%d bytes) exceed the announced quota %d", a.address, a.blobBytes, quota)
	}
	// fit unfinished blobs of the largest size fit, one more does not;
	// then what is left is filled, and one more byte does not fit.
	fit := (quota - a.blobBytes) / big
	if uint64(a.unfinished)+fit+2 > unfinished {
		t.Skipf("filling the quota of %d bytes takes %d unfinished uploads of %d bytes; the server allows %d", quota, fit+2, big, unfinished)
	}
	c := t.connect(a)
	a.quotaFull = true // whatever happens next: no request deletes a blob
	create := func(size uint64) {
		if err := c.request(t.ctx, &wire.BlobCreate{Size: size}, &wire.BlobCreateOK{}); err != nil {
			t.Fatalf("blob-create of %d bytes with %d of %d bytes of quota used: %v", size, a.blobBytes, quota, err)
		}
		a.blobBytes += size
		a.unfinished++
	}
	for range fit {
		create(big)
	}
	t.expectErr(c, &wire.BlobCreate{Size: big}, wire.CodeQuotaExceeded)
	if left := quota - a.blobBytes; left >= wire.MinBlobSize {
		create(largestBucket(left))
		t.expectErr(c, &wire.BlobCreate{Size: wire.PaddedBlobSize(quota - a.blobBytes + 1)}, wire.CodeQuotaExceeded)
	}
}

// test11_6_1_5_UnfinishedLimit checks 11.6.1/5: blob-create past the announced number of unfinished uploads is limit_exceeded; finishing one frees a place.
func test11_6_1_5_UnfinishedLimit(t *T) {
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

// unknownBlobs returns a blob of account b (unfinished, with part 0 put)
// and an identifier no blob has: what the requests of another account than
// b must find unknown.
func (t *T) unknownBlobs(b *account) [][]byte {
	c := t.connect(b)
	u := t.createBlob(c, b, fourBlob)
	t.put(c, u, 0)
	t.Cleanup(func() {
		// The other account's requests changed nothing.
		var st wire.BlobStatusOK
		if err := c.request(t.ctx, &wire.BlobStatus{ID: u.id}, &st); err != nil || st.Received != wire.BlobPartSize || st.Complete {
			t.Errorf("the owner's blob-status after another account's requests: %+v, %v", st, err)
		}
	})
	return [][]byte{u.id, randomID()}
}

// test11_6_2_1_PutUnknown checks 11.6.2/1: blob-put to another account's blob or an unknown identifier is unknown_blob and writes nothing.
func test11_6_2_1_PutUnknown(t *T) {
	as := t.accountsWhere(2, blobRoom)
	c := t.connect(as[0])
	for _, id := range t.unknownBlobs(as[1]) {
		for _, i := range []uint64{0, 1} {
			t.expectErr(c, &wire.BlobPut{ID: id, Index: i, Data: make([]byte, wire.BlobPartSize)}, wire.CodeUnknownBlob)
		}
	}
}

// test11_6_2_2_PutToFinished checks 11.6.2/2: blob-put to a finished blob writes nothing and answers received = size, whatever the index and data.
func test11_6_2_2_PutToFinished(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.finishedBlob(c, a, fourBlob)
	other := make([]byte, wire.BlobPartSize)
	rand.Read(other)
	for _, p := range []struct {
		index uint64
		data  []byte
	}{{0, other}, {1, other}, {3, other[:100]}, {99, other}} {
		var ok wire.BlobPutOK
		t.do(c, &wire.BlobPut{ID: u.id, Index: p.index, Data: p.data}, &ok)
		if ok.Received != fourBlob {
			t.Fatalf("put of %d bytes at part %d of a finished blob: received %d, want %d", len(p.data), p.index, ok.Received, fourBlob)
		}
	}
	for off := uint64(0); off < u.size; off += wire.BlobPartSize {
		t.checkRange(c, t.blobGet(u.id, off, wire.BlobPartSize), u.data, off, wire.BlobPartSize)
	}
}

// test11_6_2_3_PutPastEnd checks 11.6.2/3: blob-put of a part index past the end of the blob is bad_range.
func test11_6_2_3_PutPastEnd(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, oneBlob)
	for _, i := range []uint64{1, 2, 1 << 32, 1<<64 - 1} {
		t.expectErr(c, &wire.BlobPut{ID: u.id, Index: i, Data: make([]byte, oneBlob)}, wire.CodeBadRange)
	}
	if st := t.status(c, u); st.Received != 0 {
		t.Fatalf("after refused puts, received %d", st.Received)
	}
}

// test11_6_2_4_PutWrongLength checks 11.6.2/4: blob-put of a part of the wrong length is bad_range.
func test11_6_2_4_PutWrongLength(t *T) {
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

// test11_6_2_5_PutInOrder checks 11.6.2/5: parts put in order are written at their offsets, each answer counting the part.
func test11_6_2_5_PutInOrder(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, fourBlob)
	for i := range wire.BlobParts(fourBlob) {
		if got, want := t.put(c, u, i), min((i+1)*wire.BlobPartSize, fourBlob); got != want {
			t.Fatalf("put of part %d in order: received %d, want %d", i, got, want)
		}
	}
	t.finish(c, u)
	for off := uint64(0); off < u.size; off += wire.BlobPartSize {
		t.checkRange(c, t.blobGet(u.id, off, wire.BlobPartSize), u.data, off, wire.BlobPartSize)
	}
}

// test11_6_2_6_PartsAnyOrder checks 11.6.2/6: parts put out of order, and at once on several connections, make the blob that was uploaded.
func test11_6_2_6_PartsAnyOrder(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, fourBlob)
	if got := t.put(c, u, 3); got != 0 {
		t.Fatalf("put of part 3 alone: received %d, want 0", got)
	}
	// Parts 2 and 1 at once on two connections, then part 0.
	conns := []*conn{c, t.connect(a)}
	errs := make(chan error, 2)
	for k, i := range []uint64{2, 1} {
		go func() {
			var ok wire.BlobPutOK
			err := conns[k].request(t.ctx, &wire.BlobPut{ID: u.id, Index: i, Data: u.part(i)}, &ok)
			if err == nil && ok.Received != 0 {
				err = fmt.Errorf("received %d without part 0, want 0", ok.Received)
			}
			if err != nil {
				err = fmt.Errorf("put of part %d: %w", i, err)
			}
			errs <- err
		}()
	}
	for range 2 {
		if err := <-errs; err != nil {
			t.Fatalf("%v", err)
		}
	}
	if got := t.put(c, u, 0); got != fourBlob {
		t.Fatalf("put of part 0 after parts 3, 2 and 1: received %d, want %d", got, fourBlob)
	}
	t.finish(c, u)
	for off := uint64(0); off < u.size; off += wire.BlobPartSize {
		t.checkRange(c, t.blobGet(u.id, off, wire.BlobPartSize), u.data, off, wire.BlobPartSize)
	}
}

// test11_6_3_1_StatusUnknown checks 11.6.3/1: blob-status of another account's blob or an unknown identifier is unknown_blob.
func test11_6_3_1_StatusUnknown(t *T) {
	as := t.accountsWhere(2, blobRoom)
	c := t.connect(as[0])
	for _, id := range t.unknownBlobs(as[1]) {
		t.expectErr(c, &wire.BlobStatus{ID: id}, wire.CodeUnknownBlob)
	}
}

// test11_6_3_2_Status checks 11.6.3/2: blob-status answers the size, received, finished and expiry of the blob, unfinished and finished.
func test11_6_3_2_Status(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, fourBlob)
	want := wire.BlobStatusOK{Size: fourBlob, Expires: u.expires}
	check := func(when string) {
		if st := t.status(c, u); st.Size != want.Size || st.Received != want.Received || st.Complete != want.Complete || st.Expires != want.Expires {
			t.Fatalf("blob-status %s: %+v, want %+v", when, st, want)
		}
	}
	check("of a new blob")
	t.put(c, u, 1)
	check("after part 1")
	t.put(c, u, 0)
	want.Received = 2 * wire.BlobPartSize
	check("after parts 1 and 0")
	t.put(c, u, 2)
	t.put(c, u, 3)
	want.Received = fourBlob
	check("after every part")
	want.Expires, want.Complete = t.finish(c, u), true
	check("after blob-finish")
}

// test11_6_4_1_FinishUnknown checks 11.6.4/1: blob-finish of another account's blob or an unknown identifier is unknown_blob.
func test11_6_4_1_FinishUnknown(t *T) {
	as := t.accountsWhere(2, blobRoom)
	c := t.connect(as[0])
	for _, id := range t.unknownBlobs(as[1]) {
		t.expectErr(c, &wire.BlobFinish{ID: id}, wire.CodeUnknownBlob)
	}
	// Also a complete blob of another account stays unfinished.
	bc := t.connect(as[1])
	u := t.createBlob(bc, as[1], oneBlob)
	t.putAll(bc, u)
	t.expectErr(c, &wire.BlobFinish{ID: u.id}, wire.CodeUnknownBlob)
	t.expectErr(bc, t.blobGet(u.id, 0, 1), wire.CodeUnknownBlob)
}

// test11_6_4_2_FinishIncomplete checks 11.6.4/2: blob-finish with a part missing is blob_incomplete and leaves the blob unreadable.
func test11_6_4_2_FinishIncomplete(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, fourBlob)
	t.expectErr(c, &wire.BlobFinish{ID: u.id}, wire.CodeBlobIncomplete)
	for _, i := range []uint64{0, 1, 3} {
		t.put(c, u, i)
	}
	t.expectErr(c, &wire.BlobFinish{ID: u.id}, wire.CodeBlobIncomplete)
	t.expectErr(c, t.blobGet(u.id, 0, 1), wire.CodeUnknownBlob)
	if st := t.status(c, u); st.Complete || st.Expires != u.expires {
		t.Fatalf("blob-status after a refused blob-finish: %+v, want unfinished, expires %d", st, u.expires)
	}
}

// test11_6_4_3_FinishIdempotent checks 11.6.4/3: a second blob-finish answers the expiry time of the first.
func test11_6_4_3_FinishIdempotent(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, oneBlob)
	t.putAll(c, u)
	first := t.finish(c, u)
	if again := t.finish(t.connect(a), u); again != first {
		t.Fatalf("a second blob-finish: expires %d, the first answered %d", again, first)
	}
	if st := t.status(c, u); !st.Complete || st.Expires != first {
		t.Fatalf("blob-status after two blob-finish: %+v, want finished, expires %d", st, first)
	}
	t.checkRange(c, t.blobGet(u.id, 0, wire.BlobPartSize), u.data, 0, wire.BlobPartSize)
}

// test11_6_4_4_FinishRetention checks 11.6.4/4: blob-finish answers the end of the announced retention.
func test11_6_4_4_FinishRetention(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.createBlob(c, a, oneBlob)
	t.putAll(c, u)
	before := time.Now()
	expires := t.finish(c, u)
	t.checkExpiry("blob-finish-ok", expires, before, time.Now(), t.announced(limitBlobRetention, wire.BlobRetention*time.Second))
}

// test11_6_4_5_ReadableAfterFinish checks 11.6.4/5: a blob-get that follows the blob-finish answer, on another connection, finds the blob.
func test11_6_4_5_ReadableAfterFinish(t *T) {
	as := t.accountsWhere(2, blobRoom)
	c, reader := t.connect(as[0]), t.connect(as[1])
	for range 3 {
		u := t.createBlob(c, as[0], oneBlob)
		t.putAll(c, u)
		t.finish(c, u)
		t.checkRange(reader, t.blobGet(u.id, 0, wire.BlobPartSize), u.data, 0, wire.BlobPartSize)
	}
}

// test11_7_1_1_GetRanges checks 11.7.1/1: blob-get reads ranges of a finished blob, fewer bytes at its end, with the blob's size.
func test11_7_1_1_GetRanges(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.finishedBlob(c, a, fourBlob)
	for _, r := range blobRanges(fourBlob) {
		t.checkRange(c, t.blobGet(u.id, r[0], r[1]), u.data, r[0], r[1])
	}
}

// blobRanges are ranges (offset, length) of a blob of size bytes (more
// than two parts): whole parts, ranges across a part boundary, and ranges
// that end at or run past the blob's end.
func blobRanges(size uint64) [][2]uint64 {
	return [][2]uint64{
		{0, wire.BlobPartSize}, {wire.BlobPartSize - 100, 1000}, {1, 1}, {wire.BlobPartSize + 7, wire.BlobPartSize},
		{size - 10, wire.BlobPartSize}, {size - 1, 1}, {size - 1000, 1000}, {size - 1, wire.BlobPartSize},
	}
}

// test11_7_1_2_GetPastEnd checks 11.7.1/2: blob-get at an offset at or past the blob's end is bad_range.
func test11_7_1_2_GetPastEnd(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.finishedBlob(c, a, oneBlob)
	for _, off := range []uint64{oneBlob, oneBlob + 1, 1 << 31, 1 << 40, 1<<64 - 1} {
		err := c.request(t.ctx, t.blobGet(u.id, off, wire.BlobPartSize), &wire.BlobGetOK{})
		t.wantCode(err, wire.CodeBadRange, fmt.Sprintf("blob-get at %d of a blob of %d bytes", off, oneBlob))
	}
}

// test11_7_1_3_GetUnfinished checks 11.7.1/3: blob-get of an unfinished blob or an unknown identifier is unknown_blob.
func test11_7_1_3_GetUnfinished(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	empty := t.createBlob(c, a, oneBlob)
	full := t.createBlob(c, a, oneBlob)
	t.putAll(c, full) // every part, not finished
	for _, id := range [][]byte{empty.id, full.id, randomID()} {
		t.expectErr(c, t.blobGet(id, 0, 1), wire.CodeUnknownBlob)
		t.expectErr(c, t.blobGet(id, oneBlob, 1), wire.CodeUnknownBlob) // unknown before the range
	}
}

// test11_7_1_4_GetAnyAccount checks 11.7.1/4: blob-get serves a finished blob to another account of the server.
func test11_7_1_4_GetAnyAccount(t *T) {
	as := t.accountsWhere(2, blobRoom)
	c := t.connect(as[0])
	u := t.finishedBlob(c, as[0], fourBlob)
	other := t.connect(as[1])
	for _, r := range blobRanges(fourBlob) {
		t.checkRange(other, t.blobGet(u.id, r[0], r[1]), u.data, r[0], r[1])
	}
}

// test11_7_1_5_GetInvalidDomain checks 11.7.1/5: blob-get naming a domain not in normal form is invalid_address.
func test11_7_1_5_GetInvalidDomain(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.finishedBlob(c, a, oneBlob)
	for _, d := range []string{strings.ToUpper(t.env.c.Domain), t.env.c.Domain + ".", "", "a..b"} {
		t.expectErr(c, &wire.BlobGet{Domain: d, ID: u.id, Offset: 0, Length: 1}, wire.CodeInvalidAddress)
	}
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

// remoteGet sends req, a blob-get for the peer's domain, and returns the
// answer. The server under test may still be waiting out its backoff after
// an earlier test closed or refused connections with the peer (section
// 8.9.3): unavailable is asked again after its retry-after time, within
// relayWait.
func (t *T) remoteGet(c *conn, req *wire.BlobGet) (*wire.BlobGetOK, error) {
	deadline := time.Now().Add(relayWait)
	for {
		var ok wire.BlobGetOK
		err := c.request(t.ctx, req, &ok)
		var pe *wire.Error
		if !errors.As(err, &pe) || pe.Code != wire.CodeUnavailable || time.Now().Add(pe.RetryAfter).After(deadline) {
			if err != nil {
				return nil, err
			}
			return &ok, nil
		}
		select {
		case <-time.After(max(pe.RetryAfter, 100*time.Millisecond)):
		case <-t.ctx.Done():
			return nil, t.ctx.Err()
		}
	}
}

// test11_7_1_6_RemoteGet checks 11.7.1/6: blob-get of a blob of the peer's domain sends fed-blob-get with the id, offset and length only, and passes the answer on.
func test11_7_1_6_RemoteGet(t *T) {
	p := t.usePeer()
	size := wire.PaddedBlobSize(2*wire.BlobPartSize + 1)
	id, data := t.peerBlob(p, size)
	c := t.connect(t.account())
	for _, r := range blobRanges(size) {
		from := p.mark()
		req := &wire.BlobGet{Domain: p.c.Domain, ID: id, Offset: r[0], Length: r[1]}
		ok, err := t.remoteGet(c, req)
		t.must(err, fmt.Sprintf("blob-get at %d, %d bytes", r[0], r[1]))
		if end := min(r[0]+r[1], size); ok.Size != size || !bytes.Equal(ok.Data, data[r[0]:end]) {
			t.Fatalf("blob-get at %d, %d bytes: size %d and %d bytes, not the peer's answer", r[0], r[1], ok.Size, len(ok.Data))
		}
		ev, _, err := p.await(t.ctx, from, func(ev peerEvent) bool {
			g, ok := ev.req.(*wire.FedBlobGet)
			return ok && bytes.Equal(g.ID, id) && g.Offset == r[0]
		})
		t.must(err, fmt.Sprintf("fed-blob-get at %d sent to the peer", r[0]))
		var m map[uint64]any
		t.must(decodeLoose(ev.raw, &m), "the fed-blob-get")
		if len(m) != 4 || ev.req.(*wire.FedBlobGet).Length != r[1] {
			t.Fatalf("the fed-blob-get at %d: keys %v, length %d, want keys 0 to 3, length %d", r[0], keysOf(m), ev.req.(*wire.FedBlobGet).Length, r[1])
		}
	}
}

// test11_7_1_7_RemoteGetError checks 11.7.1/7: the peer's error to fed-blob-get reaches the client unchanged, retry-after included.
func test11_7_1_7_RemoteGetError(t *T) {
	p := t.usePeer()
	id, _ := t.peerBlob(p, oneBlob)
	c := t.connect(t.account())
	_, err := t.remoteGet(c, &wire.BlobGet{Domain: p.c.Domain, ID: randomID(), Offset: 0, Length: 1})
	t.wantCode(err, wire.CodeUnknownBlob, "blob-get of a blob the peer does not have")
	_, err = t.remoteGet(c, &wire.BlobGet{Domain: p.c.Domain, ID: id, Offset: oneBlob, Length: 1})
	t.wantCode(err, wire.CodeBadRange, "blob-get past the end of the peer's blob")
	p.behave(func(p *peer) {
		p.onBlobGet = func(*wire.FedBlobGet) []byte {
			return wire.EncodeError(&wire.Error{Code: wire.CodeRateLimited, Message: "slow down", RetryAfter: 9 * time.Second})
		}
	})
	_, err = t.remoteGet(c, &wire.BlobGet{Domain: p.c.Domain, ID: id, Offset: 0, Length: 1})
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeRateLimited || pe.RetryAfter != 9*time.Second {
		t.Fatalf("got %v, want rate_limited with retry-after 9s", err)
	}
}

// test11_7_1_8_RemoteGetUnavailable checks 11.7.1/8: blob-get of a blob of an unreachable domain is unavailable with a retry-after value.
func test11_7_1_8_RemoteGetUnavailable(t *T) {
	p := t.usePeer()
	p.setUnreachable(true)
	err := t.connect(t.account()).request(t.ctx, &wire.BlobGet{Domain: p.c.Domain, ID: randomID(), Offset: 0, Length: 1}, &wire.BlobGetOK{})
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeUnavailable || pe.RetryAfter <= 0 {
		t.Fatalf("got %v, want unavailable with a retry-after value", err)
	}
}

// test11_7_1_9_RemoteGetInvalidAnswer checks 11.7.1/9: a peer answer with more or fewer bytes than the range, or a size that is no bucket, is unavailable.
func test11_7_1_9_RemoteGetInvalidAnswer(t *T) {
	p := t.usePeer()
	c := t.connect(t.account())
	size := fourBlob
	for _, bad := range []struct {
		what         string
		length, size uint64 // asked; stated
		n            int    // bytes answered
	}{
		{"one byte more than asked", 100, size, 101},
		{"one byte less than asked, not at the end", 100, size, 99},
		{"a size that is not a padding bucket", 100, size + 1, 100},
		{"fewer bytes than the rest of the blob at its end", wire.BlobPartSize, size, int(wire.BlobPartLen(size, 3)) - 1},
	} {
		p.behave(func(p *peer) {
			p.onBlobGet = func(*wire.FedBlobGet) []byte {
				f, _ := wire.EncodeSuccess(&wire.BlobGetOK{Data: make([]byte, bad.n), Size: bad.size})
				return f
			}
		})
		offset := uint64(0)
		if bad.length == wire.BlobPartSize {
			offset = 3 * wire.BlobPartSize
		}
		from := p.mark()
		req := &wire.BlobGet{Domain: p.c.Domain, ID: randomID(), Offset: offset, Length: bad.length}
		// Until the peer was asked: the server may still be in its
		// backoff after the previous case's protocol violation.
		deadline := time.Now().Add(relayWait)
		for {
			err := c.request(t.ctx, req, &wire.BlobGetOK{})
			t.wantCode(err, wire.CodeUnavailable, "blob-get answered by the peer with "+bad.what)
			asked := slices.ContainsFunc(p.between(from, p.mark()), func(ev peerEvent) bool {
				_, ok := ev.req.(*wire.FedBlobGet)
				return ok
			})
			if asked {
				break
			}
			var pe *wire.Error
			errors.As(err, &pe)
			if time.Now().Add(pe.RetryAfter).After(deadline) {
				t.Fatalf("the server answered unavailable for %s without asking the peer", relayWait)
			}
			select {
			case <-time.After(max(pe.RetryAfter, 100*time.Millisecond)):
			case <-t.ctx.Done():
				t.Fatalf("%v", t.ctx.Err())
			}
		}
	}
}

// fedGet is fed-blob-get for the peer's connection f: a rate_limited answer
// (the per-origin blob-read budget, which the suite's other fed-blob-get
// requests share) is asked again after its retry-after time.
func (t *T) fedGet(f *conn, req *wire.FedBlobGet) (*wire.BlobGetOK, error) {
	for {
		var ok wire.BlobGetOK
		err := f.request(t.ctx, req, &ok)
		var pe *wire.Error
		if !errors.As(err, &pe) || pe.Code != wire.CodeRateLimited || pe.RetryAfter > 10*time.Second {
			if err != nil {
				return nil, err
			}
			return &ok, nil
		}
		select {
		case <-time.After(pe.RetryAfter):
		case <-t.ctx.Done():
			return nil, t.ctx.Err()
		}
	}
}

// test11_7_2_1_FedGet checks 11.7.2/1: fed-blob-get from the peer reads ranges of a blob a local account uploaded.
func test11_7_2_1_FedGet(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	u := t.finishedBlob(c, a, fourBlob)
	f := t.fedConn(t.env.peer.c.Domain)
	for _, r := range blobRanges(fourBlob) {
		ok, err := t.fedGet(f, &wire.FedBlobGet{ID: u.id, Offset: r[0], Length: r[1]})
		t.must(err, fmt.Sprintf("fed-blob-get at %d, %d bytes", r[0], r[1]))
		if end := min(r[0]+r[1], fourBlob); ok.Size != fourBlob || !bytes.Equal(ok.Data, u.data[r[0]:end]) {
			t.Fatalf("fed-blob-get at %d, %d bytes: size %d and %d bytes that are not the blob's bytes %d to %d", r[0], r[1], ok.Size, len(ok.Data), r[0], end)
		}
	}
	for _, off := range []uint64{fourBlob, 1 << 31, 1<<64 - 1} {
		_, err := t.fedGet(f, &wire.FedBlobGet{ID: u.id, Offset: off, Length: 1})
		t.wantCode(err, wire.CodeBadRange, fmt.Sprintf("fed-blob-get at %d", off))
	}
}

// test11_7_2_2_FedGetBeforeHello checks 11.7.2/2: fed-blob-get before fed-hello is peer_unauthenticated.
func test11_7_2_2_FedGetBeforeHello(t *T) {
	a := t.blobAccount()
	u := t.finishedBlob(t.connect(a), a, oneBlob)
	t.expectErr(t.fedConn(""), &wire.FedBlobGet{ID: u.id, Offset: 0, Length: 1}, wire.CodePeerUnauthenticated)
}

// test11_7_2_3_FedGetUnknown checks 11.7.2/3: fed-blob-get of an unfinished blob or an unknown identifier is unknown_blob.
func test11_7_2_3_FedGetUnknown(t *T) {
	a := t.blobAccount()
	c := t.connect(a)
	open := t.createBlob(c, a, oneBlob)
	t.putAll(c, open)
	f := t.fedConn(t.env.peer.c.Domain)
	for _, id := range [][]byte{open.id, randomID()} {
		_, err := t.fedGet(f, &wire.FedBlobGet{ID: id, Offset: 0, Length: 1})
		t.wantCode(err, wire.CodeUnknownBlob, "fed-blob-get")
	}
}

// test11_8_1_AnnouncedLimits checks 11.8/1: server-info announces the maximum blob size, the retention and the upload lifetime.
func test11_8_1_AnnouncedLimits(t *T) {
	l := t.env.limits
	if l[limitMaxBlob] < wire.MinBlobSize || l[limitMaxBlob] > wire.MaxBlobSize || l[limitBlobRetention] == 0 || l[limitUploadLifetime] == 0 {
		t.Fatalf("limits %v: want key %d from 541 to 5 GiB, keys %d and %d above 0", l, limitMaxBlob, limitBlobRetention, limitUploadLifetime)
	}
}

// test11_8_2_RetentionAtLeastMailbox checks 11.8/2: the announced blob retention is not shorter than the mailbox retention.
func test11_8_2_RetentionAtLeastMailbox(t *T) {
	r, ok := t.env.limit(limitBlobRetention)
	if !ok {
		t.Skipf("the server announces no blob retention (key %d): 11.8/1 fails", limitBlobRetention)
	}
	if r < t.env.info.Limits.RetentionSeconds {
		t.Fatalf("blob retention %d s, mailbox retention %d s", r, t.env.info.Limits.RetentionSeconds)
	}
}
