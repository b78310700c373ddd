// Package ratelimit keeps token buckets per key, in memory: per recipient
// account for the request lane, per source address for registrations and
// failed authentications, per account and device for key-directory
// requests, per origin domain for federation.
package ratelimit

import (
	"sync"
	"time"
)

// Limiter keeps a token bucket per key. The request lane's budget is keyed
// by recipient account, never by sender (the sender is sealed). It lives in
// memory; a restart refills every bucket (spec/07-envelopes.md). It is safe
// for concurrent use.
type Limiter struct {
	burst  float64
	refill float64 // nanoseconds per unit

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

// New returns a Limiter whose buckets hold burst units and regain one unit
// every refill.
func New(burst int, refill time.Duration) *Limiter {
	return &Limiter{burst: float64(burst), refill: float64(refill), buckets: make(map[string]*bucket)}
}

// NewPerSecond returns a Limiter whose buckets hold burst units and regain
// perSecond units every second: for budgets of bytes, whose units come
// back faster than one per nanosecond may express.
func NewPerSecond(burst int, perSecond float64) *Limiter {
	return &Limiter{burst: float64(burst), refill: float64(time.Second) / perSecond, buckets: make(map[string]*bucket)}
}

// Allow takes one unit from key's budget at now. When the budget is spent
// it returns false and how long until one more fits. A nil Limiter allows
// everything.
func (l *Limiter) Allow(key string, now time.Time) (bool, time.Duration) {
	return l.AllowN(key, 1, now)
}

// AllowN takes n units from key's budget at now, as Allow takes one: for
// budgets of bytes. When fewer than n are left it takes none and returns
// false and how long until n fit; n above the burst never fits.
func (l *Limiter) AllowN(key string, n int, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refilled(key, now)
	if need := float64(n); b.tokens < need {
		return false, time.Duration((need - b.tokens) * l.refill)
	}
	b.tokens -= float64(n)
	return true, 0
}

// Peek is Allow without taking the unit: for budgets spent only by some
// outcomes (Take), checked before the work whose outcome they count.
func (l *Limiter) Peek(key string, now time.Time) (bool, time.Duration) {
	if l == nil {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.refilled(key, now)
	if b.tokens < 1 {
		return false, time.Duration((1 - b.tokens) * l.refill)
	}
	return true, 0
}

// Take takes one unit from key's budget at now, if one is left.
func (l *Limiter) Take(key string, now time.Time) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if b := l.refilled(key, now); b.tokens >= 1 {
		b.tokens--
	}
}

// refilled returns key's bucket, made or refilled up to now. l.mu is held.
func (l *Limiter) refilled(key string, now time.Time) *bucket {
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) >= maxBuckets {
			l.prune(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens += float64(now.Sub(b.last)) / l.refill
	if b.tokens > l.burst {
		b.tokens = l.burst
	}
	b.last = now
	return b
}

// prune drops buckets that have refilled completely, at most once per
// refill interval; when that frees nothing, it drops half of all buckets
// (their keys get a full budget again) so that the map stays bounded.
func (l *Limiter) prune(now time.Time) {
	if float64(now.Sub(l.lastPrune)) >= l.refill {
		l.lastPrune = now
		full := time.Duration(l.burst * l.refill)
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
