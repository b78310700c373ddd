package server

import (
	"testing"
	"time"
)

// The link backoff is that of spec/08-federation.md section 8.9.3: d =
// min(max, base × 2^n), the wait uniform in [d/2, d].
func TestCallLinkBackoff(t *testing.T) {
	t.Parallel()
	base, most := time.Second, 300*time.Second
	for n := range 70 {
		d := most
		if n < 9 {
			d = base << n
		}
		for range 20 {
			if w := backoff(base, most, n); w < d/2 || w > d {
				t.Fatalf("attempt %d: wait %v, want within [%v, %v]", n, w, d/2, d)
			}
		}
	}
}

// A token bucket holds one second's worth and refills at its rate; a zero
// rate never refuses.
func TestCallTokenBucket(t *testing.T) {
	t.Parallel()
	now := time.Now()
	b := newTokenBucket(10)
	for i := range 10 {
		if !b.refill(now) {
			t.Fatalf("refused unit %d of the burst", i)
		}
		b.take()
	}
	if b.refill(now) {
		t.Fatal("allowed past the burst")
	}
	if !b.refill(now.Add(100 * time.Millisecond)) {
		t.Fatal("no unit after a tenth of a second at 10 a second")
	}
	if b.refill(now.Add(time.Hour)); b.tokens != 10 {
		t.Fatalf("%v tokens after an hour, want the burst of 10", b.tokens)
	}
	free := newTokenBucket(-1)
	for range 1000 {
		if !free.refill(now) {
			t.Fatal("an unlimited bucket refused")
		}
		free.take()
	}
}
