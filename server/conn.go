package server

import (
	"context"
	"errors"
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

	mu     sync.Mutex
	state  authState
	device *store.Device // set once authenticated
	// removed is set when the device was removed (link.go): the
	// connection's requests are refused until it is closed.
	removed atomic.Bool
	// authed is closed on authentication.
	authed chan struct{}
	// pushStop, closed by stopPush, tells the pusher to end its stream.
	pushStop     chan struct{}
	pushStopOnce sync.Once
	// frames and account bound the request frames read at once on the
	// connection and by its account (framebudget.go); account is set on
	// authentication, unless the connection ended (ended) before.
	frames, account *wire.Budget
	ended           bool
}

func (s *Server) newConn(qc *quic.Conn) *conn {
	c := &conn{s: s, qc: qc, log: s.log.With("remote", qc.RemoteAddr().String()),
		authed: make(chan struct{}), pushStop: make(chan struct{}), frames: wire.NewBudget(frameBudgetConn)}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || len(s.conns) >= s.cfg.MaxConnections {
		return nil
	}
	s.conns[c] = struct{}{}
	return c
}

func (c *conn) serve(ctx context.Context) {
	defer func() {
		c.s.mu.Lock()
		delete(c.s.conns, c)
		c.s.mu.Unlock()
		c.mu.Lock()
		c.ended = true
		var joined string
		if c.account != nil {
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
func (c *conn) handleStream(ctx context.Context, st *quic.Stream) {
	wire.ServeStreamWithin(st, c.frameLimits(), func(payload []byte) []byte {
		resp, err := c.handlePayload(ctx, payload)
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

func (c *conn) handlePayload(ctx context.Context, payload []byte) ([]byte, error) {
	req, err := wire.DecodeRequest(payload)
	if err != nil {
		return nil, err
	}
	return c.handle(ctx, req)
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

// endAuth ends what beginAuth started: with a device, the connection is
// authenticated as it and its pusher starts; with nil, it is not.
func (c *conn) endAuth(d *store.Device) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if d == nil {
		c.state = unauthenticated
		return
	}
	c.state, c.device = authenticated, d
	if !c.ended {
		c.account = c.s.accountFrames.join(d.Address)
	}
	close(c.authed)
	go c.push(c.qc.Context(), store.Mailbox{Address: d.Address, Device: d.ID})
}
