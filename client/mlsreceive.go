package client

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/client/mls"
	"github.com/xchat-im/xchat/spec/wire"
)

// receiveMLS processes the MLS message of an envelope (or of a held one)
// and returns the messages it stored. Everything is stored in one
// transaction before the caller acknowledges the envelope
// (spec/09-mls.md section 9.6).
func (cl *Client) receiveMLS(ctx context.Context, h *heldMessage, p *wire.MLSPayload) ([]Message, error) {
	var m mls.MLSMessage
	if err := m.UnmarshalBinary(p.Message); err != nil {
		return nil, drop(fmt.Errorf("MLS message: %w", err))
	}
	var gid []byte
	var epoch uint64
	switch m.WireFormat {
	case mls.WireFormatWelcome:
		gid, err := cl.join(ctx, h, p)
		if err != nil {
			return nil, err
		}
		return cl.replayHeld(ctx, gid)
	case mls.WireFormatPublicMessage:
		gid, epoch = m.PublicMessage.Content.GroupID, m.PublicMessage.Content.Epoch
	case mls.WireFormatPrivateMessage:
		gid, epoch = m.PrivateMessage.GroupID, m.PrivateMessage.Epoch
	default:
		return nil, drop(fmt.Errorf("MLS wire format %d in a payload", m.WireFormat))
	}
	h.GroupID = gid
	msgs, progressed, err := cl.processInGroup(ctx, h, p, epoch)
	if err != nil || !progressed {
		return msgs, err
	}
	more, err := cl.replayHeld(ctx, gid)
	return append(msgs, more...), err
}

// hold keeps an MLS message whose group or epoch this device does not
// have yet.
func (cl *Client) hold(ctx context.Context, h *heldMessage) error {
	return cl.p.inTx(ctx, func(tx *sql.Tx) error { return holdMessage(ctx, tx, h) })
}

// errHeld reports that a message was held back for later.
var errHeld = errors.New("held until its group or epoch is known")

// processInGroup processes a handshake or application message of a known
// group. progressed reports a commit that moved the group to a new epoch.
func (cl *Client) processInGroup(ctx context.Context, h *heldMessage, p *wire.MLSPayload, epoch uint64) (msgs []Message, progressed bool, err error) {
	for {
		row, err := cl.p.group(ctx, h.GroupID)
		if err != nil {
			return nil, false, err
		}
		if row == nil {
			return nil, false, cl.hold(ctx, h)
		}
		g, err := cl.loadGroup(ctx, row)
		if err != nil {
			return nil, false, err
		}
		res, err := g.Process(p.Message)
		if errors.Is(err, mls.ErrWrongEpoch) && epoch > g.Epoch() {
			return nil, false, cl.hold(ctx, h)
		}
		if err != nil {
			return nil, false, drop(fmt.Errorf("group %x: %w", h.GroupID, err))
		}
		// The sealed sender and the MLS sender must be one device
		// (spec/09-mls.md section 9.3).
		mb, ok := memberDevice(mls.Member{Credential: res.Credential})
		if !ok || mb.Address != h.Sender.Address || mb.Device != h.Sender.Device || !bytes.Equal(res.SignatureKey, h.Sender.SigKey) {
			return nil, false, drop(fmt.Errorf("group %x: the MLS sender is not the device that sealed the envelope", h.GroupID))
		}
		state, err := g.MarshalState()
		if err != nil {
			return nil, false, err
		}
		var out []Message
		err = cl.p.inTx(ctx, func(tx *sql.Tx) error {
			if err := updateGroup(ctx, tx, row, state, !g.Removed()); err != nil {
				return err
			}
			if err := unholdMessage(ctx, tx, h.EnvelopeID); err != nil {
				return err
			}
			if err := markProcessed(ctx, tx, h.EnvelopeID); err != nil {
				return err
			}
			if err := cl.takeToken(ctx, tx, h.Sender, p.Token); err != nil {
				return err
			}
			switch res.Kind {
			case mls.KindApplication:
				m, err := cl.contentMessage(h, row, p.Message, res.Plaintext)
				if err != nil {
					return nil // stored nothing; the key is used all the same
				}
				isNew, err := storeMessage(ctx, tx, m)
				if err != nil {
					return err
				}
				if isNew {
					out = append(out, *m)
				}
			case mls.KindCommit:
				return cl.trustAddedOwnDevices(ctx, tx, h.Sender, res.Added)
			}
			return nil
		})
		if errors.Is(err, errStateChanged) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if res.Kind == mls.KindCommit && res.LostOwnCommit != nil {
			if err := cl.recommit(ctx, h.GroupID, res.LostOwnCommit); err != nil {
				return out, true, fmt.Errorf("group %x: make a lost commit again: %w", h.GroupID, err)
			}
		}
		return out, res.Kind == mls.KindCommit, nil
	}
}

