package server

import "time"

// tokenBucket is a send budget of a connection in a call room
// (spec/12-calls.md section 12.10): it holds one second's worth of its
// rate and refills continuously. A zero rate means no limit. It is not
// safe for concurrent use: only the connection's datagram reader uses it.
type tokenBucket struct {
	rate   float64 // units a second; 0: no limit
	tokens float64
	last   time.Time
}

func newTokenBucket(perSecond int) tokenBucket {
	if perSecond <= 0 {
		return tokenBucket{}
	}
	return tokenBucket{rate: float64(perSecond), tokens: float64(perSecond)}
}

// refill adds the tokens earned since the last use and reports whether a
// whole one is there.
func (b *tokenBucket) refill(now time.Time) bool {
	if b.rate == 0 {
		return true
	}
	if !b.last.IsZero() {
		b.tokens = min(b.rate, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
	return b.tokens >= 1
}

// take uses one token, after refill said there is one.
func (b *tokenBucket) take() {
	if b.rate != 0 {
		b.tokens--
	}
}
