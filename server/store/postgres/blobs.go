package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// Placeholders until the blob store lands.

func (s *Store) CreateBlob(ctx context.Context, b store.Blob, l store.BlobLimits) error {
	return errors.ErrUnsupported
}

func (s *Store) PutPart(ctx context.Context, owner string, id store.BlobID, index int64, data []byte, now time.Time) (store.Blob, error) {
	return store.Blob{}, errors.ErrUnsupported
}

func (s *Store) BlobState(ctx context.Context, owner string, id store.BlobID, now time.Time) (store.Blob, error) {
	return store.Blob{}, errors.ErrUnsupported
}

func (s *Store) FinishBlob(ctx context.Context, owner string, id store.BlobID, now, expires time.Time) (store.Blob, error) {
	return store.Blob{}, errors.ErrUnsupported
}

func (s *Store) ReadBlob(ctx context.Context, id store.BlobID, off int64, p []byte, now time.Time) (int, int64, error) {
	return 0, 0, errors.ErrUnsupported
}

func (s *Store) DeleteExpiredBlobs(ctx context.Context, now time.Time, limit int) (int, error) {
	return 0, errors.ErrUnsupported
}

func (s *Store) BlobUsage(ctx context.Context, owner string, now time.Time) (int64, int, error) {
	return 0, 0, errors.ErrUnsupported
}
