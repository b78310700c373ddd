package client

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/client/seal"
	"github.com/xchat-im/xchat/spec/wire"
)

// ReceiveOptions control Receive.
type ReceiveOptions struct {
	// Wait is how long Receive keeps waiting for new envelopes after the
	// last one arrived (and after everything waiting was delivered).
	Wait time.Duration
	// OnMessage is called for every new message, after it is stored.
	OnMessage func(Message)
	// OnDrop is called for an envelope that fails to open or verify; it is
	// acknowledged and dropped. It is also called, with an error wrapping
	// ErrGivenUp, for an envelope that could not be verified for too long
	// because a domain's key was unavailable (see Profile.Unopened).
	OnDrop func(id [16]byte, err error)
	// OnDefer is called for an envelope that cannot be verified now
	// because a domain's key is unavailable; it is not acknowledged, so
	// the homeserver delivers it again on a later connection, until the
	// client gives up on it (spec/07-envelopes.md section 7.16).
	OnDefer func(id [16]byte, err error)
	// OnNotice is called for a notice from the homeserver that an envelope
	// this device sent to another domain was not delivered.
	OnNotice func(Undeliverable)
	// OnLinked is called when a new device of this account proved the
	// link code this device showed, and was added to its groups.
	OnLinked func(device uint32)
	// OnCall is called for every call signal, after it is stored and
	// acted on, and for a call event of this device (an invite that stops
	// ringing at the ring timeout is CallMissed, reported from a timer's
	// goroutine). Calls need Receive to run: their signalling arrives
	// through it.
	OnCall func(CallUpdate)
}

// Undeliverable is a notice that an envelope sent to another domain was
// not delivered.
type Undeliverable struct {
	ID     [16]byte  // the envelope
	To     string    // its recipient
	Device uint32    // the recipient device
	Reason wire.Code // why: the peer's refusal, or expired
}

// Receive reads the push stream: it prints (through OnMessage) what is
// waiting, then keeps receiving until nothing new arrives for o.Wait. Every
// message is stored in the profile before it is acknowledged; duplicates
// (by envelope id) are acknowledged and not reported again.
//
// A connection has one push stream, so Receive runs once per Client.
func (cl *Client) Receive(ctx context.Context, o ReceiveOptions) error {
	if !cl.receiving.CompareAndSwap(false, true) {
		return errors.New("receive: this connection already read its push stream; connect again")
	}
	st, err := cl.c.qc.AcceptUniStream(ctx)
	if err != nil {
		return fmt.Errorf("push stream: %w", err)
	}
	defer st.CancelRead(wire.StreamRequestCancelled)
	frames := make(chan any)
	errc := make(chan error, 1)
	done := make(chan struct{})
	defer close(done)
	go func() {
		for {
			b, err := wire.ReadFrame(st, wire.MaxFrame)
			if err == nil {
				var f any
				f, err = wire.DecodePush(b)
				if err == nil {
					select {
					case frames <- f:
						continue
					case <-done:
						return
					}
				}
			}
			errc <- err
			return
		}
	}()
	// Envelopes that failed to open before: their records go when they
	// open.
	pending, err := cl.p.pendingUnopened(ctx)
	if err != nil {
		return err
	}
	caughtUp := false
	var timer <-chan time.Time
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-errc:
			if errors.Is(err, wire.ErrEndOfStream) {
				return errors.New("the homeserver ended the push stream (it is shutting down)")
			}
			var pe *wire.Error
			if errors.As(err, &pe) {
				cl.c.qc.CloseWithError(wire.CloseProtocolViolation, "invalid push frame")
				return fmt.Errorf("invalid push frame from the homeserver: %w", err)
			}
			return fmt.Errorf("push stream: %w", closeReason(err))
		case <-timer:
			return nil
		case f := <-frames:
			switch f := f.(type) {
			case *wire.CaughtUp:
				caughtUp = true
			case *wire.Deliver:
				if err := cl.deliver(ctx, f, o, pending); err != nil {
					return err
				}
			}
			if caughtUp {
				timer = time.After(o.Wait)
			}
		}
	}
}

