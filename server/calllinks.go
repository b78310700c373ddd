package server

import (
	"context"
	"math/rand/v2"
	"time"
)

// linkTimeout bounds one fed-call-join or fed-call-leave attempt.
const linkTimeout = 30 * time.Second

// link links rm with the room of the same identifier on domain by
// fed-call-join, trying again with the backoff of spec/08-federation.md
// section 8.9.3 while the room has members (spec/12-calls.md section 12.3,
// step 5).
func (r *relay) link(rm *room, domain string) {
	defer r.links.Done()
	for n := 0; ; n++ {
		r.mu.Lock()
		ctx := r.ctx
		if rm.closed || len(rm.members) == 0 || ctx.Err() != nil {
			delete(rm.pending, domain)
			if !rm.closed {
				rm.refresh()
			}
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		actx, cancel := context.WithTimeout(ctx, linkTimeout)
		h, err := r.s.fed.CallJoin(actx, domain, rm.id[:], rm.token, rm.handle)
		cancel()
		if err == nil {
			r.mu.Lock()
			delete(rm.pending, domain)
			if rm.closed {
				r.sendLeave(domain, h)
				r.mu.Unlock()
				return
			}
			l := rm.links[domain]
			if l == nil {
				l = &roomLink{}
				rm.links[domain] = l
			}
			l.handle = h
			rm.refresh()
			r.mu.Unlock()
			r.log.Debug("call room linked", "handle", rm.handle, "domain", domain)
			return
		}
		wait := backoff(r.retry, r.maxRetry, n)
		r.log.Debug("call room link failed", "handle", rm.handle, "domain", domain, "attempt", n+1, "retry_in", wait, "err", err)
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-rm.done:
		case <-t.C:
		}
		t.Stop()
	}
}

// backoff returns the wait after n+1 consecutive failures: d = min(max,
// base × 2^n), a value chosen uniformly in [d/2, d].
func backoff(base, maxWait time.Duration, n int) time.Duration {
	d := maxWait
	if n < 32 && base<<n > 0 && base<<n < maxWait {
		d = base << n
	}
	return d/2 + rand.N(d/2+1)
}

// sendLeave unlinks this server from domain's room of peerHandle by
// fed-call-leave, in the background. r.mu is held.
func (r *relay) sendLeave(domain string, peerHandle uint32) {
	if r.stopped {
		return
	}
	ctx := r.ctx
	r.links.Add(1)
	go func() {
		defer r.links.Done()
		actx, cancel := context.WithTimeout(ctx, linkTimeout)
		defer cancel()
		if err := r.s.fed.CallLeave(actx, domain, peerHandle); err != nil {
			r.log.Debug("fed-call-leave failed", "domain", domain, "err", err)
		}
	}()
}
