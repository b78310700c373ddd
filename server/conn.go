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

// conn is one client connection.
type conn struct {
	s   *Server
	qc  *quic.Conn
	log *slog.Logger

	mu     sync.Mutex
	device *store.Device // set once authenticated
	// authed is closed on authentication.
	authed chan struct{}
}

func (s *Server) newConn(qc *quic.Conn) *conn {
	c := &conn{s: s, qc: qc, log: s.log.With("remote", qc.RemoteAddr().String()), authed: make(chan struct{})}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
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
			writeAndClose(st, wire.EncodeError(wire.Errorf(wire.CodeUnavailable, "server shutting down")))
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
	st.SetDeadline(time.Now().Add(wire.RequestDeadline))
	resp, err := c.readAndHandle(ctx, st)
	if err != nil {
		var pe *wire.Error
		if !errors.As(err, &pe) {
			c.log.Error("request failed", "err", err)
		}
		st.CancelRead(wire.StreamRequestCancelled)
		writeAndClose(st, wire.EncodeError(err))
		return
	}
	writeAndClose(st, resp)
}

func writeAndClose(st *quic.Stream, b []byte) {
	st.Write(b)
	st.Close()
}

func (c *conn) readAndHandle(ctx context.Context, st *quic.Stream) ([]byte, error) {
	payload, err := wire.ReadFrame(st, wire.MaxFrame)
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
		return nil, wire.Errorf(wire.CodeMalformed, "request stream not finished: %v", err)
	}
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

// setDevice marks the connection authenticated and starts its pusher.
// It fails when the connection is already authenticated.
func (c *conn) setDevice(ctx context.Context, d store.Device) error {
	c.mu.Lock()
	if c.device != nil {
		c.mu.Unlock()
		return wire.ErrAlreadyAuthenticated
	}
	c.device = &d
	c.mu.Unlock()
	close(c.authed)
	go c.push(c.qc.Context(), store.Mailbox{Address: d.Address, Device: d.ID})
	return nil
}
