package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// Bounds on looking up another domain's sender-certificate key, so that a
// domain that does not answer cannot hold up receiving (spec/07-envelopes.md
// section 7.16, spec/15-limits.md).
const (
	// domainKeyTimeout bounds one get-domain-key.
	domainKeyTimeout = 3 * time.Second
	// domainKeyRetry is how long a domain whose key could not be had is
	// not asked again (a negative cache).
	domainKeyRetry = time.Minute
	// lookupBudget bounds the time spent in get-domain-key requests that
	// failed, per domainKeyRetry; past it, keys not cached are not looked
	// up until the window ends.
	lookupBudget = 6 * time.Second
)

// lookupState is what a Client remembers of failed key lookups. It is
// guarded by Client.keysMu.
type lookupState struct {
	failed      map[string]failure // domain → its last failed lookup
	spent       time.Duration      // time in failed lookups since windowStart
	windowStart time.Time
}

// failure is a failed lookup of a domain's key.
type failure struct {
	at  time.Time
	err error
}

// domainKeyError is a domain key that could not be had.
type domainKeyError struct {
	domain string
	// skipped: the key was not looked up (the lookup budget was spent, or
	// the homeserver limited this device's lookups); it says nothing about
	// the domain.
	skipped bool
	err     error
}

func (e *domainKeyError) Error() string { return e.err.Error() } // seal names the domain
func (e *domainKeyError) Unwrap() error { return e.err }

var errLookupBudget = errors.New("not looked up: too much time spent on domains that do not answer")

// domainKey returns the sender-certificate key of a domain: the own
// domain's from server-info, another's from get-domain-key (which the
// homeserver answers over federation), cached for the connection. A lookup
// takes at most domainKeyTimeout; a domain whose lookup failed is not
// asked again for domainKeyRetry, and failed lookups take at most
// lookupBudget in all per domainKeyRetry.
func (cl *Client) domainKey(ctx context.Context, domain string) (ed25519.PublicKey, error) {
	_, own := wire.SplitAddress(cl.id.Address)
	if domain == own {
		return cl.domainKey0, nil
	}
	start := time.Now()
	cl.keysMu.Lock()
	k, ok := cl.keys[domain]
	ls := &cl.lookup
	if start.Sub(ls.windowStart) >= domainKeyRetry {
		ls.windowStart, ls.spent = start, 0
	}
	f, failed := ls.failed[domain]
	bound := min(domainKeyTimeout, lookupBudget-ls.spent)
	cl.keysMu.Unlock()
	switch {
	case ok:
		return k, nil
	case failed && start.Sub(f.at) < domainKeyRetry:
		return nil, &domainKeyError{domain: domain, err: fmt.Errorf("not asked again for a minute: %w", f.err)}
	case bound <= 0:
		return nil, &domainKeyError{domain: domain, skipped: true, err: errLookupBudget}
	}
	lctx, cancel := context.WithTimeout(ctx, bound)
	defer cancel()
	var resp wire.DomainKeyOK
	err := cl.c.do(lctx, &wire.GetDomainKey{Domain: domain}, &resp)
	if err == nil && len(resp.Key) != ed25519.PublicKeySize {
		err = fmt.Errorf("%d bytes", len(resp.Key))
	}
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err() // the caller gave up, not the domain
		}
		if lctx.Err() != nil || time.Since(start) >= bound {
			err = fmt.Errorf("no answer within %v (%w)", bound, err)
		}
		if errors.Is(err, wire.ErrRateLimited) {
			return nil, &domainKeyError{domain: domain, skipped: true, err: err}
		}
		cl.keysMu.Lock()
		if ls.failed == nil || len(ls.failed) >= maxCachedKeys {
			ls.failed = make(map[string]failure)
		}
		ls.failed[domain] = failure{at: time.Now(), err: err}
		ls.spent += time.Since(start)
		cl.keysMu.Unlock()
		return nil, &domainKeyError{domain: domain, err: err}
	}
	cl.keysMu.Lock()
	if cl.keys == nil || len(cl.keys) >= maxCachedKeys {
		cl.keys = make(map[string]ed25519.PublicKey)
	}
	cl.keys[domain] = resp.Key
	delete(ls.failed, domain)
	cl.keysMu.Unlock()
	return resp.Key, nil
}

// maxCachedKeys bounds the domains a Client remembers keys and failures
// of; past it, it starts afresh.
const maxCachedKeys = 10000
