package server

import (
	"sync"
	"time"
)

// rateLimiter keeps a token bucket per key: per recipient account for the
// request lane (never per sender: the sender is sealed), per source address
// for registrations. It lives in memory; a restart refills every bucket
// (spec/07-envelopes.md).
type rateLimiter struct {
	burst  float64
	refill time.Duration

	mu        sync.Mutex
	buckets   map[string]*bucket
	lastPrune time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the limiter's memory; full buckets are dropped first.
const maxBuckets = 100000

func newRateLimiter(burst int, refill time.Duration) *rateLimiter {
	return &rateLimiter{burst: float64(burst), refill: refill, buckets: make(map[string]*bucket)}
}

// allow takes one unit from key's budget at now. When the
// budget is spent it returns false and how long until one more fits.
func (l *rateLimiter) allow(key string, now time.Time) (bool, time.Duration) {
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
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

// prune drops buckets that have refilled completely, at most once per
// refill interval; when that frees nothing, it drops half of all buckets
// (their keys get a full budget again) so that the map stays bounded.
func (l *rateLimiter) prune(now time.Time) {
	if now.Sub(l.lastPrune) >= l.refill {
		l.lastPrune = now
		full := time.Duration(l.burst * float64(l.refill))
		for k, b := range l.buckets {
			if now.Sub(b.last) >= full {
				delete(l.buckets, k)
			}
		}
	}
	if len(l.buckets) >= maxBuckets {
		n := len(l.buckets) / 2
		for k := range l.buckets {
			if n == 0 {
				break
			}
			delete(l.buckets, k)
			n--
		}
	}
}
