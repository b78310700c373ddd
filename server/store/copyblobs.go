package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// copyBlobsPage is how many blobs CopyBlobs lists at a time.
const copyBlobsPage = 100

// BlobSource is a store whose complete blobs can be copied.
type BlobSource interface {
	Blobs
	BlobLister
}

// CopyBlobs copies every complete blob unexpired at now from one store into
// another (xchatd copy), part by part, so that one part at a time is in
// memory, and returns how many it copied (or found there already), calling
// progress with that count after each. A copy keeps its ID, owner, size,
// creation and expiry times. Unfinished uploads are not copied: their
// clients find them unknown and upload again. A blob already complete in
// to is left as it is, so that an interrupted copy may run again.
func CopyBlobs(ctx context.Context, from BlobSource, to Blobs, now time.Time, progress func(int)) (int, error) {
	buf := make([]byte, wire.BlobPartSize)
	var after BlobID
	n := 0
	for {
		page, err := from.CompleteBlobs(ctx, after, copyBlobsPage, now)
		if err != nil {
			return n, fmt.Errorf("copy blobs: after %d blobs: %w", n, err)
		}
		for _, b := range page {
			if err := copyBlob(ctx, from, to, b, buf, now); err != nil {
				return n, fmt.Errorf("copy blobs: blob %x: %w", b.ID[:], err)
			}
			n++
			after = b.ID
			if progress != nil {
				progress(n)
			}
		}
		if len(page) < copyBlobsPage {
			return n, nil
		}
	}
}

// copyBlob copies the complete blob b through buf, which holds one part.
func copyBlob(ctx context.Context, from, to Blobs, b Blob, buf []byte, now time.Time) error {
	got, err := to.BlobState(ctx, b.Owner, b.ID, now)
	switch {
	case err == nil && got.Complete:
		return nil
	case err == nil:
		// Created by a copy that was interrupted: its parts are replaced.
	case errors.Is(err, ErrUnknownBlob):
		if err := to.CreateBlob(ctx, b, BlobLimits{}); err != nil {
			return err
		}
	default:
		return err
	}
	parts := int64(wire.BlobParts(uint64(b.Size)))
	for i := range parts {
		part := buf[:wire.BlobPartLen(uint64(b.Size), uint64(i))]
		for off := 0; off < len(part); {
			k, _, err := from.ReadBlob(ctx, b.ID, i*wire.BlobPartSize+int64(off), part[off:], now)
			if err != nil {
				return err
			}
			if k == 0 {
				return fmt.Errorf("part %d: read nothing", i)
			}
			off += k
		}
		if _, err := to.PutPart(ctx, b.Owner, b.ID, i, part, now); err != nil {
			return err
		}
	}
	_, err = to.FinishBlob(ctx, b.Owner, b.ID, now, b.Expires)
	return err
}
