package wire

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestBudgetWaitsInOrderAndGivesBackOnCancel(t *testing.T) {
	t.Parallel()
	b := NewBudget(10)
	ctx := context.Background()
	if err := b.Acquire(ctx, 8); err != nil {
		t.Fatal(err)
	}
	// A waiter that gives up takes nothing.
	short, cancel := context.WithTimeout(ctx, 10*time.Millisecond)
	defer cancel()
	if err := b.Acquire(short, 5); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("acquire over the limit: %v, want the context's deadline", err)
	}
	if got := b.Held(); got != 8 {
		t.Fatalf("held %d after a cancelled wait, want 8", got)
	}
	// A large waiter is not overtaken by a small one that would fit.
	large := make(chan error, 1)
	go func() { large <- b.Acquire(ctx, 6) }()
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 1 })
	small := make(chan error, 1)
	go func() { small <- b.Acquire(ctx, 1) }()
	waitFor(t, func() bool { b.mu.Lock(); defer b.mu.Unlock(); return len(b.waiters) == 2 })
	b.Release(8)
	if err := <-large; err != nil {
		t.Fatal(err)
	}
	if err := <-small; err != nil {
		t.Fatal(err)
	}
	if got := b.Held(); got != 7 {
		t.Fatalf("held %d, want 7", got)
	}
	// More than the limit is taken as the whole limit.
	b.Release(7)
	if err := b.Acquire(ctx, 100); err != nil || b.Held() != 10 {
		t.Fatalf("acquire above the limit: %v, held %d", err, b.Held())
	}
	b.Release(100)
	if b.Held() != 0 {
		t.Fatalf("held %d after giving everything back", b.Held())
	}
}

func TestAcquireAllTakesAllOrNothing(t *testing.T) {
	t.Parallel()
	a, b := NewBudget(10), NewBudget(4)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	if err := b.Acquire(context.Background(), 4); err != nil {
		t.Fatal(err)
	}
	if _, err := AcquireAll(ctx, 3, []*Budget{a, b}); err == nil {
		t.Fatal("acquired from a spent budget")
	}
	if a.Held() != 0 {
		t.Fatalf("first budget holds %d after a failed AcquireAll", a.Held())
	}
	b.Release(4)
	release, err := AcquireAll(context.Background(), 3, []*Budget{a, b})
	if err != nil || a.Held() != 3 || b.Held() != 3 {
		t.Fatalf("AcquireAll: %v, held %d and %d", err, a.Held(), b.Held())
	}
	release()
	if a.Held() != 0 || b.Held() != 0 {
		t.Fatalf("held %d and %d after release", a.Held(), b.Held())
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatal("condition not reached in 5 s")
		}
		time.Sleep(time.Millisecond)
	}
}
