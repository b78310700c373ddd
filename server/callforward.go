package server

import (
	"bytes"
	"context"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// readDatagrams reads the media packets of an authenticated connection and
// forwards them until the connection ends (spec/12-calls.md section 12.5).
func (c *conn) readDatagrams(ctx context.Context, r *relay) {
	for {
		b, err := c.qc.ReceiveDatagram(ctx)
		if err != nil {
			return
		}
		r.fromMember(c, b)
	}
}

// startCallSender gives c its queue of media packets and the goroutine
// that sends them, once: a slow connection fills its own queue, and
// packets for it are dropped, without delaying anyone else's. r.mu is
// held.
func (c *conn) startCallSender(r *relay) {
	if c.callOut != nil {
		return
	}
	q := make(chan []byte, r.queueLen)
	c.callOut = q
	go func() {
		done := c.qc.Context().Done()
		for {
			select {
			case <-done:
				return
			case b := <-q:
				if err := c.qc.SendDatagram(b); err != nil {
					r.stats.sendFailed.Add(1)
				} else {
					r.stats.forwarded.Add(1)
				}
			}
		}
	}()
}

// enqueue queues pkt for the member connection d, or drops it when d's
// queue is full.
func (r *relay) enqueue(d *conn, pkt []byte) {
	select {
	case d.callOut <- pkt:
	default:
		r.stats.queueFull.Add(1)
	}
}

// fromMember forwards a packet that member connection c sent: to the
// room's other members unchanged, and to its linked domains with their
// handles.
func (r *relay) fromMember(c *conn, b []byte) {
	r.stats.received.Add(1)
	p, err := wire.ParseMediaPacket(b)
	if err != nil {
		r.stats.malformed.Add(1)
		return
	}
	c.callMu.Lock()
	m := c.calls[p.Handle]
	c.callMu.Unlock()
	if m == nil {
		r.stats.notMember.Add(1)
		return
	}
	now := time.Now()
	first := p.Index == 0
	switch {
	case !m.packets.refill(now):
		r.stats.packetRate.Add(1)
		return
	case first && !m.frames.refill(now):
		r.stats.frameRate.Add(1)
		return
	}
	m.packets.take()
	if first {
		m.frames.take()
	}
	v := m.room.view.Load()
	n := 0
	for _, d := range v.members {
		if d != c {
			r.enqueue(d, b)
			n++
		}
	}
	for _, l := range v.links {
		out := bytes.Clone(b)
		wire.SetPacketHandle(out, l.handle)
		if r.s.fed.SendPacket(l.domain, out) {
			r.stats.forwarded.Add(1)
			n++
		} else {
			r.stats.federation.Add(1)
		}
	}
	if v.pending > 0 {
		r.stats.unlinked.Add(uint64(v.pending))
	}
	m.room.forwarded.Add(uint64(n))
}

// fromPeer forwards a packet that linked domain origin sent to the room's
// members; never to another domain.
func (r *relay) fromPeer(origin string, b []byte) {
	r.stats.received.Add(1)
	p, err := wire.ParseMediaPacket(b)
	if err != nil {
		r.stats.malformed.Add(1)
		return
	}
	r.mu.RLock()
	rm := r.rooms[p.Handle]
	r.mu.RUnlock()
	if rm == nil {
		r.stats.notMember.Add(1)
		return
	}
	v := rm.view.Load()
	linked := false
	for _, l := range v.links {
		if l.domain == origin {
			linked = true
			break
		}
	}
	if !linked {
		r.stats.notMember.Add(1)
		return
	}
	for _, d := range v.members {
		r.enqueue(d, b)
	}
	rm.forwarded.Add(uint64(len(v.members)))
}
