package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// authState is where a connection is in authentication.
type authState uint8

const (
	unauthenticated authState = iota
	authenticating            // a register or authenticate request is running
	authenticated
)

// conn is one client connection.
type conn struct {
	s   *Server
	qc  *quic.Conn
	log *slog.Logger
	// addr is the key of the peer's address for per-address limits.
	addr string

	mu     sync.Mutex
	state  authState
	device *store.Device // set once authenticated
	// claim is the device an authenticate or linked register is about to
	// authenticate the connection as, set before it reads the store;
	// claimRemoved says a removal of that device was seen meanwhile
	// (disconnect), which makes the authentication fail.
	claim        *store.Mailbox
	claimRemoved bool
	// removed is set when the device was removed (link.go): the
	// connection's requests are refused until it is closed.
	removed atomic.Bool
	// authed is closed on authentication.
	authed chan struct{}
	// pushStop, closed by stopPush, tells the pusher to end its stream.
	pushStop     chan struct{}
	pushStopOnce sync.Once

	// account is the account counted in Server.accountConns for this
	// connection, once authenticated; guarded by Server.mu.
	account string
	// frames and accountBudget bound the request frames read at once on
	// the connection and by its account (framebudget.go); accountBudget
	// is set on authentication, unless the connection ended (ended)
	// before.
	frames, accountBudget *wire.Budget
	ended                 bool

	// calls are the call rooms the connection is in, by handle
	// (callrooms.go); guarded by callMu, changed under relay.mu too.
	callMu sync.Mutex
	calls  map[uint32]*membership
	// callsEnded is set, under relay.mu, once the closing connection left
	// its rooms: a call-join still in flight then admits it to none.
	callsEnded bool
	// callOut queues the media packets for this connection; set once, on
	// its first call-join, under relay.mu (callforward.go).
	callOut chan []byte
}

func (s *Server) newConn(qc *quic.Conn) *conn {
	c := &conn{s: s, qc: qc, log: s.log.With("remote", qc.RemoteAddr().String()),
		addr: addressKey(qc.RemoteAddr()), authed: make(chan struct{}), pushStop: make(chan struct{}),
		frames: wire.NewBudget(frameBudgetConn)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || len(s.conns) >= s.cfg.MaxConnections {
		return nil
	}
	if lim := s.cfg.Limits.ConnsPerAddress; lim > 0 && s.addrConns[c.addr] >= lim {
		return nil
	}
	s.conns[c] = struct{}{}
	s.addrConns[c.addr]++
	return c
}

// forget removes a closed connection from the server and its counts.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.conns, c)
	decrement(s.addrConns, c.addr)
	if c.account != "" {
		decrement(s.accountConns, c.account)
	}
}

func decrement(m map[string]int, k string) {
	if m[k] <= 1 {
		delete(m, k)
	} else {
		m[k]--
	}
}

func (c *conn) serve(ctx context.Context) {
	defer func() {
		if c.s.calls != nil {
			c.s.calls.leaveAll(c)
		}
		c.s.forget(c)
		c.mu.Lock()
		c.ended = true
		var joined string
		if c.accountBudget != nil {
			joined = c.device.Address
		}
		c.mu.Unlock()
		if joined != "" {
			c.s.accountFrames.leave(joined)
		}
	}()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go func() {
		select {
		case <-c.authed:
		case <-time.After(wire.AuthDeadline):
			c.qc.CloseWithError(wire.CloseAuthTimeout, "not authenticated in time")
		case <-c.qc.Context().Done():
		}
	}()
	for {
		st, err := c.qc.AcceptStream(ctx)
		if err != nil {
			return
		}
		if !c.s.beginRequest() {
			st.CancelRead(wire.StreamRequestCancelled)
			wire.WriteResponse(st, wire.EncodeError(wire.Errorf(wire.CodeUnavailable, "server shutting down")))
			continue
		}
		if c.authenticated() == nil {
			// Before authentication requests are handled one at a time: a
			// client needs no more, and an unauthenticated peer then holds
			// at most one small frame (wire.MaxPreAuthFrame) in memory.
			c.handleStream(ctx, st)
			c.s.requests.Done()
			continue
		}
		go func() {
			defer c.s.requests.Done()
			c.handleStream(ctx, st)
		}()
	}
}

