package federation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// inbound is an accepted federation connection.
type inbound struct {
	f   *Federation
	qc  *quic.Conn
	log *slog.Logger

	mu     sync.Mutex
	origin string // set by a successful fed-hello
	hello  chan struct{}
	// frames bounds the request frames read at once on the connection,
	// originFrames (set by fed-hello) those of its origin domain.
	frames, originFrames *wire.Budget
	// relays counts the relay requests being handled (section 8.5).
	relays atomic.Int32
}

// ServeConn serves an accepted federation connection (ALPN xchat-fed/1)
// until it ends or ctx is done: fed-hello first, then relays,
// key-directory queries and blob reads from the origin domain it proved.
func (f *Federation) ServeConn(ctx context.Context, qc *quic.Conn) {
	f.mu.Lock()
	f.conns[qc] = struct{}{}
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.conns, qc)
		f.mu.Unlock()
	}()
	in := &inbound{f: f, qc: qc, log: f.cfg.Logger.With("remote", qc.RemoteAddr().String()), hello: make(chan struct{}),
		frames: wire.NewBudget(fedFrameBudgetConn)}
	defer func() {
		if o := in.originDomain(); o != "" {
			f.origins.leave(o)
		}
	}()
	// Call media from the origin (spec/12-calls.md section 12.4), read
	// while the connection is served; a packet before fed-hello is
	// dropped. The reader ends with ServeConn, which may return on a
	// connection that stays open (Stop began).
	pctx, stopPackets := context.WithCancel(ctx)
	var packets sync.WaitGroup
	defer packets.Wait()
	defer stopPackets()
	packets.Go(func() { in.readPackets(pctx) })
	go func() {
		select {
		case <-in.hello:
		case <-time.After(wire.AuthDeadline):
			qc.CloseWithError(wire.CloseAuthTimeout, "no fed-hello in time")
		case <-qc.Context().Done():
		}
	}()
	for {
		st, err := qc.AcceptStream(ctx)
		if err != nil {
			return
		}
		if !f.beginHandler() {
			st.CancelRead(wire.StreamRequestCancelled)
			st.CancelWrite(wire.StreamRequestCancelled)
			return
		}
		if in.originDomain() == "" {
			// Before fed-hello: one small request at a time.
			in.serveStream(ctx, st)
			f.handlers.Done()
			continue
		}
		go func() {
			defer f.handlers.Done()
			in.serveStream(ctx, st)
		}()
	}
}

// readPackets hands the DATAGRAMs of the connection to Local.PeerPacket
// with the origin the connection proved, and drops (and counts) those
// that arrive before fed-hello, until the connection ends. It returns at
// once when datagrams are not enabled on the connection.
//
// quic-go keeps at most 128 unread DATAGRAMs of a connection and drops
// the others: at 25,000 packets a second that is 5 ms. So the goroutine
// that reads them from quic-go does nothing else; another hands them to
// Local.PeerPacket from a queue of packetReadQueueLen, and when that is
// full the packet is dropped and counted here rather than in quic-go.
func (in *inbound) readPackets(ctx context.Context) {
	if !in.qc.ConnectionState().SupportsDatagrams.Local {
		return
	}
	c := &in.f.callCounts
	queue := make(chan []byte, packetReadQueueLen)
	var handing sync.WaitGroup
	defer handing.Wait()
	defer close(queue)
	var origin string // fed-hello sets it once
	handing.Go(func() {
		for pkt := range queue {
			c.received.Add(1)
			in.f.cfg.Local.PeerPacket(origin, pkt)
		}
	})
	for {
		pkt, err := in.qc.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		if origin == "" {
			// Written before the first packet is queued, read by the
			// other goroutine only after receiving one.
			if origin = in.originDomain(); origin == "" {
				c.unproved.Add(1)
				continue
			}
		}
		select {
		case queue <- pkt:
		default:
			c.readFull.Add(1)
		}
	}
}

func (in *inbound) originDomain() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.origin
}

// serveStream answers one request stream. A handler may hold bytes of the
// frame budgets for its response (blobs.go); they are given back once the
// response was written or the stream failed.
func (in *inbound) serveStream(ctx context.Context, st *quic.Stream) {
	var hold responseHold
	defer hold.done()
	wire.ServeStreamWithin(st, in.frameLimits(), func(payload []byte) []byte {
		resp, err := in.handle(ctx, &hold, payload)
		if err != nil {
			var pe *wire.Error
			if !errors.As(err, &pe) {
				in.log.Error("federation request failed", "err", err)
			}
			return wire.EncodeError(err)
		}
		return resp
	}, func(err error) { in.log.Debug("federation stream failed", "err", err) })
}

