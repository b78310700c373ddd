package store

import (
	"context"
	"errors"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// Errors of the blob store that callers decide on.
var (
	ErrUnknownBlob    = errors.New("store: unknown blob")
	ErrQuota          = errors.New("store: blob quota exceeded")
	ErrBadRange       = errors.New("store: part or range outside the blob")
	ErrBlobIncomplete = errors.New("store: blob has parts missing")
)

// BlobID is the random identifier of a blob.
type BlobID [16]byte

// Blob is the state of an uploaded (or uploading) blob: opaque padded
// ciphertext of spec/11-files.md. The store never learns what it holds.
type Blob struct {
	ID        BlobID
	Owner     string // the uploading account's address
	Size      int64  // padded size in bytes, fixed at creation
	Received  int64  // bytes of the durable prefix: parts 0.. up to the first missing one
	Complete  bool   // finished: readable by anyone who knows ID
	CreatedAt time.Time
	// Expires is when the blob is deleted: for an unfinished blob,
	// CreatedAt plus the upload lifetime; for a complete one, the time it
	// was finished plus the retention.
	Expires time.Time
}

// LiveAt reports whether the blob has not expired at now, to the
// millisecond: from Expires on it is unknown to every method.
func (b Blob) LiveAt(now time.Time) bool { return b.Expires.UnixMilli() > now.UnixMilli() }

// Parts returns the number of parts of the blob.
func (b Blob) Parts() int64 { return int64(wire.BlobParts(uint64(b.Size))) }

// FitsPart reports whether data is part index of the blob: an index below
// Parts and the part's exact length.
func (b Blob) FitsPart(index int64, data []byte) bool {
	return index >= 0 && index < b.Parts() && uint64(len(data)) == wire.BlobPartLen(uint64(b.Size), uint64(index))
}

// BlobLimits bound what one account may hold in the blob store.
type BlobLimits struct {
	Quota         int64 // bytes of the account's unexpired blobs, unfinished ones counted at their full size
	MaxUnfinished int   // unexpired unfinished blobs of one account
}

// Blobs is the blob store (spec/11-files.md): blobs split in parts of
// wire.BlobPartSize bytes, uploaded in any order by their owner, readable
// by range once finished. A part is durable when PutPart returns nil. A
// blob expires at its Expires (it is live while now is before it, to the
// millisecond); an expired blob is unknown to every method even before it
// is deleted, and deleting a blob never leaves part of it readable. Parts
// of one blob may be written concurrently; once FinishBlob returned, the
// blob's content never changes. Memory does not grow with a blob's size.
type Blobs interface {
	// CreateBlob records a new unfinished blob b (ID, Owner, Size,
	// CreatedAt and Expires set by the caller). ErrQuota when the owner's
	// unexpired blobs at b.CreatedAt (finished or not, each at its full
	// size) plus b.Size exceed l.Quota; else ErrLimit when the owner has
	// l.MaxUnfinished unexpired unfinished blobs already; nothing is
	// written then. The check and the insert are atomic: concurrent
	// creates never exceed the limits together. Limits that are zero or
	// negative are not enforced. ErrBadRange when b.Size is not in
	// 1..wire.MaxBlobSize (the store does not check the padding). An ID
	// that exists is an error.
	CreateBlob(ctx context.Context, b Blob, l BlobLimits) error
	// PutPart writes part index (offset index × wire.BlobPartSize) of the
	// unfinished blob id of owner and returns the blob's state afterwards.
	// ErrUnknownBlob for an unknown or expired blob or one of another
	// owner. On a complete blob it writes nothing and returns the blob
	// (Received = Size). Else data must be the part's exact length
	// (wire.BlobPartLen), and index inside the blob, or ErrBadRange.
	// Writing a part again replaces it.
	PutPart(ctx context.Context, owner string, id BlobID, index int64, data []byte, now time.Time) (Blob, error)
	// BlobState returns the state of the blob id of owner, or
	// ErrUnknownBlob (also when expired at now or of another owner).
	BlobState(ctx context.Context, owner string, id BlobID, now time.Time) (Blob, error)
	// FinishBlob makes a fully received blob of owner complete and sets its
	// Expires to expires; on a complete blob it changes nothing and returns
	// it. ErrBlobIncomplete when a part is missing; ErrUnknownBlob.
	FinishBlob(ctx context.Context, owner string, id BlobID, now, expires time.Time) (Blob, error)
	// ReadBlob reads into p the bytes of the complete, unexpired blob id
	// from off, as many as p holds or the blob has, and returns their count
	// and the blob's size. ErrUnknownBlob for an unknown, unfinished or
	// expired blob (whatever off); else ErrBadRange when off is negative or
	// not below the size. It reads only the range asked for.
	ReadBlob(ctx context.Context, id BlobID, off int64, p []byte, now time.Time) (n int, size int64, err error)
	// DeleteExpiredBlobs deletes the blobs that expired by now (finished or
	// not), at most limit of them (none when limit is not positive), and
	// returns how many it deleted. A blob's metadata goes first, so that
	// it is unknown before any of its data is gone.
	DeleteExpiredBlobs(ctx context.Context, now time.Time, limit int) (int, error)
	// BlobUsage returns the bytes and count of the owner's unexpired blobs
	// at now, as CreateBlob counts them against the quota.
	BlobUsage(ctx context.Context, owner string, now time.Time) (bytes int64, blobs int, err error)
}

// BlobLister is implemented by stores whose blobs can be copied to another
// store (both backends): see [CopyBlobs].
type BlobLister interface {
	// CompleteBlobs returns up to limit complete blobs unexpired at now
	// whose IDs sort after the ID after, in ID order (bytewise).
	CompleteBlobs(ctx context.Context, after BlobID, limit int, now time.Time) ([]Blob, error)
}
