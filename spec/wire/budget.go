package wire

import (
	"context"
	"sync"
)

// A Budget bounds the bytes held for frames being read and handled: a
// reader takes a frame's announced length from it before reading the
// payload (ServeStreamWithin), waiting while the budget is spent, and
// gives the bytes back when it is done with the frame. Waiters are served
// in order of arrival, so a large frame is not overtaken forever by small
// ones. The zero Budget is not usable; make one with NewBudget.
type Budget struct {
	mu      sync.Mutex
	limit   int64
	held    int64
	waiters []*budgetWaiter
}

type budgetWaiter struct {
	n     int64
	ready chan struct{} // closed when the bytes were granted
}

// NewBudget returns a budget of limit bytes.
func NewBudget(limit int64) *Budget { return &Budget{limit: limit} }

// Limit returns the budget's size in bytes.
func (b *Budget) Limit() int64 { return b.limit }

// Held returns the bytes taken and not yet given back.
func (b *Budget) Held() int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.held
}

// Acquire takes n bytes, waiting until they are free or ctx ends (then it
// returns ctx's error and takes nothing). n above the limit is taken as
// the whole limit.
func (b *Budget) Acquire(ctx context.Context, n int64) error {
	n = min(n, b.limit)
	b.mu.Lock()
	if len(b.waiters) == 0 && b.held+n <= b.limit {
		b.held += n
		b.mu.Unlock()
		return nil
	}
	w := &budgetWaiter{n: n, ready: make(chan struct{})}
	b.waiters = append(b.waiters, w)
	b.mu.Unlock()
	select {
	case <-w.ready:
		return nil
	case <-ctx.Done():
		b.mu.Lock()
		select {
		case <-w.ready:
			// Granted meanwhile: give it back.
			b.held -= n
		default:
			for i, x := range b.waiters {
				if x == w {
					b.waiters = append(b.waiters[:i], b.waiters[i+1:]...)
					break
				}
			}
		}
		b.grant()
		b.mu.Unlock()
		return ctx.Err()
	}
}

// Release gives back n bytes taken with Acquire.
func (b *Budget) Release(n int64) {
	n = min(n, b.limit)
	b.mu.Lock()
	b.held -= n
	b.grant()
	b.mu.Unlock()
}

// grant hands free bytes to the waiters in order; b.mu is held.
func (b *Budget) grant() {
	for len(b.waiters) > 0 {
		w := b.waiters[0]
		if b.held+w.n > b.limit {
			return
		}
		b.held += w.n
		close(w.ready)
		b.waiters = b.waiters[1:]
	}
}

// AcquireAll takes n bytes from every budget, in order, waiting while one
// is spent, or none of them when ctx ends first; release gives them back.
func AcquireAll(ctx context.Context, n int64, budgets []*Budget) (release func(), err error) {
	for i, b := range budgets {
		if err := b.Acquire(ctx, n); err != nil {
			for _, taken := range budgets[:i] {
				taken.Release(n)
			}
			return nil, err
		}
	}
	return func() {
		for _, b := range budgets {
			b.Release(n)
		}
	}, nil
}
