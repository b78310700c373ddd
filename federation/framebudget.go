package federation

import (
	"sync"

	"github.com/xchat-im/xchat/spec/wire"
)

// Bytes of request frames that may be read or handled at once on
// accepted federation connections (spec/15-limits.md): a frame's announced
// length is charged to its connection, its origin domain (once fed-hello
// succeeded) and the whole listener before its payload is read; while any
// of them is spent the stream waits, within its request deadline
// (spec/03-framing.md section 3.6). A connection's budget holds the 16
// relay requests in flight that section 8.5 allows.
const (
	fedFrameBudgetConn   = wire.MaxRelaysInFlight * wire.MaxFrame
	fedFrameBudgetOrigin = 2 * fedFrameBudgetConn
	fedFrameBudgetAll    = 256 << 20
)

// maxConnsPerOrigin bounds the accepted connections that completed
// fed-hello for one origin domain (spec/08-federation.md section 8.5: a
// dialler keeps one, and dials again only when it failed; the others
// allow for failures the listener has not noticed yet).
const maxConnsPerOrigin = 4

// origins holds the accepted connections and the frame budget of each
// origin domain with a connection; an origin is dropped with its last
// connection.
type origins struct {
	mu sync.Mutex
	m  map[string]*origin
}

type origin struct {
	frames *wire.Budget
	conns  int
}

// join counts one more connection of domain and returns the domain's
// frame budget, or false when the domain has maxConnsPerOrigin
// connections already. A joined connection leaves when it ends.
func (o *origins) join(domain string) (*wire.Budget, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.m == nil {
		o.m = make(map[string]*origin)
	}
	og := o.m[domain]
	if og == nil {
		og = &origin{frames: wire.NewBudget(fedFrameBudgetOrigin)}
		o.m[domain] = og
	}
	if og.conns >= maxConnsPerOrigin {
		return nil, false
	}
	og.conns++
	return og.frames, true
}

// leave ends one connection of domain.
func (o *origins) leave(domain string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if og := o.m[domain]; og != nil {
		if og.conns--; og.conns <= 0 {
			delete(o.m, domain)
		}
	}
}

// frameLimits returns what reading one request of the connection may
// hold: before fed-hello one small frame, charged to the connection and
// the listener; after it, to the origin domain too.
func (in *inbound) frameLimits() wire.StreamLimits {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.origin == "" {
		return wire.StreamLimits{Max: wire.MaxPreAuthFrame, Budgets: []*wire.Budget{in.frames, in.f.frames}}
	}
	return wire.StreamLimits{Max: wire.MaxFrame, Budgets: []*wire.Budget{in.frames, in.originFrames, in.f.frames}}
}
