package federation

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// domainKeys caches peers' sender-certificate keys.
type domainKeys struct {
	mu   sync.Mutex
	keys map[string]cachedKey
}

type cachedKey struct {
	key     ed25519.PublicKey
	fetched time.Time
}

// maxCachedKeys bounds the cache; past it the cache starts afresh.
const maxCachedKeys = 10000

func newDomainKeys() *domainKeys { return &domainKeys{keys: make(map[string]cachedKey)} }

// DomainKey returns the sender-certificate key of another domain, fetched
// with server-info over an authenticated federation connection and cached.
func (f *Federation) DomainKey(ctx context.Context, domain string) (ed25519.PublicKey, error) {
	if !f.Allowed(domain) {
		return nil, wire.Errorf(wire.CodeDomainRefused, "%s does not federate with %s", f.cfg.Domain, domain)
	}
	now := time.Now()
	f.keys.mu.Lock()
	k, ok := f.keys.keys[domain]
	f.keys.mu.Unlock()
	if ok && now.Sub(k.fetched) < domainKeyTTL {
		return k.key, nil
	}
	var info wire.ServerInfoOK
	if err := f.peer(domain).do(ctx, &wire.ServerInfo{}, &info); err != nil {
		return nil, unavailable(domain, err)
	}
	if info.Domain != domain || len(info.CertKey) != ed25519.PublicKeySize {
		return nil, wire.Errorf(wire.CodeUnavailable, "%s answered server-info for %q", domain, info.Domain)
	}
	f.keys.mu.Lock()
	if len(f.keys.keys) >= maxCachedKeys {
		f.keys.keys = make(map[string]cachedKey)
	}
	f.keys.keys[domain] = cachedKey{key: info.CertKey, fetched: now}
	f.keys.mu.Unlock()
	return info.CertKey, nil
}

// unavailable turns a failure to reach a peer into the unavailable error a
// client is given; a protocol error from the peer passes through.
func unavailable(domain string, err error) error {
	var pe *wire.Error
	if errors.As(err, &pe) {
		return pe
	}
	return &wire.Error{Code: wire.CodeUnavailable, Message: fmt.Sprintf("%s cannot be reached: %v", domain, err),
		RetryAfter: 30 * time.Second}
}

// Forward sends a key-directory request for an account of another domain
// to that domain's homeserver and decodes its answer into resp.
func (f *Federation) Forward(ctx context.Context, domain string, req wire.Request, resp any) error {
	if !f.Allowed(domain) {
		return wire.Errorf(wire.CodeDomainRefused, "%s does not federate with %s", f.cfg.Domain, domain)
	}
	if err := f.peer(domain).do(ctx, req, resp); err != nil {
		return unavailable(domain, err)
	}
	return nil
}
