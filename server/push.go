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

// push sends a device its waiting envelopes on the push stream, then a
// caught-up frame, then new arrivals, until the connection ends. Each
// envelope is pushed at most once per connection; envelopes stay in the
// store until acknowledged.
func (c *conn) push(ctx context.Context, mb store.Mailbox) {
	wake, unsubscribe := c.s.hub.subscribe(mb)
	defer unsubscribe()
	st, err := c.qc.OpenUniStreamSync(ctx)
	if err != nil {
		return
	}
	defer st.Close() // FIN: the server ends the push stream (spec/03-framing.md)
	var cursor int64
	caughtUp := false
	for {
		pending, err := c.s.cfg.Store.Pending(ctx, mb, cursor, wire.MaxDeliveriesPerPush)
		if err != nil {
			if ctx.Err() == nil {
				c.log.Error("push: read mailbox", "err", err)
				c.qc.CloseWithError(wire.CloseInternal, "internal error")
			}
			return
		}
		if len(pending) > 0 {
			d := wire.Deliver{Deliveries: make([]wire.Delivery, 0, len(pending))}
			size := 0
			for _, e := range pending {
				if size+len(e.Sealed) > pushBudget && len(d.Deliveries) > 0 {
					break
				}
				size += len(e.Sealed)
				d.Deliveries = append(d.Deliveries, wire.Delivery{
					ID:         e.ID[:],
					Sealed:     e.Sealed,
					ReceivedAt: uint64(e.ReceivedAt.UnixMilli()),
					Lane:       uint8(e.Lane),
				})
				cursor = e.Seq
			}
			frame, err := wire.EncodePush(&d)
			if err == nil {
				st.SetWriteDeadline(time.Now().Add(wire.IdleTimeout))
				_, err = st.Write(frame)
			}
			if err != nil {
				return
			}
			// A short page means the mailbox was read to its end: say
			// caught-up now rather than after a steady flow of arrivals
			// pauses.
			if caughtUp || len(pending) == wire.MaxDeliveriesPerPush || len(d.Deliveries) < len(pending) {
				continue
			}
		}
		if !caughtUp {
			frame, _ := wire.EncodePush(&wire.CaughtUp{})
			st.SetWriteDeadline(time.Now().Add(wire.IdleTimeout))
			if _, err := st.Write(frame); err != nil {
				return
			}
			caughtUp = true
		}
		select {
		case <-ctx.Done():
			return
		case <-c.pushStop:
			return
		case <-wake:
		}
	}
}

// stopPush makes the connection's pusher end its stream; shutdown calls it.
func (c *conn) stopPush() {
	c.pushStopOnce.Do(func() { close(c.pushStop) })
}
