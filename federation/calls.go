package federation

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// Calls across domains (spec/12-calls.md section 12.4): fed-call-join and
// fed-call-leave go over the peer request path like every federation
// request; media packets go out as QUIC DATAGRAMs on the connection this
// server dialled to the peer, and come in on the connections the peer
// dialled and proved with fed-hello (listener.go).

const (
	// packetQueueLen bounds the packets waiting for one destination
	// domain's sender. Every stream of every room linked to the domain
	// shares it: 1,000 audio streams are 25,000 packets a second each
	// way, and 256 packets (10 ms of them) overflowed whenever the
	// sender waited a moment for quic-go (BENCHMARKS.md, Calls). 2,048
	// is about 80 ms of such a link, beyond which late media is worth
	// less than none: about 400 KB of audio packets, at most 2.4 MB.
	packetQueueLen = 2048
	// packetReadQueueLen bounds the packets read from one inbound
	// federation connection and waiting for Local.PeerPacket: quic-go
	// drops the DATAGRAMs beyond its own 128 unread ones, so its reader
	// only moves them here (listener.go).
	packetReadQueueLen = 2048
	// packetLinkIdle is how long a destination's sender waits without a
	// packet before it ends.
	packetLinkIdle = time.Minute
)

// CallStats counts the call media packets of a federation.
type CallStats struct {
	// Sent is the packets handed to QUIC for a peer domain.
	Sent uint64
	// DroppedFull is the packets dropped because their destination's
	// queue was full; DroppedNoConn because there was no connection to
	// the destination; DroppedSend because QUIC refused them (the peer
	// does not take datagrams, or the packet does not fit in one);
	// DroppedRefused because the destination is the local domain, one the
	// domain policy refuses, or the packet is too large.
	DroppedFull, DroppedNoConn, DroppedSend, DroppedRefused uint64
	// Received is the packets handed to Local.PeerPacket; DroppedUnproved
	// those that arrived on a connection before its fed-hello;
	// DroppedReadFull those read from QUIC while Local.PeerPacket was
	// packetReadQueueLen packets behind.
	Received, DroppedUnproved, DroppedReadFull uint64
}

type callCounters struct {
	sent, full, noConn, send, refused, received, unproved, readFull atomic.Uint64
}

// CallStats returns the counts of call media packets since New.
func (f *Federation) CallStats() CallStats {
	c := &f.callCounts
	return CallStats{
		Sent: c.sent.Load(), DroppedFull: c.full.Load(), DroppedNoConn: c.noConn.Load(),
		DroppedSend: c.send.Load(), DroppedRefused: c.refused.Load(),
		Received: c.received.Load(), DroppedUnproved: c.unproved.Load(), DroppedReadFull: c.readFull.Load(),
	}
}

// CallJoin links the local room of handle with the room of the same
// identifier on domain by fed-call-join (spec/12-calls.md section 12.4)
// and returns the peer's handle of it. The peer's refusal comes back as
// its *wire.Error; the domain policy as domain_refused; a peer that cannot
// be reached as unavailable with a retry-after.
func (f *Federation) CallJoin(ctx context.Context, domain string, room, token []byte, handle uint32) (uint32, error) {
	if err := f.callPeer(domain); err != nil {
		return 0, err
	}
	var ok wire.FedCallJoinOK
	if err := f.peer(domain).do(ctx, &wire.FedCallJoin{Room: room, Token: token, Handle: handle}, &ok); err != nil {
		return 0, unavailable(domain, err)
	}
	return ok.Handle, nil
}

// CallLeave unlinks this domain from the peer's room of peerHandle by
// fed-call-leave.
func (f *Federation) CallLeave(ctx context.Context, domain string, peerHandle uint32) error {
	if err := f.callPeer(domain); err != nil {
		return err
	}
	var ok wire.OK
	if err := f.peer(domain).do(ctx, &wire.FedCallLeave{Handle: peerHandle}, &ok); err != nil {
		return unavailable(domain, err)
	}
	return nil
}

// callPeer checks that domain may be a call's linked domain.
func (f *Federation) callPeer(domain string) error {
	if domain == f.cfg.Domain {
		return errors.New("federation: a call link to the local domain")
	}
	if !f.Allowed(domain) {
		return wire.Errorf(wire.CodeDomainRefused, "%s does not federate with %s", f.cfg.Domain, domain)
	}
	return nil
}

// SendPacket sends a call media packet, already carrying the peer's
// handle, as a DATAGRAM on the outbound connection to domain. It never
// blocks: the packet waits in the destination's bounded queue for its
// sender, and is dropped (and counted) when that queue is full or there is
// no connection to the domain; in that case a connection is dialled in the
// background, for the packets that follow. SendPacket keeps pkt until it
// is sent: the caller must not change it afterwards.
func (f *Federation) SendPacket(domain string, pkt []byte) bool {
	if len(pkt) > wire.MaxCallPacket || domain == f.cfg.Domain || !f.Allowed(domain) {
		f.callCounts.refused.Add(1)
		return false
	}
	if f.liveConn(domain) == nil {
		f.callCounts.noConn.Add(1)
		f.links.kick(f, domain)
		return false
	}
	if !f.links.offer(f, domain, pkt) {
		f.callCounts.full.Add(1)
		return false
	}
	return true
}

