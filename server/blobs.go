package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// Files (spec/11-files.md): the requests blob-create, blob-put,
// blob-status, blob-finish and blob-get. The server stores opaque padded
// blobs; it never sees a file key, a name or a media type, and logs
// nothing about a blob but counts.

// remoteBlobDeadline bounds a blob-get for another domain: the dial and
// the fed-blob-get together, within the client's request deadline.
const remoteBlobDeadline = 20 * time.Second

// responseWait bounds how long a blob-get waits for its response's bytes
// in the frame budgets before it is refused with rate_limited and
// responseRetry.
const (
	responseWait  = 10 * time.Second
	responseRetry = time.Second
)

// blobResponseOverhead is the bytes of a blob-get-ok frame besides its
// data: the length prefix, the map, the type and the size.
const blobResponseOverhead = 64

// responseHold holds, for one request stream, the bytes of the frame
// budgets taken for the response being written; handleStream gives them
// back once the response was written or the stream failed.
type responseHold struct{ release func() }

// done gives the held bytes back.
func (h *responseHold) done() {
	if h.release != nil {
		h.release()
		h.release = nil
	}
}

// holdResponse charges n bytes of response to the connection's frame
// budgets (framebudget.go), waiting at most responseWait, and records them
// in h: so a connection, an account and the server hold at most their
// budgets' bytes of blob data, whatever the files' sizes.
func (c *conn) holdResponse(ctx context.Context, h *responseHold, n int64) error {
	lim := c.frameLimits()
	ctx, cancel := context.WithTimeout(ctx, responseWait)
	defer cancel()
	release, err := wire.AcquireAll(ctx, n, lim.Budgets)
	if err != nil {
		return &wire.Error{Code: wire.CodeRateLimited, RetryAfter: responseRetry,
			Message: "too many blob bytes in flight on this connection, account or server"}
	}
	h.release = release
	return nil
}

// blobError maps an error of the blob store to the protocol error a client
// is answered with; other errors are wrapped with what failed.
func blobError(what string, err error) error {
	switch {
	case errors.Is(err, store.ErrUnknownBlob):
		return wire.Errorf(wire.CodeUnknownBlob, "no such blob: unknown, expired, unfinished or another account's")
	case errors.Is(err, store.ErrQuota):
		return wire.Errorf(wire.CodeQuotaExceeded, "the account's blobs would exceed its quota")
	case errors.Is(err, store.ErrLimit):
		return wire.Errorf(wire.CodeLimitExceeded, "the account has as many unfinished uploads as it may")
	case errors.Is(err, store.ErrBadRange):
		return wire.Errorf(wire.CodeBadRange, "part or range outside the blob, or not the part's length")
	case errors.Is(err, store.ErrBlobIncomplete):
		return wire.Errorf(wire.CodeBlobIncomplete, "the blob has parts missing")
	}
	return fmt.Errorf("%s: %w", what, err)
}

// blobID returns the store's identifier of a validated wire identifier.
func blobID(id []byte) store.BlobID {
	var b store.BlobID
	copy(b[:], id)
	return b
}

// unixMs returns t as Unix milliseconds, as the wire carries times.
func unixMs(t time.Time) uint64 { return uint64(max(t.UnixMilli(), 0)) }

// blobLimits returns the store's view of the account limits, where zero
// is no limit.
func (s *Server) blobLimits() store.BlobLimits {
	return store.BlobLimits{Quota: max(s.cfg.Limits.BlobQuota, 0), MaxUnfinished: max(s.cfg.Limits.MaxUnfinished, 0)}
}

func (c *conn) blobCreate(ctx context.Context, me store.Mailbox, r *wire.BlobCreate) ([]byte, error) {
	if r.Size > wire.MaxBlobSize {
		return nil, wire.Errorf(wire.CodeLimitExceeded, "blob of %d bytes, limit %d", r.Size, uint64(wire.MaxBlobSize))
	}
	if wire.PaddedBlobSize(r.Size) != r.Size {
		return nil, wire.Errorf(wire.CodeBadPadding, "blob size %d is not a padding bucket", r.Size)
	}
	now := c.s.now()
	b := store.Blob{Owner: me.Address, Size: int64(r.Size), CreatedAt: now, Expires: now.Add(c.s.cfg.Limits.UploadLifetime)}
	rand.Read(b.ID[:])
	if err := c.s.cfg.Store.CreateBlob(ctx, b, c.s.blobLimits()); err != nil {
		return nil, blobError("create blob", err)
	}
	return wire.EncodeSuccess(&wire.BlobCreateOK{ID: b.ID[:], Expires: unixMs(b.Expires)})
}

func (c *conn) blobPut(ctx context.Context, me store.Mailbox, r *wire.BlobPut) ([]byte, error) {
	// An index past every blob's end stays past it as an int64.
	index := int64(min(r.Index, wire.BlobParts(wire.MaxBlobSize)))
	b, err := c.s.cfg.Store.PutPart(ctx, me.Address, blobID(r.ID), index, r.Data, c.s.now())
	if err != nil {
		return nil, blobError("put blob part", err)
	}
	return wire.EncodeSuccess(&wire.BlobPutOK{Received: uint64(b.Received)})
}

