package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/client/mls"
	"github.com/xchat-im/xchat/client/seal"
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
	return cl.p.update(ctx, func(tx *profile.Tx) error { return holdMessage(tx, h) })
}

// transient reports an error after which the message must be processed
// again later rather than dropped: a domain key that cannot be obtained
// now.
func transient(err error) bool { return errors.Is(err, seal.ErrNoDomainKey) }

// uniqueDevices checks that no two leaves of a group name one device
// (spec/09-mls.md section 9.3).
func uniqueDevices(g *mls.Group) error {
	seen := map[wire.Mailbox]bool{}
	for _, m := range g.Members() {
		mb, ok := memberDevice(m)
		if !ok {
			return errors.New("a leaf without an xchat credential")
		}
		if seen[mb] {
			return fmt.Errorf("two leaves name %s device %d", mb.Address, mb.Device)
		}
		seen[mb] = true
	}
	return nil
}

// isDirect reports whether a group can be a direct chat between this
// account and peer: its leaves belong to exactly these two users.
func (cl *Client) isDirect(g *mls.Group, peer string) bool {
	_, users := groupDevices(g)
	return peer != cl.id.Address && len(users) == 2 && slices.Contains(users, peer) && slices.Contains(users, cl.id.Address)
}

// processInGroup processes a commit or application message of a known
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
		if !row.Active {
			return nil, false, drop(fmt.Errorf("group %x: this device left it", h.GroupID))
		}
		g, err := cl.loadGroup(ctx, row)
		if err != nil {
			return nil, false, err
		}
		res, err := g.Process(p.Message)
		switch {
		case errors.Is(err, mls.ErrWrongEpoch) && epoch > g.Epoch():
			return nil, false, cl.hold(ctx, h)
		case err != nil && transient(err):
			return nil, false, err
		case errors.Is(err, mls.ErrStaleCommit):
			// The losing commit's epoch is kept, read-only, so that what
			// was sent in it can be read (spec/09-mls.md section 9.8).
			err = cl.saveOnly(ctx, row, g, h.EnvelopeID)
			if errors.Is(err, profile.ErrStateChanged) {
				continue
			}
			if err != nil {
				return nil, false, err
			}
			return nil, false, drop(fmt.Errorf("group %x: %w", h.GroupID, mls.ErrStaleCommit))
		case err != nil:
			return nil, false, drop(fmt.Errorf("group %x: %w", h.GroupID, err))
		}
		// The sealed sender and the MLS sender must be one device
		// (spec/09-mls.md section 9.3).
		mb, ok := memberDevice(mls.Member{Credential: res.Credential})
		if !ok || mb.Address != h.Sender.Address || mb.Device != h.Sender.Device || !bytes.Equal(res.SignatureKey, h.Sender.SigKey) {
			return nil, false, drop(fmt.Errorf("group %x: the MLS sender is not the device that sealed the envelope", h.GroupID))
		}
		switch res.Kind {
		case mls.KindProposal:
			// xchat members commit directly; a proposal could be sent to
			// this device alone to fork it from the others.
			return nil, false, drop(fmt.Errorf("group %x: proposals are not used", h.GroupID))
		case mls.KindCommit:
			if err := uniqueDevices(g); err != nil {
				return nil, false, drop(fmt.Errorf("group %x: %w", h.GroupID, err))
			}
		}
		// An own commit that lost a race is made again on the winning
		// branch, in the same transaction (spec/09-mls.md section 9.8).
		var again, welcome []byte
		var added []wire.Mailbox
		var before []wire.Mailbox
		if res.Kind == mls.KindCommit && res.LostOwnCommit != nil && !g.Removed() {
			r := res.LostOwnCommit.Retry
			if len(r.Add) > 0 || len(r.Remove) > 0 {
				for _, kp := range r.Add {
					if mb, ok := memberDevice(mls.Member{Credential: kp.LeafNode.Credential}); ok {
						added = append(added, mb)
					}
				}
				before, _ = groupDevices(g)
				if again, welcome, err = g.Commit(mls.CommitOptions{Add: r.Add, Remove: r.Remove, NoPending: true}); err != nil {
					again, welcome = nil, nil // left undone; the group stays consistent
				}
			}
		}
		kind := row.Kind
		if kind == wire.GroupKindDirect && !cl.isDirect(g, row.Peer) {
			kind = wire.GroupKindGroup // a third user was added: no longer a direct chat
		}
		state, err := g.MarshalState()
		if err != nil {
			return nil, false, err
		}
		var out []Message
		err = cl.p.update(ctx, func(tx *profile.Tx) error {
			if err := tx.UpdateGroupState(row, state, !g.Removed()); err != nil {
				return err
			}
			if kind != row.Kind {
				if err := tx.SetGroupKind(row.ID, kind, ""); err != nil {
					return err
				}
			}
			if err := tx.Unhold(h.EnvelopeID); err != nil {
				return err
			}
			if err := tx.MarkProcessed(h.EnvelopeID); err != nil {
				return err
			}
			if err := cl.takeToken(tx, h.Sender, p.Token); err != nil {
				return err
			}
			if again != nil {
				if err := cl.queueMLS(tx, cl.others(before), again, nil); err != nil {
					return err
				}
				if welcome != nil {
					if err := cl.queueMLS(tx, added, welcome, &wire.GroupMeta{Kind: uint64(kind), Name: row.Name}); err != nil {
						return err
					}
				}
			}
			switch res.Kind {
			case mls.KindApplication:
				// A profile error stops here: nothing is saved and the
				// envelope is not acknowledged, so it is processed again.
				m, err := cl.contentMessage(tx, h, row, p.Message, res.Plaintext)
				if err != nil {
					return err
				}
				if m == nil {
					return nil // nothing stored; the key is used all the same
				}
				m.senderLeaf = uint32(res.Sender)
				isNew, err := storeMessage(tx, m, cl.id.Address)
				if err != nil {
					return err
				}
				if isNew {
					out = append(out, *m)
				}
			case mls.KindCommit:
				return cl.trustAddedOwnDevices(tx, h.Sender, res.Added)
			}
			return nil
		})
		if errors.Is(err, profile.ErrStateChanged) {
			continue
		}
		if err != nil {
			return nil, false, err
		}
		if res.Kind == mls.KindCommit {
			cl.groupChanged(ctx, g)
		}
		if again != nil {
			if err := cl.flushOutbox(ctx); err != nil {
				return out, true, fmt.Errorf("group %x: send a lost commit again: %w", h.GroupID, err)
			}
		}
		return out, res.Kind == mls.KindCommit, nil
	}
}

