package client

import (
	"context"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// callSignal acts on a call signal that was received and stored
// (spec/12-calls.md section 12.2) and reports it through o.OnCall. It runs
// in the receive path; signals it sends in answer (ringing, busy, a
// hang-up after a lost tie-break) do not fail the receive.
func (cl *Client) callSignal(ctx context.Context, m Message, o ReceiveOptions) {
	if o.OnCall != nil {
		cl.calls.mu.Lock()
		cl.calls.onCall = o.OnCall
		cl.calls.mu.Unlock()
	}
	sig := m.Call
	from := wire.Mailbox{Address: m.From, Device: m.FromDevice}
	own := m.From == cl.id.Address
	u := CallUpdate{CallID: sig.CallID, Group: m.Group, From: m.From, Device: m.FromDevice, Reason: sig.Reason}
	c := cl.findCall(sig.CallID)
	report := func(k CallUpdateKind) {
		u.Kind = k
		if c != nil {
			c.update(u)
		}
		cl.reportCall(u)
	}

	switch sig.Kind {
	case wire.SignalInvite:
		if own || c != nil {
			return // this account's own call, from another device
		}
		in := &IncomingCall{ID: sig.CallID, Group: m.Group, Direct: m.Direct, From: m.From, Device: m.FromDevice,
			Media: sig.Media, SentAt: m.SentAt, Room: sig.Room, Token: sig.Token}
		u.Incoming = in
		left := time.Until(m.SentAt.Add(cl.ringTimeout()))
		switch {
		case left <= 0:
			report(CallMissed)
		case cl.inCall() && m.Direct:
			cl.sendSignal(ctx, m.Group, &wire.CallSignal{CallID: sig.CallID, Kind: wire.SignalBusy})
			report(CallMissed)
		default:
			cl.ring(in, left)
			if m.Direct {
				cl.sendSignal(ctx, m.Group, &wire.CallSignal{CallID: sig.CallID, Kind: wire.SignalRinging})
			}
			report(CallRinging)
		}

	case wire.SignalRinging, wire.SignalBusy:
		if c == nil || c.role != roleCaller {
			return
		}
		c.mu.Lock()
		c.heard[from] = true
		allBusy := false
		if sig.Kind == wire.SignalBusy {
			c.busy[from] = true
			allBusy = len(c.busy) == len(c.heard) && c.partner == nil
		}
		c.mu.Unlock()
		if sig.Kind == wire.SignalRinging {
			report(CallRingingRemote)
			return
		}
		report(CallBusy)
		if allBusy {
			c.end(ctx, nil)
		}

	case wire.SignalAccept:
		if c == nil {
			if !own {
				return
			}
			cl.calls.mu.Lock()
			if cl.calls.answered == nil || len(cl.calls.answered) >= maxAnsweredKept {
				cl.calls.answered = map[string]uint32{}
			}
			if l, ok := cl.calls.answered[string(sig.CallID)]; !ok || m.senderLeaf < l {
				cl.calls.answered[string(sig.CallID)] = m.senderLeaf
			}
			cl.calls.mu.Unlock()
			if cl.stopRinging(sig.CallID) != nil {
				report(CallAnsweredElsewhere)
			}
			return
		}
		switch c.role {
		case roleCaller:
			// With two accepting devices of the callee, the one of the
			// lower leaf keeps the call (spec 12.2.1 step 3).
			leaf := m.senderLeaf
			c.mu.Lock()
			if c.partner == nil || leaf < c.partLeaf {
				c.partner, c.partLeaf = &from, leaf
			}
			c.parts[from] = true
			c.mu.Unlock()
			c.setConnected()
			report(CallAccepted)
		case roleCallee:
			if !own {
				return
			}
			c.mu.Lock()
			lost := m.senderLeaf < c.leaf
			c.mu.Unlock()
			if lost {
				cl.sendSignal(ctx, m.Group, &wire.CallSignal{CallID: sig.CallID, Kind: wire.SignalHangup, Reason: wire.HangupNormal})
				u.Kind = CallAnsweredElsewhere
				c.end(ctx, &u)
				cl.reportCall(u)
			}
		}

	case wire.SignalDecline:
		if r := cl.stopRinging(sig.CallID); r != nil {
			report(CallDeclined)
			return
		}
		if c != nil && c.role == roleCaller {
			u.Kind = CallDeclined
			c.end(ctx, &u)
			cl.reportCall(u)
		}

	case wire.SignalHangup, wire.SignalLeave:
		if r := cl.stopRinging(sig.CallID); r != nil && sig.Kind == wire.SignalHangup {
			u.Incoming = r.in
			report(CallMissed)
			return
		}
		if c == nil {
			return
		}
		if c.direct {
			// Only the other side ends a one-to-one call: the caller, or
			// the callee device that kept it.
			c.mu.Lock()
			ends := (c.role == roleCallee && !own) || (c.role == roleCaller && c.partner != nil && *c.partner == from)
			c.mu.Unlock()
			if ends {
				u.Kind = CallHungUp
				c.end(ctx, &u)
				cl.reportCall(u)
			} else {
				report(CallLeft)
			}
			return
		}
		c.mu.Lock()
		delete(c.parts, from)
		c.mu.Unlock()
		report(CallLeft)

	case wire.SignalJoin:
		if c == nil {
			return
		}
		c.mu.Lock()
		c.parts[from] = true
		c.mu.Unlock()
		report(CallJoined)
	}
}

// maxAnsweredKept bounds the calls remembered as accepted by another own
// device.
const maxAnsweredKept = 256

// reportCall calls the OnCall of the latest Receive that had one.
func (cl *Client) reportCall(u CallUpdate) {
	cl.calls.mu.Lock()
	f := cl.calls.onCall
	cl.calls.mu.Unlock()
	if f != nil {
		f(u)
	}
}

// ring makes an invite ring on this device until it is answered,
// declined, answered elsewhere, hung up, or for left (the ring timeout
// after its sending), when it is reported missed.
func (cl *Client) ring(in *IncomingCall, left time.Duration) {
	r := &ringingCall{in: in}
	cl.calls.mu.Lock()
	defer cl.calls.mu.Unlock()
	if cl.calls.ringing == nil {
		cl.calls.ringing = map[string]*ringingCall{}
	}
	cl.calls.ringing[string(in.ID)] = r
	r.timer = time.AfterFunc(left, func() {
		if cl.stopRinging(in.ID) == r {
			cl.reportCall(CallUpdate{CallID: in.ID, Group: in.Group, Kind: CallMissed, From: cl.id.Address,
				Device: cl.id.Device, Incoming: in, Reason: wire.HangupNoAnswer})
		}
	})
}

// stopRinging stops an invite ringing here and returns it, or nil when it
// did not ring.
func (cl *Client) stopRinging(id []byte) *ringingCall {
	cl.calls.mu.Lock()
	defer cl.calls.mu.Unlock()
	r := cl.calls.ringing[string(id)]
	if r != nil {
		r.timer.Stop()
		delete(cl.calls.ringing, string(id))
	}
	return r
}

// Ringing returns the invites that ring on this device now.
func (cl *Client) Ringing() []*IncomingCall {
	cl.calls.mu.Lock()
	defer cl.calls.mu.Unlock()
	var out []*IncomingCall
	for _, r := range cl.calls.ringing {
		out = append(out, r.in)
	}
	return out
}