func (c *conn) blobStatus(ctx context.Context, me store.Mailbox, r *wire.BlobStatus) ([]byte, error) {
	b, err := c.s.cfg.Store.BlobState(ctx, me.Address, blobID(r.ID), c.s.now())
	if err != nil {
		return nil, blobError("blob status", err)
	}
	return wire.EncodeSuccess(&wire.BlobStatusOK{Size: uint64(b.Size), Received: uint64(b.Received),
		Complete: b.Complete, Expires: unixMs(b.Expires)})
}

func (c *conn) blobFinish(ctx context.Context, me store.Mailbox, r *wire.BlobFinish) ([]byte, error) {
	now := c.s.now()
	b, err := c.s.cfg.Store.FinishBlob(ctx, me.Address, blobID(r.ID), now, now.Add(c.s.cfg.Limits.BlobRetention))
	if err != nil {
		return nil, blobError("finish blob", err)
	}
	return wire.EncodeSuccess(&wire.BlobFinishOK{Expires: unixMs(b.Expires)})
}

// blobGet answers blob-get: from the store for this domain, else from the
// blob's domain over federation (fed-blob-get), passing its answer on. The
// response's bytes are held in the frame budgets until it is written.
func (c *conn) blobGet(ctx context.Context, h *responseHold, r *wire.BlobGet) ([]byte, error) {
	if r.Domain == c.s.cfg.Domain {
		if err := c.holdResponse(ctx, h, int64(r.Length)+blobResponseOverhead); err != nil {
			return nil, err
		}
		return c.s.ReadBlob(ctx, r.ID, r.Offset, r.Length)
	}
	// The other domain's answer is read whole, up to a frame, whatever
	// the length asked: that is what is held.
	if err := c.holdResponse(ctx, h, wire.MaxFrame); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, remoteBlobDeadline)
	defer cancel()
	ok, err := c.s.fed.FetchBlob(ctx, r.Domain, r.ID, r.Offset, r.Length)
	if err != nil {
		return nil, err
	}
	return wire.EncodeSuccess(ok)
}

// ReadBlob reads length bytes (fewer at the end) from offset off of the
// finished blob id of this domain and returns them as a blob-get-ok
// response, for blob-get and for fed-blob-get from other domains. It
// implements federation.Local. Unknown, unfinished and expired blobs are
// unknown_blob; off at or past the end is bad_range.
func (s *Server) ReadBlob(ctx context.Context, id []byte, off, length uint64) ([]byte, error) {
	if len(id) != wire.BlobIDLen || length == 0 || length > wire.BlobPartSize {
		return nil, wire.Errorf(wire.CodeMalformed, "blob identifier of %d bytes, range of %d bytes", len(id), length)
	}
	// An offset past every blob's end stays past it as an int64.
	off = min(off, wire.MaxBlobSize)
	// A whole part reads into a pooled buffer; a shorter range into one of
	// its own size, so that what a request holds follows the length it
	// asked for (and was charged to the frame budgets).
	var p []byte
	if length == wire.BlobPartSize {
		buf := s.partBuffers.Get().(*[]byte)
		defer s.partBuffers.Put(buf)
		p = *buf
	} else {
		p = make([]byte, length)
	}
	n, size, err := s.cfg.Store.ReadBlob(ctx, blobID(id), int64(off), p[:length], s.now())
	if err != nil {
		return nil, blobError("read blob", err)
	}
	// The response is a copy: the buffer goes back to the pool.
	return wire.EncodeSuccess(&wire.BlobGetOK{Data: p[:n], Size: uint64(size)})
}

// newPartBuffer makes a buffer of one part for Server.partBuffers, which
// saves reads of blobs an allocation each.
func newPartBuffer() any {
	b := make([]byte, wire.BlobPartSize)
	return &b
}

// Blob sweeps: how often expired blobs are looked for, and how many are
// deleted in one store call.
const (
	DefaultBlobSweep = 5 * time.Minute
	blobSweepBatch   = 1000
)

// sweepBlobs deletes expired blobs every interval until ctx ends, logging
// how many it deleted.
func (s *Server) sweepBlobs(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		n, err := s.deleteExpiredBlobs(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			s.log.Error("blob sweep", "deleted", n, "err", err)
		case n > 0:
			s.log.Info("blob sweep", "deleted", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// deleteExpiredBlobs deletes every blob expired by now, in batches, and
// returns how many it deleted.
func (s *Server) deleteExpiredBlobs(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, err := s.cfg.Store.DeleteExpiredBlobs(ctx, s.now(), blobSweepBatch)
		total += n
		if err != nil || n < blobSweepBatch {
			return total, err
		}
	}
	return total, ctx.Err()
}