// saveOnly saves a group's state after processing an envelope that brings
// nothing else.
func (cl *Client) saveOnly(ctx context.Context, row *groupRow, g *mls.Group, envelopeID []byte) error {
	state, err := g.MarshalState()
	if err != nil {
		return err
	}
	return cl.p.update(ctx, func(tx *profile.Tx) error {
		if err := tx.UpdateGroupState(row, state, !g.Removed()); err != nil {
			return err
		}
		if err := tx.Unhold(envelopeID); err != nil {
			return err
		}
		return tx.MarkProcessed(envelopeID)
	})
}

// contentMessage decodes the content of an application message; nil for
// content that is not stored (content that does not decode, typing
// notifications, spec/10-content.md section 10.4, and edits and deletes of
// another sender's message, section 10.3). An error is the profile's: the
// envelope must be processed again.
func (cl *Client) contentMessage(tx *profile.Tx, h *heldMessage, row *groupRow, mlsMsg, plaintext []byte) (*Message, error) {
	c, err := wire.DecodeContent(plaintext)
	if err != nil {
		return nil, nil
	}
	switch c.Type {
	case wire.ContentTyping:
		return nil, nil
	case wire.ContentEdit, wire.ContentDelete:
		// The message referred to may not be here (yet): the edit or
		// delete is stored all the same. Any other error is returned.
		err := cl.fault(readEditTarget)
		var author string
		if err == nil {
			author, err = tx.MessageSender(row.ID, c.Ref)
		}
		switch {
		case errors.Is(err, profile.ErrNotFound):
		case err != nil:
			return nil, err
		case author != h.Sender.Address:
			return nil, nil
		}
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
	if c.Type == wire.ContentFile {
		m.File = c.File // validated by DecodeContent; never fetched here
	}
	if c.Type == wire.ContentCall {
		m.Call = c.Call // validated by DecodeContent (spec/12-calls.md section 12.2)
	}
	return m, nil
}

// takeToken remembers a delivery token given in a payload: a contact's, or
// this account's own when a trusted own device gives it (spec/09-mls.md
// section 9.5).
func (cl *Client) takeToken(tx *profile.Tx, from sender, token []byte) error {
	if len(token) != 32 {
		return nil
	}
	if from.Address != cl.id.Address {
		return tx.SetContactToken(from.Address, token)
	}
	// Written even when cl.id holds it already: a rolled-back transaction
	// may have set cl.id and not the profile.
	if ok, err := ownTrusted(tx, from); err != nil || !ok {
		return err
	}
	if err := tx.SetOwnToken(token); err != nil {
		return err
	}
	cl.id.Token = token
	return nil
}

// ownTrusted reports whether a device of the own account is trusted.
func ownTrusted(tx *profile.Tx, s sender) (bool, error) {
	k, err := tx.OwnDeviceKey(s.Device)
	if errors.Is(err, profile.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return bytes.Equal(k, s.SigKey), nil
}

// trustAddedOwnDevices trusts the own-account devices that a trusted own
// device added to a group.
func (cl *Client) trustAddedOwnDevices(tx *profile.Tx, from sender, added []mls.Member) error {
	if from.Address != cl.id.Address {
		return nil
	}
	if ok, err := ownTrusted(tx, from); err != nil || !ok {
		return err
	}
	for _, m := range added {
		if mb, ok := memberDevice(m); ok && mb.Address == cl.id.Address && mb.Device != cl.id.Device {
			if err := tx.TrustOwnDevice(mb.Device, m.SignatureKey); err != nil {
				return err
			}
		}
	}
	return nil
}

// join processes a Welcome and returns the group's identifier.
func (cl *Client) join(ctx context.Context, h *heldMessage, p *wire.MLSPayload) ([]byte, error) {
	var used []byte
	var lookupErr error
	lookup := func(ref []byte) *mls.KeyPackageBundle {
		b, err := cl.p.bundle(ctx, ref)
		if err != nil {
			lookupErr = err
			return nil
		}
		if b != nil {
			used = ref
		}
		return b
	}
	g, err := mls.JoinFromWelcome(p.Message, lookup, nil, cl.groupConfig(ctx))
	if lookupErr != nil {
		return nil, lookupErr
	}
	if err != nil && transient(err) {
		return nil, err
	}
	if err != nil {
		return nil, drop(fmt.Errorf("welcome: %w", err))
	}
	gid := g.GroupID()
	if err := uniqueDevices(g); err != nil {
		return nil, drop(fmt.Errorf("welcome to group %x: %w", gid, err))
	}
	// The device that sealed the Welcome signed its GroupInfo
	// (spec/09-mls.md section 9.3).
	signer, _ := g.WelcomedBy()
	signedBySender := false
	for _, m := range g.Members() {
		mb, ok := memberDevice(m)
		if ok && m.Leaf == signer && mb.Address == h.Sender.Address && mb.Device == h.Sender.Device && bytes.Equal(m.SignatureKey, h.Sender.SigKey) {
			signedBySender = true
		}
	}
	if !signedBySender {
		return nil, drop(fmt.Errorf("welcome to group %x: the device that sealed it did not sign it", gid))
	}
	// A Welcome replaces a group this device is in only when it comes
	// from the device that invited it, for a later epoch, and nothing
	// happened since it joined: that device re-made a commit that lost a
	// race (spec/09-mls.md section 9.8). Anyone else who knows the group's
	// identifier could make a Welcome for it. A Welcome can also bring the
	// device back into a group it left.
	inviter := fmt.Sprintf("%s/%d/%x", h.Sender.Address, h.Sender.Device, h.Sender.SigKey)
	if old, err := cl.p.group(ctx, gid); err != nil {
		return nil, err
	} else if old != nil && old.Active {
		og, err := cl.loadGroup(ctx, old)
		if err != nil {
			return nil, err
		}
		if old.Inviter != inviter || og.Epoch() != old.JoinedEpoch || g.Epoch() <= og.Epoch() {
			return nil, drop(fmt.Errorf("welcome to group %x, which this device is in", gid))
		}
	}
	row := &groupRow{ID: gid, Kind: wire.GroupKindGroup, Active: true, Inviter: inviter, JoinedEpoch: g.Epoch()}
	if p.Meta != nil {
		row.Kind, row.Name = int(p.Meta.Kind), p.Meta.Name
	}
	if row.Kind == wire.GroupKindDirect {
		// A direct chat holds exactly this user and the peer, and is
		// created by one of them; otherwise it is a group chat.
		peer := h.Sender.Address
		if peer == cl.id.Address {
			_, users := groupDevices(g)
			for _, u := range users {
				if u != cl.id.Address {
					peer = u
				}
			}
		}
		if cl.isDirect(g, peer) {
			row.Peer = peer
		} else {
			row.Kind = wire.GroupKindGroup
		}
	}
	if row.State, err = g.MarshalState(); err != nil {
		return nil, err
	}
	err = cl.p.update(ctx, func(tx *profile.Tx) error {
		if err := tx.PutGroup(row); err != nil {
			return err
		}
		if err := tx.MarkProcessed(h.EnvelopeID); err != nil {
			return err
		}
		if used != nil {
			if err := tx.MarkKeyPackageUsed(used); err != nil {
				return err
			}
		}
		return cl.takeToken(tx, h.Sender, p.Token)
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
				if err := cl.p.update(ctx, func(tx *profile.Tx) error { return tx.Unhold(h.EnvelopeID) }); err != nil {
					return out, err
				}
				continue
			}
			before := h.EnvelopeID
			msgs, err := cl.receiveHeld(ctx, h, p)
			var d *dropError
			if errors.As(err, &d) {
				if err := cl.p.update(ctx, func(tx *profile.Tx) error { return tx.Unhold(before) }); err != nil {
					return out, err
				}
				continue
			}
			if err != nil && transient(err) {
				continue // stays held
			}
			if err != nil {
				return out, err
			}
			out = append(out, msgs...)
			still, err := cl.isHeld(ctx, before)
			if err != nil {
				return out, err
			}
			if !still {
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

// isHeld reports whether the message of an envelope is still held.
func (cl *Client) isHeld(ctx context.Context, envelopeID []byte) (bool, error) {
	var held bool
	err := cl.p.view(ctx, func(tx *profile.Tx) (err error) {
		held, err = tx.IsHeld(envelopeID)
		return err
	})
	return held, err
}

// receiveFragment stores one fragment of a large payload (spec/09-mls.md
// section 9.6) and, when it completes the payload, processes the whole.
func (cl *Client) receiveFragment(ctx context.Context, d wire.Delivery, from sender, f *wire.FragmentPayload) ([]Message, error) {
	received := time.UnixMilli(int64(d.ReceivedAt))
	var parts [][]byte
	err := cl.p.update(ctx, func(tx *profile.Tx) error {
		err := tx.AddFragment(&profile.Fragment{Hash: f.Hash, Sender: from.Address, SenderDevice: from.Device, SenderKey: from.SigKey,
			Index: f.Index, Count: f.Count, Data: f.Data, ReceivedAt: received, Lane: int(d.Lane)})
		if err != nil {
			return err
		}
		// At most maxFragmentBytes are kept in all, the newest.
		if err := tx.TrimFragments(maxFragmentBytes); err != nil {
			return err
		}
		frags, err := tx.Fragments(f.Hash, from.Address, from.Device)
		if err != nil {
			return err
		}
		for _, fr := range frags {
			if fr.Count != f.Count || !bytes.Equal(fr.SenderKey, from.SigKey) {
				parts = nil
				break
			}
			parts = append(parts, fr.Data)
		}
		if uint64(len(parts)) != f.Count {
			parts = nil
			return tx.MarkProcessed(d.ID) // kept until the rest arrives
		}
		return nil
	})
	if err != nil || parts == nil {
		return nil, err
	}
	whole := slices.Concat(parts...)
	done := func() error {
		return cl.p.update(ctx, func(tx *profile.Tx) error {
			if err := tx.DeleteFragments(f.Hash, from.Address, from.Device); err != nil {
				return err
			}
			return tx.MarkProcessed(d.ID)
		})
	}
	if h := sha256.Sum256(whole); !bytes.Equal(h[:], f.Hash) {
		if err := done(); err != nil {
			return nil, err
		}
		return nil, drop(errors.New("fragments that do not match their hash"))
	}
	p, err := wire.DecodePayload(whole)
	mp, ok := p.(*wire.MLSPayload)
	if err != nil || !ok {
		if err := done(); err != nil {
			return nil, err
		}
		return nil, drop(fmt.Errorf("fragmented payload: %v", err))
	}
	// The whole is processed as one envelope, named by its hash.
	h := &heldMessage{EnvelopeID: f.Hash[:16], Sender: from, Payload: whole, ReceivedAt: received, Lane: int(d.Lane)}
	var msgs []Message
	if seen, err := cl.p.processed(ctx, h.EnvelopeID); err != nil {
		return nil, err
	} else if !seen {
		msgs, err = cl.receiveMLS(ctx, h, mp)
		var dr *dropError
		if err != nil && !errors.As(err, &dr) {
			return nil, err // the fragments stay; the envelope comes again
		}
		if err != nil {
			if derr := done(); derr != nil {
				return nil, derr
			}
			return nil, err
		}
	}
	return msgs, done()
}
