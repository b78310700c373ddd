package sqlite

import (
	"context"
	"testing"
	"time"
)

// Stats returns how many transactions the writer began and how many write
// operations it ran in them.
func (s *Store) Stats() (txs, ops int64) { return s.txs.Load(), s.opsDone.Load() }

// Queued returns how many write operations wait for the writer.
func (s *Store) Queued() int { return len(s.ops) }

// IsClosed reports whether Close was called.
func (s *Store) IsClosed() bool { return s.isClosed() }

// BlockWriter occupies the writer until release is called, and returns once
// the writer is occupied. release returns when the occupying operation has
// committed.
func (s *Store) BlockWriter(t testing.TB) (release func()) {
	t.Helper()
	started, unblock := make(chan struct{}), make(chan struct{})
	errc := make(chan error, 1)
	go func() {
		errc <- s.write(context.Background(), 0, func(*wtx) error {
			close(started)
			<-unblock
			return nil
		})
	}()
	select {
	case <-started:
	case err := <-errc:
		t.Fatalf("BlockWriter: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("BlockWriter: the writer did not take the operation")
	}
	return func() {
		close(unblock)
		if err := <-errc; err != nil {
			t.Errorf("BlockWriter: %v", err)
		}
	}
}
