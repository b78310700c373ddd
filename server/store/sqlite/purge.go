package sqlite

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

var _ store.Purger = (*Store)(nil)

// PurgeInterval is how often an open store purges by itself.
const PurgeInterval = time.Minute

// Deleting a row in SQLite unlinks it from its b-tree page, and the page's
// new version goes to the write-ahead log; the old versions of the page,
// with the row's bytes, stay in the database file and in earlier WAL frames.
// Two things make the bytes go:
//
//   - secure_delete (set on the write connection in Open): SQLite overwrites
//     a deleted row's cell, and freed overflow and freelist pages, with
//     zeros, so that the page's new version no longer holds them;
//   - a checkpoint in TRUNCATE mode (Purge): it copies the newest version of
//     every page in the WAL into the database file, overwriting the old
//     one there, and truncates the WAL to zero bytes, so that no old frame
//     is left. (A PASSIVE checkpoint, which SQLite runs by itself, leaves
//     the frames in the WAL until later writes overwrite them, which may
//     never happen to the end of a WAL that once grew large.)

// Purge checkpoints the write-ahead log into the database file and
// truncates it, so that the rows deleted before the call no longer have
// bytes in either file. It runs on the writer between transactions; it
// waits (up to the busy timeout) for readers still using the log and fails
// if they do not finish.
func (s *Store) Purge(ctx context.Context) error {
	err := s.submit(ctx, &writeOp{alone: true, done: make(chan error, 1), fn: func(w *wtx) error {
		var busy, frames, done int
		if err := w.queryRow(`PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &done); err != nil {
			return err
		}
		if busy != 0 {
			return errors.New("the write-ahead log is in use: checkpoint not completed")
		}
		return nil
	}})
	if err != nil {
		return fmt.Errorf("sqlite: purge: %w", err)
	}
	return nil
}

// purger purges every PurgeInterval until stop is closed.
func (s *Store) purger(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), PurgeInterval)
		if err := s.Purge(ctx); err != nil && !errors.Is(err, store.ErrClosed) {
			s.log.Warn("sqlite: purge", "err", err)
		}
		cancel()
	}
}
