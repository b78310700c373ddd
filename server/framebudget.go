package server

import (
	"sync"

	"github.com/xchat-im/xchat/spec/wire"
)

// Bytes of request frames that may be read or handled at once
// (spec/15-limits.md): a frame's announced length is charged to its
// connection, its account (once authenticated) and the server before its
// payload is read; while any of the three is spent the request stream
// waits, within its request deadline (spec/03-framing.md section 3.6).
const (
	frameBudgetConn    = 4 << 20   // one client connection
	frameBudgetAccount = 16 << 20  // all connections of one account
	frameBudgetServer  = 256 << 20 // all client connections
)

// accountFrames holds the frame budget of each account with a connection,
// shared by the account's connections and dropped with the last of them.
type accountFrames struct {
	mu sync.Mutex
	m  map[string]*accountBudget
}

type accountBudget struct {
	b     *wire.Budget
	conns int
}

// join returns the budget of address for one more connection; the
// connection gives it back with leave.
func (a *accountFrames) join(address string) *wire.Budget {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.m == nil {
		a.m = make(map[string]*accountBudget)
	}
	ab := a.m[address]
	if ab == nil {
		ab = &accountBudget{b: wire.NewBudget(frameBudgetAccount)}
		a.m[address] = ab
	}
	ab.conns++
	return ab.b
}

// leave ends one connection's use of address's budget.
func (a *accountFrames) leave(address string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if ab := a.m[address]; ab != nil {
		if ab.conns--; ab.conns == 0 {
			delete(a.m, address)
		}
	}
}

// frameLimits returns what reading one request of c may hold: before
// authentication, one small frame charged to the connection and the
// server; after it, also the account.
func (c *conn) frameLimits() wire.StreamLimits {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.device == nil {
		return wire.StreamLimits{Max: wire.MaxPreAuthFrame, Budgets: []*wire.Budget{c.frames, c.s.frames}}
	}
	if c.accountBudget == nil { // authenticated as the connection ended
		return wire.StreamLimits{Max: wire.MaxFrame, Budgets: []*wire.Budget{c.frames, c.s.frames}}
	}
	return wire.StreamLimits{Max: wire.MaxFrame, Budgets: []*wire.Budget{c.frames, c.accountBudget, c.s.frames}}
}