func (in *inbound) handle(ctx context.Context, hold *responseHold, payload []byte) ([]byte, error) {
	req, err := wire.DecodeFedRequest(payload)
	if err != nil {
		return nil, err
	}
	if h, ok := req.(*wire.FedHello); ok {
		return in.fedHello(h)
	}
	origin := in.originDomain()
	if origin == "" {
		return nil, wire.Errorf(wire.CodePeerUnauthenticated, "send fed-hello first")
	}
	local := in.f.cfg.Local
	switch r := req.(type) {
	case *wire.Relay:
		// Section 8.5: at most 16 relay requests in flight on one
		// connection; a dialler that sends more has the excess refused
		// as a whole and tries it again later.
		if in.relays.Add(1) > wire.MaxRelaysInFlight {
			in.relays.Add(-1)
			return nil, &wire.Error{Code: wire.CodeRateLimited, RetryAfter: relayRetryAfter,
				Message: fmt.Sprintf("more than %d relay requests in flight on one connection", wire.MaxRelaysInFlight)}
		}
		defer in.relays.Add(-1)
		return in.relay(ctx, origin, r)
	case *wire.ServerInfo:
		return wire.EncodeSuccess(local.ServerInfo())
	case *wire.GetDevices:
		if err := in.query(origin); err != nil {
			return nil, err
		}
		ok, err := local.GetDevices(ctx, r)
		if err != nil {
			return nil, err
		}
		return wire.EncodeSuccess(ok)
	case *wire.ClaimKeyPackage:
		if err := in.query(origin); err != nil {
			return nil, err
		}
		ok, err := local.ClaimKeyPackage(ctx, r)
		if err != nil {
			return nil, err
		}
		return wire.EncodeSuccess(ok)
	case *wire.FedBlobGet:
		return in.blobGet(ctx, origin, hold, r)
	case *wire.FedCallJoin:
		h, err := local.PeerCallJoin(origin, r.Room, r.Token, r.Handle)
		if err != nil {
			return nil, err
		}
		// The room's packets to origin go on a connection this server
		// dials: have it ready for the first.
		in.f.links.kick(in.f, origin)
		return wire.EncodeSuccess(&wire.FedCallJoinOK{Handle: h})
	case *wire.FedCallLeave:
		local.PeerCallLeave(origin, r.Handle)
		return wire.EncodeSuccess(&wire.OK{})
	}
	return nil, wire.Errorf(wire.CodeUnknownRequest, "%T", req)
}

// fedHello checks that the peer's certificate covers the domain it names.
func (in *inbound) fedHello(h *wire.FedHello) ([]byte, error) {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.origin != "" {
		return nil, wire.Errorf(wire.CodeAlreadyAuthenticated, "fed-hello already done")
	}
	f := in.f
	if h.Domain == f.cfg.Domain {
		return nil, wire.Errorf(wire.CodePeerUnauthenticated, "a peer cannot be %s itself", h.Domain)
	}
	// The certificate first, so that an unauthenticated party cannot probe
	// the domain policy (spec/08-federation.md).
	if err := f.verifyPeer(in.qc.ConnectionState().TLS, h.Domain); err != nil {
		in.log.Debug("federation peer not authenticated", "claimed", h.Domain, "err", err)
		return nil, wire.Errorf(wire.CodePeerUnauthenticated, "%v", err)
	}
	if !f.Allowed(h.Domain) {
		in.log.Debug("federation refused by domain policy", "origin", h.Domain)
		return nil, wire.Errorf(wire.CodeDomainRefused, "%s does not federate with %s", f.cfg.Domain, h.Domain)
	}
	frames, ok := f.origins.join(h.Domain)
	if !ok {
		in.log.Debug("federation peer has too many connections", "origin", h.Domain)
		return nil, &wire.Error{Code: wire.CodeRateLimited, RetryAfter: wire.IdleTimeout,
			Message: fmt.Sprintf("%s has %d connections to %s already", h.Domain, maxConnsPerOrigin, f.cfg.Domain)}
	}
	in.origin, in.originFrames = h.Domain, frames
	close(in.hello)
	in.log.Debug("federation peer authenticated", "origin", h.Domain)
	return wire.EncodeSuccess(&wire.FedHelloOK{Domain: f.cfg.Domain})
}

// relayRetryAfter is the retry-after of a relay refused for exceeding the
// relays in flight of section 8.5.
const relayRetryAfter = time.Second

// query charges one key-directory request to the origin's budget.
func (in *inbound) query(origin string) error {
	if ok, retry := in.f.queryBudget.Allow(origin, time.Now()); !ok {
		return &wire.Error{Code: wire.CodeRateLimited, Message: "key-directory budget of " + origin + " spent", RetryAfter: retry}
	}
	return nil
}

// relay admits envelopes from origin, within its budget.
func (in *inbound) relay(ctx context.Context, origin string, r *wire.Relay) ([]byte, error) {
	now := time.Now()
	results := make([]wire.Code, len(r.Envelopes))
	admit := make([]wire.Envelope, 0, len(r.Envelopes))
	index := make([]int, 0, len(r.Envelopes))
	for i := range r.Envelopes {
		if ok, _ := in.f.relayBudget.Allow(origin, now); !ok {
			results[i] = wire.CodeRateLimited
			continue
		}
		admit = append(admit, r.Envelopes[i])
		index = append(index, i)
	}
	if len(admit) > 0 {
		codes, err := in.f.cfg.Local.AdmitRelay(ctx, origin, admit)
		if err != nil {
			return nil, err
		}
		for j, c := range codes {
			results[index[j]] = c
		}
	}
	return wire.EncodeSuccess(&wire.RelayOK{Results: results})
}
