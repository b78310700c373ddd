package ratelimit

import (
	"fmt"
	"testing"
	"time"
)

func TestBurstThenRefill(t *testing.T) {
	l := New(3, time.Second)
	now := time.Unix(1000, 0)
	for i := range 3 {
		if ok, _ := l.Allow("k", now); !ok {
			t.Fatalf("unit %d of the burst refused", i)
		}
	}
	ok, retry := l.Allow("k", now)
	if ok || retry != time.Second {
		t.Fatalf("over the burst: %v, retry %v; want refused, retry 1s", ok, retry)
	}
	if ok, _ := l.Allow("other", now); !ok {
		t.Fatal("another key shares the budget")
	}
	if ok, _ := l.Allow("k", now.Add(999*time.Millisecond)); ok {
		t.Fatal("a unit came back early")
	}
	if ok, _ := l.Allow("k", now.Add(2*time.Second)); !ok {
		t.Fatal("no unit back after the refill time")
	}
	// A long pause refills no more than the burst.
	later := now.Add(time.Hour)
	for i := range 3 {
		if ok, _ := l.Allow("k", later); !ok {
			t.Fatalf("unit %d after a long pause refused", i)
		}
	}
	if ok, _ := l.Allow("k", later); ok {
		t.Fatal("more than the burst after a long pause")
	}
}

func TestBoundedKeys(t *testing.T) {
	l := New(1, time.Minute)
	now := time.Unix(1000, 0)
	for i := range maxBuckets + 10 {
		l.Allow(fmt.Sprint(i), now)
	}
	if n := len(l.buckets); n > maxBuckets {
		t.Fatalf("%d buckets, bound %d", n, maxBuckets)
	}
}

func TestPeekTake(t *testing.T) {
	l := New(2, time.Second)
	now := time.Unix(1000, 0)
	for range 3 {
		if ok, _ := l.Peek("k", now); !ok {
			t.Fatal("peek spent the budget")
		}
	}
	l.Take("k", now)
	l.Take("k", now)
	if ok, retry := l.Peek("k", now); ok || retry != time.Second {
		t.Fatalf("after two takes of a burst of 2: %v, retry %v; want refused, retry 1s", ok, retry)
	}
	l.Take("k", now) // nothing left: no debt
	if ok, _ := l.Peek("k", now.Add(time.Second)); !ok {
		t.Fatal("a take past the budget made a debt")
	}
}

func TestNilLimiterAllows(t *testing.T) {
	var l *Limiter
	now := time.Unix(1000, 0)
	l.Take("k", now)
	if ok, _ := l.Allow("k", now); !ok {
		t.Fatal("nil limiter refused")
	}
	if ok, _ := l.Peek("k", now); !ok {
		t.Fatal("nil limiter refused a peek")
	}
}

func TestAllowN(t *testing.T) {
	l := New(10, time.Second)
	now := time.Unix(1000, 0)
	if ok, _ := l.AllowN("k", 7, now); !ok {
		t.Fatal("7 of a burst of 10 refused")
	}
	ok, retry := l.AllowN("k", 5, now)
	if ok || retry != 2*time.Second {
		t.Fatalf("5 with 3 left: %v, retry %v; want refused, retry 2s", ok, retry)
	}
	if ok, _ := l.AllowN("k", 3, now); !ok {
		t.Fatal("the 3 left refused: a refusal took units")
	}
	if ok, _ := l.AllowN("k", 2, now.Add(2*time.Second)); !ok {
		t.Fatal("2 units not back after 2 s")
	}
	if ok, _ := l.AllowN("k", 11, now.Add(time.Hour)); ok {
		t.Fatal("more than the burst allowed")
	}
}

func TestPerSecond(t *testing.T) {
	l := NewPerSecond(1000, 3000) // a unit every third of a microsecond
	now := time.Unix(1000, 0)
	if ok, _ := l.AllowN("k", 1000, now); !ok {
		t.Fatal("the burst refused")
	}
	ok, retry := l.AllowN("k", 300, now)
	if ok || retry != 100*time.Millisecond {
		t.Fatalf("300 units with none left: %v, retry %v; want refused, retry 100ms", ok, retry)
	}
	if ok, _ := l.AllowN("k", 300, now.Add(100*time.Millisecond)); !ok {
		t.Fatal("300 units not back after 100 ms")
	}
}