// recommit makes again, on the winning branch, what an own commit that
// lost a race carried (spec/09-mls.md section 9.8).
func (cl *Client) recommit(ctx context.Context, id []byte, lost *mls.LostCommit) error {
	return cl.changeGroup(ctx, id, func(g *mls.Group, _ []wire.Mailbox) ([]byte, []byte, []wire.Mailbox, error) {
		r := lost.Retry
		if len(r.Add) == 0 && len(r.Remove) == 0 && !r.Update {
			return nil, nil, nil, nil
		}
		var added []wire.Mailbox
		for _, kp := range r.Add {
			if mb, ok := memberDevice(mls.Member{Credential: kp.LeafNode.Credential}); ok {
				added = append(added, mb)
			}
		}
		c, w, err := g.Commit(mls.CommitOptions{Add: r.Add, Remove: r.Remove, Update: r.Update})
		return c, w, added, err
	})
}

// contentMessage decodes the content of an application message.
func (cl *Client) contentMessage(h *heldMessage, row *groupRow, mlsMsg, plaintext []byte) (*Message, error) {
	c, err := wire.DecodeContent(plaintext)
	if err != nil {
		return nil, err
	}
	m := &Message{
		From: h.Sender.Address, FromDevice: h.Sender.Device, To: cl.id.Address,
		SentAt: time.UnixMilli(int64(c.SentAt)), ReceivedAt: h.ReceivedAt, RequestLane: h.Lane == 1,
		Group: row.ID, GroupName: row.Name, Direct: row.Kind == wire.GroupKindDirect,
		Type: int(c.Type), MessageID: wire.MessageID(mlsMsg), Ref: c.Ref,
	}
	copy(m.ID[:], h.EnvelopeID)
	if c.Text != nil {
		m.Text = *c.Text
	}
	if c.Reaction != nil {
		m.Text = *c.Reaction
	}
	return m, nil
}