// handleStream reads one request frame, answers it and closes the stream.
// Before authentication frames are limited to wire.MaxPreAuthFrame; the
// frame memory budgets of framebudget.go apply.
//
// A handler may hold bytes of the frame budgets for its response (blobs.go);
// they are given back once the response was written or the stream failed.
func (c *conn) handleStream(ctx context.Context, st *quic.Stream) {
	var hold responseHold
	defer hold.done()
	wire.ServeStreamWithin(st, c.frameLimits(), func(payload []byte) []byte {
		resp, err := c.handlePayload(ctx, &hold, payload)
		if err != nil {
			var pe *wire.Error
			if !errors.As(err, &pe) {
				c.log.Error("request failed", "err", err)
			}
			return wire.EncodeError(err)
		}
		return resp
	}, func(err error) {
		// The peer reset the stream, timed out or went away.
		c.log.Debug("request stream failed", "err", err)
	})
}

func (c *conn) handlePayload(ctx context.Context, hold *responseHold, payload []byte) ([]byte, error) {
	req, err := wire.DecodeRequest(payload)
	if err != nil {
		return nil, err
	}
	return c.handle(ctx, hold, req)
}

// authenticated returns the device of the connection, or nil.
func (c *conn) authenticated() *store.Device {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.device
}

// beginAuth claims the connection for one register or authenticate
// request; it fails when the connection is authenticated or another such
// request is running. The caller must call endAuth.
func (c *conn) beginAuth() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state != unauthenticated {
		return wire.Errorf(wire.CodeAlreadyAuthenticated, "connection already authenticated or authenticating")
	}
	c.state = authenticating
	return nil
}

// claimDevice records that the running register or authenticate is about
// to authenticate the connection as mb. It must be called before the store
// is read for mb: a removal of mb either committed before that read, which
// then finds no device, or finds the claim (disconnect) and makes
// finishAuth fail. So no connection becomes authenticated as a device
// whose removal has been answered.
func (c *conn) claimDevice(mb store.Mailbox) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.claim, c.claimRemoved = &mb, false
}

// finishAuth authenticates the connection as d and starts its pusher,
// unless d was removed since claimDevice (then auth_failed) or the account
// has as many connections as it may (then rate_limited; with registered
// set, for a device the request has just created, the limit was checked
// before and is not checked again, so that its creator always learns its
// identifier). On failure the connection stays unauthenticated.
func (c *conn) finishAuth(d *store.Device, registered bool) error {
	s := c.s
	s.mu.Lock() // before c.mu, as in disconnect
	defer s.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.claimRemoved || c.claim == nil || *c.claim != (store.Mailbox{Address: d.Address, Device: d.ID}) {
		c.state, c.claim, c.claimRemoved = unauthenticated, nil, false
		return wire.Errorf(wire.CodeAuthFailed, "device authentication failed")
	}
	if !registered {
		if err := s.accountFull(d.Address); err != nil {
			c.state, c.claim = unauthenticated, nil
			return err
		}
	}
	s.accountConns[d.Address]++
	c.account = d.Address
	c.state, c.device, c.claim = authenticated, d, nil
	if !c.ended {
		c.accountBudget = c.s.accountFrames.join(d.Address)
	}
	close(c.authed)
	go c.push(c.qc.Context(), store.Mailbox{Address: d.Address, Device: d.ID})
	if s.calls != nil {
		go c.readDatagrams(c.qc.Context(), s.calls)
	}
	return nil
}

// accountFull returns rate_limited when the account has as many
// authenticated connections as Limits.ConnsPerAccount. s.mu is held.
func (s *Server) accountFull(address string) error {
	if lim := s.cfg.Limits.ConnsPerAccount; lim > 0 && s.accountConns[address] >= lim {
		return &wire.Error{Code: wire.CodeRateLimited, RetryAfter: accountFullRetry,
			Message: fmt.Sprintf("at most %d connections per account are open at once; close one of the account's connections", lim)}
	}
	return nil
}

// checkAccountFull is accountFull for callers without s.mu.
func (s *Server) checkAccountFull(address string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.accountFull(address)
}

// accountFullRetry is the retry-after of a refusal by the connection limit
// per account: how soon a client may look for a freed slot.
const accountFullRetry = 10 * time.Second

// endAuth ends what beginAuth started when finishAuth did not run or
// failed: the connection is unauthenticated again.
func (c *conn) endAuth() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.state == authenticating {
		c.state, c.claim, c.claimRemoved = unauthenticated, nil, false
	}
}

// matchRemoved reports whether the connection is authenticated as mb, or, when
// it is authenticating as mb, makes that authentication fail.
func (c *conn) matchRemoved(mb store.Mailbox) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.device != nil {
		return c.device.Address == mb.Address && c.device.ID == mb.Device
	}
	if c.claim != nil && *c.claim == mb {
		c.claimRemoved = true
	}
	return false
}
