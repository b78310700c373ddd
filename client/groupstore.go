package client

import (
	"context"
	"errors"
	"time"

	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/spec/wire"
)

// Limits on what a profile keeps for others (spec/09-mls.md section 9.6,
// spec/07-envelopes.md section 7.16).
const (
	maxHeldPerGroup  = 256
	maxHeldUnknown   = 1024 // held for groups this device does not hold
	heldFor          = 7 * 24 * time.Hour
	processedFor     = 31 * 24 * time.Hour
	maxFragmentBytes = 64 << 20
)

// processed reports whether an envelope was processed already. An
// envelope is marked processed (profile.Tx.MarkProcessed) in the
// transaction that stores what it brought, so that a redelivery (the
// acknowledgement was lost) is acknowledged without processing it again.
func (p *Profile) processed(ctx context.Context, envelopeID []byte) (bool, error) {
	var seen bool
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		seen, err = tx.Processed(envelopeID)
		return err
	})
	return seen, err
}

// forgetProcessed drops the record of envelopes processed long ago.
func (p *Profile) forgetProcessed(ctx context.Context) error {
	return p.update(ctx, func(tx *profile.Tx) error { return tx.ForgetProcessed(time.Now().Add(-processedFor)) })
}

// groupRow is one stored group.
type groupRow = profile.Group

// group returns a stored group, or nil when there is none.
func (p *Profile) group(ctx context.Context, id []byte) (*groupRow, error) {
	var g *groupRow
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		g, err = tx.Group(id)
		return err
	})
	if errors.Is(err, profile.ErrNotFound) {
		return nil, nil
	}
	return g, err
}

// directGroup returns the active direct group with peer that new messages
// use, or nil when there is none.
func (p *Profile) directGroup(ctx context.Context, peer string) (*groupRow, error) {
	var g *groupRow
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		g, err = tx.DirectGroup(peer)
		return err
	})
	if errors.Is(err, profile.ErrNotFound) {
		return nil, nil
	}
	return g, err
}

// groups returns every stored group, oldest first.
func (p *Profile) groups(ctx context.Context) ([]*groupRow, error) {
	var gs []*groupRow
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		gs, err = tx.Groups()
		return err
	})
	return gs, err
}

// heldMessage is an MLS message kept until its group or epoch is known.
type heldMessage struct {
	EnvelopeID []byte
	GroupID    []byte
	Sender     sender
	Payload    []byte
	ReceivedAt time.Time
	Lane       int
}

// sender is the verified sender of an envelope.
type sender struct {
	Address string
	Device  uint32
	SigKey  []byte
}

// holdMessage keeps m for later, and marks its envelope processed. A
// group holds at most maxHeldPerGroup messages and the groups this device
// does not hold maxHeldUnknown in all; the oldest are dropped to make room.
func holdMessage(tx *profile.Tx, m *heldMessage) error {
	if err := tx.MarkProcessed(m.EnvelopeID); err != nil {
		return err
	}
	return tx.Hold(&profile.HeldMessage{EnvelopeID: m.EnvelopeID, GroupID: m.GroupID, Sender: m.Sender.Address,
		SenderDevice: m.Sender.Device, SenderKey: m.Sender.SigKey, Payload: m.Payload, ReceivedAt: m.ReceivedAt, Lane: m.Lane},
		maxHeldPerGroup, maxHeldUnknown)
}

// expireHeld drops held messages and fragments kept too long, and held
// messages of groups this device left.
func (p *Profile) expireHeld(ctx context.Context) error {
	old := time.Now().Add(-heldFor)
	return p.update(ctx, func(tx *profile.Tx) error {
		if err := tx.ExpireHeld(old); err != nil {
			return err
		}
		return tx.ExpireFragments(old)
	})
}

// heldMessages returns the messages held for a group, oldest first, after
// dropping those held too long.
func (p *Profile) heldMessages(ctx context.Context, group []byte) ([]*heldMessage, error) {
	if err := p.expireHeld(ctx); err != nil {
		return nil, err
	}
	var rows []*profile.HeldMessage
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		rows, err = tx.HeldMessages(group)
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]*heldMessage, 0, len(rows))
	for _, r := range rows {
		out = append(out, &heldMessage{EnvelopeID: r.EnvelopeID, GroupID: r.GroupID,
			Sender:  sender{Address: r.Sender, Device: r.SenderDevice, SigKey: r.SenderKey},
			Payload: r.Payload, ReceivedAt: r.ReceivedAt, Lane: r.Lane})
	}
	return out, nil
}

// ownDevices returns the trusted devices of the own account (this one
// excluded unless recorded) with their signature keys.
func (p *Profile) ownDevices(ctx context.Context) (map[uint32][]byte, error) {
	var own map[uint32][]byte
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		own, err = tx.OwnDevices()
		return err
	})
	return own, err
}

// queueOut adds a payload for the target devices to the outbox, in the
// transaction that saves the group state it belongs to, so that what a
// device committed to is sent even after a crash or a failed send.
func queueOut(tx *profile.Tx, payload []byte, targets []wire.Mailbox) error {
	_, err := tx.QueueOut(payload, targets)
	return err
}

// outItem is one payload waiting in the outbox.
type outItem = profile.OutItem

// outbox returns what waits to be sent, oldest first.
func (p *Profile) outbox(ctx context.Context) ([]outItem, error) {
	var items []outItem
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		items, err = tx.Outbox()
		return err
	})
	return items, err
}

// sent removes a payload from the outbox once it was sent.
func (p *Profile) sent(ctx context.Context, id int64) error {
	return p.update(ctx, func(tx *profile.Tx) error { return tx.DeleteOut(id) })
}