// deliver opens, processes and stores, then acknowledges one deliver
// frame. pending holds the envelopes that failed to open before.
func (cl *Client) deliver(ctx context.Context, f *wire.Deliver, o ReceiveOptions, pending map[[16]byte]bool) error {
	me := cl.id.Mailbox()
	ids := make([][]byte, 0, len(f.Deliveries))
	for _, d := range f.Deliveries {
		var id [16]byte
		copy(id[:], d.ID)
		if cl.afterReceive != nil {
			cl.afterReceive()
		}
		if d.Lane == wire.LaneNotice {
			// Notices carry no message to store; telling the user is all.
			var n wire.Notice
			if err := wire.Unmarshal(d.Sealed, &n); err == nil && len(n.ID) == 16 && o.OnNotice != nil {
				u := Undeliverable{To: n.To.Address, Device: n.To.Device, Reason: n.Code}
				copy(u.ID[:], n.ID)
				o.OnNotice(u)
			}
			ids = append(ids, d.ID)
			continue
		}
		msgs, err := cl.receiveEnvelope(ctx, me, d, o)
		if errors.Is(err, seal.ErrNoDomainKey) {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			// Left for a later connection, until the client gives up on
			// it (spec/07-envelopes.md section 7.16).
			giveUp, uerr := cl.unopened(ctx, d, err)
			if uerr != nil {
				return uerr
			}
			if !giveUp {
				if o.OnDefer != nil {
					o.OnDefer(id, err)
				}
				continue
			}
			if o.OnDrop != nil {
				o.OnDrop(id, fmt.Errorf("%w: %w", ErrGivenUp, err))
			}
			ids = append(ids, d.ID)
			continue
		}
		var drop *dropError
		if errors.As(err, &drop) {
			if err := cl.opened(ctx, id, pending); err != nil {
				return err
			}
			if o.OnDrop != nil {
				o.OnDrop(id, drop.err)
			}
			ids = append(ids, d.ID)
			continue
		}
		if err != nil {
			return err // not acknowledged: the server delivers it again
		}
		if err := cl.opened(ctx, id, pending); err != nil {
			return err
		}
		if cl.afterStore != nil {
			cl.afterStore()
		}
		ids = append(ids, d.ID)
		for _, m := range msgs {
			if m.Call != nil {
				cl.callSignal(ctx, m, o)
			}
			if o.OnMessage != nil {
				o.OnMessage(m)
			}
		}
	}
	if len(ids) == 0 {
		return nil
	}
	if err := cl.c.do(ctx, &wire.Ack{IDs: ids}, &wire.OK{}); err != nil {
		return fmt.Errorf("acknowledge: %w", err)
	}
	return nil
}

// dropError marks an envelope that is dropped (and acknowledged): it did
// not open, verify or process (spec/07-envelopes.md section 7.8,
// spec/09-mls.md section 9.7).
type dropError struct{ err error }

func (e *dropError) Error() string { return e.err.Error() }
func (e *dropError) Unwrap() error { return e.err }

func drop(err error) error { return &dropError{err} }

// receiveEnvelope opens one envelope and processes its payload. It returns
// the new messages it stored; a *dropError for an envelope to drop; any
// other error leaves the envelope unacknowledged.
func (cl *Client) receiveEnvelope(ctx context.Context, me wire.Mailbox, d wire.Delivery, o ReceiveOptions) ([]Message, error) {
	// A redelivery of what was processed (its acknowledgement was lost)
	// is acknowledged again and nothing more (spec/07-envelopes.md
	// section 7.16).
	if seen, err := cl.p.processed(ctx, d.ID); err != nil || seen {
		return nil, err
	}
	// Deliveries older than the memory of processed identifiers could be
	// replays (spec/07-envelopes.md section 7.16).
	if time.Since(time.UnixMilli(int64(d.ReceivedAt))) > processedFor {
		return nil, drop(errors.New("a delivery received more than 31 days ago"))
	}
	// The certificate must have been valid when the envelope reached the
	// homeserver (spec/07-envelopes.md), not now: a device offline for days
	// still accepts what was sent meanwhile.
	keys := func(domain string) (ed25519.PublicKey, error) { return cl.domainKey(ctx, domain) }
	opened, err := seal.Open(cl.id.HPKEKey, d.ID, me, d.Sealed, keys, time.UnixMilli(int64(d.ReceivedAt)))
	if errors.Is(err, seal.ErrNoDomainKey) {
		return nil, err
	}
	if err == nil {
		// A relaying domain can move received-at for its own users'
		// certificates only (spec/07-envelopes.md section 7.8).
		err = seal.CheckOrigin(opened, d.Origin)
	}
	if err != nil {
		return nil, drop(err)
	}
	p, err := wire.DecodePayload(opened.Payload)
	if err != nil {
		return nil, drop(fmt.Errorf("payload: %w", err))
	}
	from := sender{Address: opened.From.Address, Device: opened.From.Device, SigKey: opened.Cert.SigKey}
	switch p := p.(type) {
	case *wire.LinkProofPayload:
		return nil, cl.receiveLinkProof(ctx, d.ID, from, p, o)
	case *wire.FragmentPayload:
		return cl.receiveFragment(ctx, d, from, p)
	case *wire.MLSPayload:
		h := &heldMessage{EnvelopeID: d.ID, Sender: from, Payload: opened.Payload,
			ReceivedAt: time.UnixMilli(int64(d.ReceivedAt)), Lane: int(d.Lane)}
		return cl.receiveMLS(ctx, h, p)
	}
	return nil, drop(fmt.Errorf("payload %T", p))
}

// CatchUp processes what waits for this device (commits first of all) and
// stores the messages it brings without reporting them, so that the next
// action works on the group states its peers have (spec/09-mls.md section
// 9.6); Profile.Unshown returns those messages. It uses the connection's
// push stream: Receive cannot run afterwards on the same Client.
func (cl *Client) CatchUp(ctx context.Context) error {
	return cl.Receive(ctx, ReceiveOptions{})
}
