package federation

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// peer is the connection to one destination domain's homeserver, dialled
// on demand and reused for every request to it.
type peer struct {
	f      *Federation
	domain string

	mu sync.Mutex // held while dialling
	qc *quic.Conn
	// live is qc, for the call packet sender, which must not wait for a
	// dial (calls.go).
	live atomic.Pointer[quic.Conn]
}

// peer returns the peer of domain.
func (f *Federation) peer(domain string) *peer {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.peers[domain]
	if p == nil {
		p = &peer{f: f, domain: domain}
		f.peers[domain] = p
	}
	return p
}

// conn returns an open, hello'd connection, dialling when needed.
func (p *peer) conn(ctx context.Context) (*quic.Conn, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.qc != nil && p.qc.Context().Err() == nil {
		return p.qc, nil
	}
	p.qc = nil
	p.live.Store(nil)
	fctx, err := p.f.running()
	if err != nil {
		return nil, err
	}
	addr, err := p.f.resolve(ctx, p.domain)
	if err != nil {
		return nil, err
	}
	p.f.mu.Lock()
	tr := p.f.tr
	p.f.mu.Unlock()
	qc, err := tr.Dial(ctx, addr, p.f.dialTLS(p.domain), &quic.Config{
		HandshakeIdleTimeout: wire.HandshakeDeadline / 2,
		// No keep-alives: relays keep the connection busy while envelopes
		// are queued, and an idle connection closes after the idle timeout
		// rather than being held open to every domain ever contacted.
		MaxIdleTimeout:        wire.IdleTimeout,
		MaxIncomingStreams:    -1,
		MaxIncomingUniStreams: -1,
		// Call media goes to the peer in DATAGRAMs on this connection
		// (spec/12-calls.md section 12.4).
		EnableDatagrams: true,
	})
	if err != nil {
		return nil, fmt.Errorf("connect to %s at %s: %w", p.domain, addr, err)
	}
	var ok wire.FedHelloOK
	if err := wire.RoundTrip(ctx, qc, &wire.FedHello{Domain: p.f.cfg.Domain}, &ok); err != nil {
		qc.CloseWithError(wire.CloseNoError, "")
		// %v: the peer's refusal of this server is not an answer to the
		// request being relayed, so it must not reach a client as one.
		return nil, fmt.Errorf("hello to %s: %v", p.domain, err)
	}
	if ok.Domain != p.domain {
		qc.CloseWithError(wire.CloseProtocolViolation, "wrong domain")
		return nil, fmt.Errorf("hello to %s: the peer says it is %q", p.domain, ok.Domain)
	}
	// The connection ends with the federation.
	stop := context.AfterFunc(fctx, func() { qc.CloseWithError(wire.CloseServerShutdown, "server shutting down") })
	go func() {
		<-qc.Context().Done()
		stop()
		p.forget(qc)
	}()
	p.qc = qc
	p.live.Store(qc)
	p.f.cfg.Logger.Debug("federation connection", "peer", p.domain, "addr", addr.String())
	return qc, nil
}

// do sends one request to the peer. The dial and the request each get at
// most the request deadline (spec/03-framing.md), so a peer that stalls
// cannot hold a worker or a client's request longer.
func (p *peer) do(ctx context.Context, req wire.Request, resp any) error {
	dctx, cancel := context.WithTimeout(ctx, wire.RequestDeadline)
	qc, err := p.conn(dctx)
	cancel()
	if err != nil {
		return err
	}
	rctx, cancel := context.WithTimeout(ctx, wire.RequestDeadline)
	defer cancel()
	return wire.RoundTrip(rctx, qc, req, resp)
}

// forget drops the peer from the federation's table once its connection
// qc has ended, so that the table holds only live peers.
func (p *peer) forget(qc *quic.Conn) {
	p.mu.Lock()
	idle := p.qc == qc || p.qc == nil
	if p.qc == qc {
		p.qc = nil
	}
	p.live.CompareAndSwap(qc, nil)
	p.mu.Unlock()
	if !idle {
		return
	}
	p.f.mu.Lock()
	if p.f.peers[p.domain] == p {
		delete(p.f.peers, p.domain)
	}
	p.f.mu.Unlock()
}

func (p *peer) close() { p.closeWith(wire.CloseServerShutdown, "server shutting down") }

// closeWith closes the peer's connection, if any, with an application
// error code.
func (p *peer) closeWith(code uint64, reason string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.qc != nil {
		p.qc.CloseWithError(quic.ApplicationErrorCode(code), reason)
		p.qc = nil
		p.live.Store(nil)
	}
}