// liveConn returns the open outbound connection to domain, or nil, without
// waiting for a dial in progress.
func (f *Federation) liveConn(domain string) *quic.Conn {
	f.mu.Lock()
	p := f.peers[domain]
	f.mu.Unlock()
	if p == nil {
		return nil
	}
	qc := p.live.Load()
	if qc == nil || qc.Context().Err() != nil {
		return nil
	}
	return qc
}

// packetLinks are the senders of call media packets, one per destination
// domain with recent packets.
type packetLinks struct {
	mu sync.RWMutex
	m  map[string]*packetLink
}

// packetLink is the sender of one destination domain: one goroutine
// drains its queue into DATAGRAMs, so that quic-go's blocking
// SendDatagram never holds the caller of SendPacket.
type packetLink struct {
	f      *Federation
	domain string
	queue  chan []byte
	dial   chan struct{} // asks for a connection; holds one request
	// failures counts the dials that failed in a row; next is when the
	// next may start (spec/08-federation.md section 8.9.3 backoff).
	failures int
	next     time.Time
}

// offer queues pkt for domain, starting its sender when needed; false
// when the queue is full or the federation is not running.
func (ls *packetLinks) offer(f *Federation, domain string, pkt []byte) bool {
	ls.mu.RLock()
	l := ls.m[domain]
	if l != nil {
		select {
		case l.queue <- pkt:
			ls.mu.RUnlock()
			return true
		default:
			ls.mu.RUnlock()
			return false
		}
	}
	ls.mu.RUnlock()
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l = ls.link(f, domain); l == nil {
		return false
	}
	select {
	case l.queue <- pkt:
		return true
	default:
		return false
	}
}

// kick asks domain's sender for a connection, starting it when needed.
func (ls *packetLinks) kick(f *Federation, domain string) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if l := ls.link(f, domain); l != nil {
		select {
		case l.dial <- struct{}{}:
		default:
		}
	}
}

// link returns domain's sender, starting it when there is none; nil when
// the federation is not running. ls.mu is held.
func (ls *packetLinks) link(f *Federation, domain string) *packetLink {
	if l := ls.m[domain]; l != nil {
		return l
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx == nil || f.ctx.Err() != nil {
		return nil
	}
	if ls.m == nil {
		ls.m = make(map[string]*packetLink)
	}
	l := &packetLink{f: f, domain: domain, queue: make(chan []byte, packetQueueLen), dial: make(chan struct{}, 1)}
	ls.m[domain] = l
	f.wg.Add(1) // under f.mu, before Stop waits
	go l.run(f.ctx)
	return l
}

// retire removes the idle sender l; false when packets arrived meanwhile.
func (ls *packetLinks) retire(l *packetLink) bool {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if len(l.queue) > 0 || len(l.dial) > 0 {
		return false
	}
	if ls.m[l.domain] == l {
		delete(ls.m, l.domain)
	}
	return true
}

// run sends the queued packets until ctx ends or no packet came for
// packetLinkIdle.
func (l *packetLink) run(ctx context.Context) {
	defer l.f.wg.Done()
	idle := time.NewTimer(packetLinkIdle)
	defer idle.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-l.dial:
			l.connect(ctx)
		case pkt := <-l.queue:
			l.send(pkt)
		case <-idle.C:
			if l.f.links.retire(l) {
				return
			}
		}
		idle.Reset(packetLinkIdle)
	}
}

// send sends one packet. SendDatagram waits while quic-go's own queue is
// full; meanwhile SendPacket fills l.queue and then drops.
func (l *packetLink) send(pkt []byte) {
	qc := l.f.liveConn(l.domain)
	if qc == nil {
		l.f.callCounts.noConn.Add(1)
		select {
		case l.dial <- struct{}{}:
		default:
		}
		return
	}
	if err := qc.SendDatagram(pkt); err != nil {
		l.f.callCounts.send.Add(1)
		return
	}
	l.f.callCounts.sent.Add(1)
}

// connect dials domain unless a connection is open or the backoff after
// failed dials has not passed. The packets that arrive meanwhile wait in
// the queue, or are dropped when it fills.
func (l *packetLink) connect(ctx context.Context) {
	if l.f.liveConn(l.domain) != nil || time.Now().Before(l.next) {
		return
	}
	dctx, cancel := context.WithTimeout(ctx, wire.RequestDeadline)
	defer cancel()
	if _, err := l.f.peer(l.domain).conn(dctx); err != nil {
		l.failures++
		l.next = time.Now().Add(jittered(l.f.cfg.Retry, l.f.cfg.MaxRetry, l.failures-1))
		if ctx.Err() == nil {
			l.f.cfg.Logger.Debug("call packets: no connection", "peer", l.domain, "err", err)
		}
		return
	}
	l.failures, l.next = 0, time.Time{}
}