// takeToken remembers a delivery token given in a payload: a contact's, or
// this account's own when a trusted own device gives it (spec/09-mls.md
// section 9.5).
func (cl *Client) takeToken(ctx context.Context, tx *sql.Tx, from sender, token []byte) error {
	if len(token) != 32 {
		return nil
	}
	if from.Address != cl.id.Address {
		_, err := tx.ExecContext(ctx, `INSERT INTO contacts (address, token) VALUES (?, ?)
			ON CONFLICT (address) DO UPDATE SET token = excluded.token`, from.Address, token)
		return err
	}
	if ok, err := ownTrusted(ctx, tx, from); err != nil || !ok || bytes.Equal(token, cl.id.Token) {
		return err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE identity SET token = ?`, token); err != nil {
		return err
	}
	cl.id.Token = token
	return nil
}

// ownTrusted reports whether a device of the own account is trusted.
func ownTrusted(ctx context.Context, tx *sql.Tx, s sender) (bool, error) {
	var k []byte
	err := tx.QueryRowContext(ctx, `SELECT sig_key FROM own_devices WHERE device = ?`, s.Device).Scan(&k)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil && bytes.Equal(k, s.SigKey), err
}

// trustAddedOwnDevices trusts the own-account devices that a trusted own
// device added to a group.
func (cl *Client) trustAddedOwnDevices(ctx context.Context, tx *sql.Tx, from sender, added []mls.Member) error {
	if from.Address != cl.id.Address {
		return nil
	}
	if ok, err := ownTrusted(ctx, tx, from); err != nil || !ok {
		return err
	}
	for _, m := range added {
		if mb, ok := memberDevice(m); ok && mb.Address == cl.id.Address && mb.Device != cl.id.Device {
			if err := trustOwnDevice(ctx, tx, mb.Device, m.SignatureKey); err != nil {
				return err
			}
		}
	}
	return nil
}

// join processes a Welcome and returns the group's identifier.
func (cl *Client) join(ctx context.Context, h *heldMessage, p *wire.MLSPayload) ([]byte, error) {
	var used []byte
	lookup := func(ref []byte) *mls.KeyPackageBundle {
		b, err := cl.p.bundle(ctx, ref)
		if err != nil || b == nil {
			return nil
		}
		used = ref
		return b
	}
	g, err := mls.JoinFromWelcome(p.Message, lookup, nil, cl.groupConfig(ctx))
	if err != nil {
		return nil, drop(fmt.Errorf("welcome: %w", err))
	}
	gid := g.GroupID()
	var peer string
	senderIsMember := false
	var own []mls.Member
	for _, m := range g.Members() {
		mb, ok := memberDevice(m)
		if !ok {
			continue
		}
		if mb.Address == h.Sender.Address && mb.Device == h.Sender.Device && bytes.Equal(m.SignatureKey, h.Sender.SigKey) {
			senderIsMember = true
		}
		if mb.Address != cl.id.Address && peer == "" {
			peer = mb.Address
		}
		if mb.Address == cl.id.Address && mb.Device != cl.id.Device {
			own = append(own, m)
		}
	}
	if !senderIsMember {
		return nil, drop(fmt.Errorf("welcome to group %x: the device that sealed it is not a member", gid))
	}
	if old, err := cl.p.group(ctx, gid); err != nil {
		return nil, err
	} else if old != nil {
		og, err := cl.loadGroup(ctx, old)
		if err != nil {
			return nil, err
		}
		if old.Active && !og.Removed() && og.Epoch() >= g.Epoch() {
			return nil, drop(fmt.Errorf("welcome to group %x at epoch %d: this device is at epoch %d", gid, g.Epoch(), og.Epoch()))
		}
	}
	row := &groupRow{ID: gid, Kind: wire.GroupKindGroup, Active: true}
	if p.Meta != nil {
		row.Kind, row.Name = int(p.Meta.Kind), p.Meta.Name
	}
	if row.Kind == wire.GroupKindDirect {
		row.Peer = peer
	}
	if row.State, err = g.MarshalState(); err != nil {
		return nil, err
	}
	err = cl.p.inTx(ctx, func(tx *sql.Tx) error {
		if err := insertGroup(ctx, tx, row); err != nil {
			return err
		}
		if err := markProcessed(ctx, tx, h.EnvelopeID); err != nil {
			return err
		}
		if used != nil {
			if err := markBundleUsed(ctx, tx, used); err != nil {
				return err
			}
		}
		if err := cl.takeToken(ctx, tx, h.Sender, p.Token); err != nil {
			return err
		}
		return cl.trustAddedOwnDevices(ctx, tx, h.Sender, own)
	})
	if err != nil {
		return nil, err
	}
	return gid, nil
}

// replayHeld processes again the messages held for a group, after a
// Welcome or commit; those still too early stay held.
func (cl *Client) replayHeld(ctx context.Context, gid []byte) ([]Message, error) {
	var out []Message
	for round := 0; round < maxHeldPerGroup; round++ {
		held, err := cl.p.heldMessages(ctx, gid)
		if err != nil {
			return out, err
		}
		progressed := false
		for _, h := range held {
			dp, err := wire.DecodePayload(h.Payload)
			p, ok := dp.(*wire.MLSPayload)
			if err != nil || !ok {
				cl.p.inTx(ctx, func(tx *sql.Tx) error { return unholdMessage(ctx, tx, h.EnvelopeID) })
				continue
			}
			before := h.EnvelopeID
			msgs, err := cl.receiveHeld(ctx, h, p)
			var d *dropError
			if errors.As(err, &d) {
				cl.p.inTx(ctx, func(tx *sql.Tx) error { return unholdMessage(ctx, tx, before) })
				continue
			}
			if err != nil {
				return out, err
			}
			out = append(out, msgs...)
			if still, _ := cl.isHeld(ctx, before); !still {
				progressed = true
			}
		}
		if !progressed {
			return out, nil
		}
	}
	return out, nil
}

// receiveHeld processes a held message once more (it stays held when its
// epoch is still ahead).
func (cl *Client) receiveHeld(ctx context.Context, h *heldMessage, p *wire.MLSPayload) ([]Message, error) {
	var m mls.MLSMessage
	if err := m.UnmarshalBinary(p.Message); err != nil {
		return nil, drop(err)
	}
	var epoch uint64
	switch m.WireFormat {
	case mls.WireFormatPublicMessage:
		epoch = m.PublicMessage.Content.Epoch
	case mls.WireFormatPrivateMessage:
		epoch = m.PrivateMessage.Epoch
	default:
		return nil, drop(fmt.Errorf("held MLS wire format %d", m.WireFormat))
	}
	msgs, _, err := cl.processInGroup(ctx, h, p, epoch)
	return msgs, err
}

func (cl *Client) isHeld(ctx context.Context, envelopeID []byte) (bool, error) {
	var n int
	err := cl.p.db.QueryRowContext(ctx, `SELECT count(*) FROM held_mls WHERE envelope_id = ?`, envelopeID).Scan(&n)
	return n > 0, err
}
