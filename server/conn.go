package server

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"sync"
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
	// authed is closed on authentication.
	authed chan struct{}
	// pushStop, closed by stopPush, tells the pusher to end its stream.
	pushStop     chan struct{}
	pushStopOnce sync.Once
}

func (s *Server) newConn(qc *quic.Conn) *conn {
	c := &conn{s: s, qc: qc, log: s.log.With("remote", qc.RemoteAddr().String()),
		authed: make(chan struct{}), pushStop: make(chan struct{})}
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
			writeResponse(st, wire.EncodeError(wire.Errorf(wire.CodeUnavailable, "server shutting down")))
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
func (c *conn) handleStream(ctx context.Context, st *quic.Stream) {
	st.SetReadDeadline(time.Now().Add(wire.RequestDeadline))
	payload, err := c.readRequest(st)
	if err != nil {
		var pe *wire.Error
		if !errors.As(err, &pe) {
			// The peer reset the stream, timed out or went away: there is
			// no one to answer.
			c.log.Debug("request stream failed", "err", err)
			st.CancelRead(wire.StreamRequestCancelled)
			st.CancelWrite(wire.StreamRequestCancelled)
			return
		}
		st.CancelRead(wire.StreamRequestCancelled)
		writeResponse(st, wire.EncodeError(err))
		return
	}
	resp, err := c.handlePayload(ctx, payload)
	if err != nil {
		var pe *wire.Error
		if !errors.As(err, &pe) {
			c.log.Error("request failed", "err", err)
		}
		resp = wire.EncodeError(err)
	}
	writeResponse(st, resp)
}

// writeResponse writes a response frame and the stream's FIN.
func writeResponse(st *quic.Stream, b []byte) {
	st.SetWriteDeadline(time.Now().Add(wire.RequestDeadline))
	if _, err := st.Write(b); err != nil {
		st.CancelWrite(wire.StreamRequestCancelled)
		return
	}
	st.Close()
}

// readRequest reads the one request frame of a stream and its FIN. The
// frame's bytes count against the server's request budget until the
// request is answered; before authentication frames are limited to
// wire.MaxPreAuthFrame.
func (c *conn) readRequest(st *quic.Stream) ([]byte, error) {
	max := wire.MaxFrame
	if c.authenticated() == nil {
		max = wire.MaxPreAuthFrame
	}
	payload, err := wire.ReadFrame(st, max)
	if errors.Is(err, wire.ErrEndOfStream) {
		return nil, wire.Errorf(wire.CodeMalformed, "stream ended without a request")
	}
	if err != nil {
		return nil, err
	}
	// Exactly one frame, then FIN.
	var one [1]byte
	if n, err := st.Read(one[:]); n > 0 || !errors.Is(err, io.EOF) {
		if n > 0 {
			return nil, wire.Errorf(wire.CodeMalformed, "more than one frame on a request stream")
		}
		return nil, err
	}
	return payload, nil
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
	close(c.authed)
	go c.push(c.qc.Context(), store.Mailbox{Address: d.Address, Device: d.ID})
}
