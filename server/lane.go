package server

import (
	"sync"
	"time"
)

// laneLimiter is the request lane's budget: a token bucket per recipient
// account, never per sender (the sender is sealed). It lives in memory; a
// restart refills every bucket (spec/07-envelopes.md).
type laneLimiter struct {
	burst  float64
	refill time.Duration

	mu      sync.Mutex
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the limiter's memory; full buckets are dropped first.
const maxBuckets = 100000

func newLaneLimiter(burst int, refill time.Duration) *laneLimiter {
	return &laneLimiter{burst: float64(burst), refill: refill, buckets: make(map[string]*bucket)}
}

// allow takes one envelope from the recipient's budget at now. When the
// budget is spent it returns false and how long until one more fits.
func (l *laneLimiter) allow(recipient string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[recipient]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[recipient] = b
	}
	b.tokens += float64(now.Sub(b.last)) / float64(l.refill)
	if b.tokens > l.burst {
		b.tokens = l.burst
	}
	b.last = now
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * float64(l.refill))
	}
	b.tokens--
	return true, 0
}

// prune drops buckets that have refilled completely.
func (l *laneLimiter) prune(now time.Time) {
	full := time.Duration(l.burst * float64(l.refill))
	for k, b := range l.buckets {
		if now.Sub(b.last) >= full {
			delete(l.buckets, k)
		}
	}
}
