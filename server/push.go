package server

import (
	"context"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// pushBudget bounds the sealed bytes in one deliver frame, leaving room for
// the frame's own encoding under wire.MaxFrame.
const pushBudget = wire.MaxFrame - 64<<10

// maxPushedSet bounds the ids a pusher remembers; past it, it forgets them
// and may push an unacknowledged envelope again (delivery is at least
// once).
const maxPushedSet = 2 * wire.MailboxMaxEnvelopes

// push sends a device its waiting envelopes on the push stream, then a
// caught-up frame, then new arrivals, until the connection ends or
// shutdown stops it. Envelopes stay in the store until acknowledged.
//
// Each pass reads the mailbox from its start and skips what this
// connection already pushed, so an envelope is found even when a store
// shared by several processes commits envelopes out of sequence order. A
// pass runs at every wake-up, and every poll interval when the store is
// shared (a lost notification then delays nothing longer than that).
func (c *conn) push(ctx context.Context, mb store.Mailbox) {
	wake, takenOver, unsubscribe := c.s.hub.subscribe(mb)
	defer unsubscribe()
	st, err := c.qc.OpenUniStreamSync(ctx)
	if err != nil {
		return
	}
	defer st.Close() // FIN: the server ends the push stream (spec/03-framing.md)
	var poll <-chan time.Time
	if c.s.cfg.PollInterval > 0 {
		t := time.NewTicker(c.s.cfg.PollInterval)
		defer t.Stop()
		poll = t.C
	}
	pushed := make(map[store.EnvelopeID]struct{})
	// With a store that makes envelopes visible in sequence order, a pass
	// resumes after the last envelope the previous pass saw: nothing can
	// appear below it later. Otherwise every pass starts at 0.
	var resume *int64
	if o, ok := c.s.cfg.Store.(seqOrdered); ok && o.CommitsInSeqOrder() {
		resume = new(int64)
	}
	caughtUp := false
	write := func(v any) bool {
		frame, err := wire.EncodePush(v)
		if err != nil {
			return false
		}
		st.SetWriteDeadline(time.Now().Add(wire.IdleTimeout))
		_, err = st.Write(frame)
		return err == nil
	}
	for {
		if !c.pushPass(ctx, mb, pushed, resume, write) {
			return
		}
		// Everything waiting when the pass started has been pushed.
		if !caughtUp {
			if !write(&wire.CaughtUp{}) {
				return
			}
			caughtUp = true
		}
		select {
		case <-ctx.Done():
			return
		case <-c.pushStop:
			return
		case <-takenOver:
			// A newer connection of the device pushes now; FIN ends
			// this push stream (the connection stays for requests).
			return
		case <-wake:
		case <-poll:
		}
	}
}

// seqOrdered is implemented by stores that can promise that envelopes of a
// mailbox become visible in sequence order (one writer), so that a pusher
// need not re-read what it already saw.
type seqOrdered interface {
	CommitsInSeqOrder() bool
}

// pushPass pushes every waiting envelope not yet in pushed, page by page,
// starting after *resume when resume is not nil and moving it on. It
// returns false when the connection or the store failed.
func (c *conn) pushPass(ctx context.Context, mb store.Mailbox, pushed map[store.EnvelopeID]struct{}, resume *int64, write func(any) bool) bool {
	var cursor int64
	if resume != nil {
		cursor = *resume
		defer func() { *resume = cursor }()
	}
	for {
		page, err := c.s.cfg.Store.Pending(ctx, mb, cursor, wire.MaxDeliveriesPerPush)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Error("push: read mailbox", "err", err)
				c.qc.CloseWithError(wire.CloseInternal, "internal error")
			}
			return false
		}
		d := wire.Deliver{}
		size := 0
		for _, e := range page {
			cursor = e.Seq
			if _, done := pushed[e.ID]; done {
				continue
			}
			if len(d.Deliveries) == wire.MaxDeliveriesPerPush || (size+len(e.Sealed) > pushBudget && len(d.Deliveries) > 0) {
				if !write(&d) {
					return false
				}
				d, size = wire.Deliver{}, 0
			}
			size += len(e.Sealed)
			d.Deliveries = append(d.Deliveries, wire.Delivery{
				ID:         e.ID[:],
				Sealed:     e.Sealed,
				ReceivedAt: uint64(e.ReceivedAt.UnixMilli()),
				Origin:     e.Origin,
				Lane:       uint8(e.Lane),
			})
			if len(pushed) >= maxPushedSet {
				clear(pushed)
			}
			pushed[e.ID] = struct{}{}
		}
		if len(d.Deliveries) > 0 && !write(&d) {
			return false
		}
		if len(page) < wire.MaxDeliveriesPerPush {
			return true
		}
	}
}

// stopPush makes the connection's pusher end its stream; shutdown calls it.
func (c *conn) stopPush() {
	c.pushStopOnce.Do(func() { close(c.pushStop) })
}
