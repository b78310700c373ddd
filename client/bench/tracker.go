package bench

import (
	"sync"
	"sync/atomic"
	"time"
)

// Envelope states as the sender knows them.
const (
	stInFlight uint8 = iota // the send request has no answer yet
	stAccepted              // the server accepted it: it must be delivered exactly once
	stRejected              // the server refused it: it must never be delivered
	stUnknown               // the request failed: it may or may not be stored
)

type record struct {
	at         time.Time
	to         int32
	state      uint8
	deliveries uint32
}

type shard struct {
	mu sync.Mutex
	m  map[[16]byte]record
}

// tracker follows every envelope from its send to its deliveries.
type tracker struct {
	start time.Time
	// latencyFrom: envelopes sent before it are counted but left out of
	// the latency histogram (the warm-up).
	latencyFrom time.Time
	shards      [64]shard

	outstanding  atomic.Int64 // accepted and not yet delivered
	delivered    atomic.Int64 // first deliveries
	duplicated   atomic.Int64 // further deliveries
	misdelivered atomic.Int64 // pushed to another device than its recipient
	unknown      atomic.Int64 // deliveries of ids never sent
	lastDelivery atomic.Int64 // time of the last first delivery since start

	deliveredAccepted atomic.Int64 // set by audit
	hist              histogram
}

func (t *tracker) shard(id [16]byte) *shard { return &t.shards[id[0]&63] }

// sent records an envelope for device to about to be sent at at.
func (t *tracker) sent(id [16]byte, to int, at time.Time) {
	s := t.shard(id)
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[[16]byte]record)
	}
	s.m[id] = record{at: at, to: int32(to)}
	s.mu.Unlock()
}

// answered records the server's answer for an envelope.
func (t *tracker) answered(id [16]byte, state uint8) {
	s := t.shard(id)
	s.mu.Lock()
	rec := s.m[id]
	rec.state = state
	if state == stAccepted && rec.deliveries == 0 {
		t.outstanding.Add(1)
	}
	s.m[id] = rec
	s.mu.Unlock()
}

// deliver records a delivery of id to device dev at now.
func (t *tracker) deliver(id [16]byte, dev int, now time.Time) {
	s := t.shard(id)
	s.mu.Lock()
	rec, ok := s.m[id]
	if !ok {
		s.mu.Unlock()
		t.unknown.Add(1)
		return
	}
	rec.deliveries++
	s.m[id] = rec
	s.mu.Unlock()
	if int(rec.to) != dev {
		t.misdelivered.Add(1)
	}
	if rec.deliveries > 1 {
		t.duplicated.Add(1)
		return
	}
	if rec.state == stAccepted {
		t.outstanding.Add(-1)
	}
	t.delivered.Add(1)
	if !rec.at.Before(t.latencyFrom) {
		t.hist.record(now.Sub(rec.at))
	}
	since := int64(now.Sub(t.start))
	for {
		last := t.lastDelivery.Load()
		if since <= last || t.lastDelivery.CompareAndSwap(last, since) {
			break
		}
	}
}

// audit counts the accepted envelopes never delivered (lost) and the
// refused ones delivered all the same, and sets deliveredAccepted.
//
// An accepted envelope not delivered to a device whose connection failed
// (disconnected reports it) is not counted as lost but as stranded: it
// waits in the mailbox for a connection the run no longer has, so the run
// cannot tell.
func (t *tracker) audit(disconnected func(dev int) bool) (lost, stranded, deliveredRejected int64) {
	var ok int64
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, rec := range s.m {
			switch {
			case rec.state == stAccepted && rec.deliveries == 0 && disconnected(int(rec.to)):
				stranded++
			case rec.state == stAccepted && rec.deliveries == 0:
				lost++
			case rec.state == stAccepted:
				ok++
			case rec.state == stRejected && rec.deliveries > 0:
				deliveredRejected++
			}
		}
		s.mu.Unlock()
	}
	t.deliveredAccepted.Store(ok)
	return lost, stranded, deliveredRejected
}
