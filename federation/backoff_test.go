package federation

import (
	"testing"
	"time"
)

// The waits of spec 8.9.3: d = min(300 s, 1 s × 2^n), chosen in [d/2, d].
func TestJitteredWaits(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		n      int
		lo, hi time.Duration
	}{
		{0, 500 * time.Millisecond, time.Second},
		{1, time.Second, 2 * time.Second},
		{3, 4 * time.Second, 8 * time.Second},
		{9, 150 * time.Second, 300 * time.Second},
		{40, 150 * time.Second, 300 * time.Second},
		{-1, 500 * time.Millisecond, time.Second},
	} {
		for range 200 {
			if d := jittered(DefaultRetry, DefaultMaxRetry, c.n); d < c.lo || d > c.hi {
				t.Fatalf("n=%d: wait %s outside [%s, %s]", c.n, d, c.lo, c.hi)
			}
		}
	}
}
