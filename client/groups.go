package client

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/client/mls"
	"github.com/xchat-im/xchat/spec/wire"
)

// maxAddPerCommit bounds the devices one commit adds (spec/09-mls.md
// section 9.4).
const maxAddPerCommit = 100

// ErrNoGroup is returned for a group identifier the profile does not
// hold.
var ErrNoGroup = errors.New("no such group in this profile (see 'xchat group list')")

// ErrNotInGroup is returned for a group this device was removed from.
var ErrNotInGroup = errors.New("this device is no longer a member of the group")

// GroupInfo describes a group the profile holds.
type GroupInfo struct {
	ID      []byte
	Name    string
	Direct  bool   // a one-to-one chat
	Peer    string // the other user of a direct chat
	Members []string
	Devices int
	Epoch   uint64
	// Authenticator is the epoch authenticator (RFC 9420 section 8.7):
	// members in the same state of the group have the same one.
	Authenticator []byte
	Active        bool
}

// ParseGroupID decodes a group identifier as printed by 'xchat group'.
func ParseGroupID(s string) ([]byte, error) {
	id, err := hex.DecodeString(s)
	if err != nil || len(id) != 16 {
		return nil, fmt.Errorf("%q is not a group identifier (32 hexadecimal digits)", s)
	}
	return id, nil
}

// loadGroup decodes a stored group's MLS state.
func (cl *Client) loadGroup(ctx context.Context, row *groupRow) (*mls.Group, error) {
	g, err := mls.UnmarshalGroup(row.State, cl.groupConfig(ctx))
	if err != nil {
		return nil, fmt.Errorf("profile: group %x: %w", row.ID, err)
	}
	return g, nil
}

// members returns the devices of a group, and the distinct users in order.
func groupDevices(g *mls.Group) ([]wire.Mailbox, []string) {
	var devs []wire.Mailbox
	var users []string
	for _, m := range g.Members() {
		mb, ok := memberDevice(m)
		if !ok {
			continue
		}
		devs = append(devs, mb)
		if !slices.Contains(users, mb.Address) {
			users = append(users, mb.Address)
		}
	}
	return devs, users
}

// others returns the devices of a group other than this one.
func (cl *Client) others(devs []wire.Mailbox) []wire.Mailbox {
	me := cl.id.Mailbox()
	return slices.DeleteFunc(slices.Clone(devs), func(m wire.Mailbox) bool { return m == me })
}

// ProfileGroups lists the groups of a profile, without connecting.
func ProfileGroups(ctx context.Context, p *Profile) ([]GroupInfo, error) {
	rows, err := p.groups(ctx)
	if err != nil {
		return nil, err
	}
	var out []GroupInfo
	for _, r := range rows {
		// Only read: no leaf enters the tree, so every credential is refused.
		g, err := mls.UnmarshalGroup(r.State, mls.Config{ValidateCredential: refuseCredential})
		if err != nil {
			return nil, fmt.Errorf("profile: group %x: %w", r.ID, err)
		}
		devs, users := groupDevices(g)
		out = append(out, GroupInfo{ID: r.ID, Name: r.Name, Direct: r.Kind == wire.GroupKindDirect, Peer: r.Peer,
			Members: users, Devices: len(devs), Epoch: g.Epoch(), Authenticator: g.EpochAuthenticator(), Active: r.Active && !g.Removed()})
	}
	return out, nil
}

// refuseCredential is the credential policy of a group state that is only
// read: no leaf may enter it.
func refuseCredential(mls.Credential, []byte) error {
	return errors.New("group state opened read-only")
}

// targetDevices returns the devices to put in a group for users: every
// device their homeservers list and, for the own account, the trusted
// own devices (spec/09-mls.md section 9.5). This device is left out.
func (cl *Client) targetDevices(ctx context.Context, users []string) (map[string][]uint32, error) {
	out := map[string][]uint32{}
	own, err := cl.p.ownDevices(ctx)
	if err != nil {
		return nil, err
	}
	for _, u := range append(slices.Clone(users), cl.id.Address) {
		if _, done := out[u]; done {
			continue
		}
		out[u] = nil
		if u == cl.id.Address {
			for d := range own {
				if d != cl.id.Device {
					out[u] = append(out[u], d)
				}
			}
			slices.Sort(out[u])
			continue
		}
		devs, err := cl.devices(ctx, u)
		if err != nil {
			return nil, err
		}
		for _, d := range devs {
			out[u] = append(out[u], d.ID)
		}
	}
	return out, nil
}

// claimFor claims a key package of each device in want that the group
// does not already hold, and returns the packages with their devices.
func (cl *Client) claimFor(ctx context.Context, want map[string][]uint32, have []wire.Mailbox) ([][]byte, []wire.Mailbox, error) {
	pinned, err := cl.p.ownDevices(ctx)
	if err != nil {
		return nil, nil, err
	}
	var pkgs [][]byte
	var added []wire.Mailbox
	users := make([]string, 0, len(want))
	for u := range want {
		users = append(users, u)
	}
	slices.Sort(users)
	for _, u := range users {
		var devs []uint32
		for _, d := range want[u] {
			if !slices.Contains(have, wire.Mailbox{Address: u, Device: d}) {
				devs = append(devs, d)
			}
		}
		p, got, err := cl.claimKeyPackages(ctx, u, devs, pinned)
		if err != nil {
			return nil, nil, err
		}
		pkgs = append(pkgs, p...)
		for _, d := range got {
			added = append(added, wire.Mailbox{Address: u, Device: d})
		}
	}
	if len(pkgs) > maxAddPerCommit {
		return nil, nil, fmt.Errorf("%d devices to add; one commit adds at most %d", len(pkgs), maxAddPerCommit)
	}
	return pkgs, added, nil
}

// createGroup creates a group of this device and the devices of users,
// saves it, and sends the Welcome. It returns the group's identifier.
func (cl *Client) createGroup(ctx context.Context, kind int, name string, users []string) ([]byte, error) {
	me, err := cl.newBundle(ctx, false)
	if err != nil {
		return nil, err
	}
	id := make([]byte, 16)
	rand.Read(id)
	g, err := mls.CreateGroup(suite(), id, me, cl.groupConfig(ctx))
	if err != nil {
		return nil, fmt.Errorf("create group: %w", err)
	}
	want, err := cl.targetDevices(ctx, users)
	if err != nil {
		return nil, err
	}
	pkgs, added, err := cl.claimFor(ctx, want, []wire.Mailbox{cl.id.Mailbox()})
	if err != nil {
		return nil, err
	}
	if kind == wire.GroupKindDirect && !slices.ContainsFunc(added, func(m wire.Mailbox) bool { return m.Address == users[0] }) {
		return nil, fmt.Errorf("%s has no device that can be reached yet (no key packages published)", users[0])
	}
	var welcome []byte
	if len(pkgs) > 0 {
		if _, welcome, err = commit(g, pkgs, nil); err != nil {
			return nil, err
		}
	}
	row := &groupRow{ID: id, Kind: kind, Name: name, Active: true}
	if kind == wire.GroupKindDirect {
		row.Peer = users[0]
	}
	if row.State, err = g.MarshalState(); err != nil {
		return nil, err
	}
	err = cl.p.update(ctx, func(tx *profile.Tx) error {
		if err := tx.PutGroup(row); err != nil {
			return err
		}
		if welcome == nil {
			return nil
		}
		return cl.queueMLS(tx, added, welcome, &wire.GroupMeta{Kind: uint64(kind), Name: name})
	})
	if err != nil {
		return nil, err
	}
	if err := cl.flushOutbox(ctx); err != nil {
		return id, fmt.Errorf("group %x created, but not every invitation was sent: %w", id, err)
	}
	return id, nil
}

// commit makes a commit adding the key packages pkgs and removing the
// leaves rm.
func commit(g *mls.Group, pkgs [][]byte, rm []mls.LeafIndex) (commitMsg, welcome []byte, err error) {
	var kps []mls.KeyPackage
	for _, p := range pkgs {
		kp, err := mls.ParseKeyPackage(p)
		if err != nil {
			return nil, nil, err
		}
		kps = append(kps, *kp)
	}
	// Proposals of others are never committed by reference: a member
	// could send one to this device alone and fork it from the group.
	c, w, err := g.Commit(mls.CommitOptions{Add: kps, Remove: rm, NoPending: true})
	if err != nil {
		return nil, nil, fmt.Errorf("commit: %w", err)
	}
	return c, w, nil
}

// queueMLS queues, in tx, one MLS message with this account's delivery
// token for each target device.
func (cl *Client) queueMLS(tx *profile.Tx, targets []wire.Mailbox, msg []byte, meta *wire.GroupMeta) error {
	if len(targets) == 0 {
		return nil
	}
	payload, err := wire.Marshal(&wire.MLSPayload{Mode: wire.PayloadMLS, Message: msg, Token: cl.id.Token, Meta: meta})
	if err != nil {
		return err
	}
	return queueOut(tx, payload, targets)
}

// CreateGroup creates a group chat named name with the given users (and
// this user's other trusted devices) and returns its identifier.
func (cl *Client) CreateGroup(ctx context.Context, name string, users []string) ([]byte, error) {
	if len(name) > wire.MaxGroupName {
		return nil, fmt.Errorf("group name of %d bytes; at most %d", len(name), wire.MaxGroupName)
	}
	norm, err := normalizeAll(users)
	if err != nil {
		return nil, err
	}
	return cl.createGroup(ctx, wire.GroupKindGroup, name, norm)
}

func normalizeAll(users []string) ([]string, error) {
	var out []string
	for _, u := range users {
		n, err := wire.NormalizeAddress(u)
		if err != nil {
			return nil, fmt.Errorf("%q: %w", u, err)
		}
		if !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out, nil
}

// activeGroup loads a group this device is a member of: ErrNoGroup when
// the profile does not hold it, ErrNotInGroup when the device left it.
func (cl *Client) activeGroup(ctx context.Context, id []byte) (*groupRow, *mls.Group, error) {
	row, err := cl.p.group(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	if row == nil {
		return nil, nil, ErrNoGroup
	}
	g, err := cl.loadGroup(ctx, row)
	if err != nil {
		return nil, nil, err
	}
	if !row.Active || g.Removed() {
		return nil, nil, ErrNotInGroup
	}
	return row, g, nil
}

// changeGroup loads a group, lets f make a commit, saves the new state if
// no other process changed it meanwhile (else starts again), then sends
// the commit to the members of the old epoch and the Welcome to the added
// devices.
func (cl *Client) changeGroup(ctx context.Context, id []byte, f func(g *mls.Group, devs []wire.Mailbox) (commitMsg, welcome []byte, added []wire.Mailbox, err error)) error {
	for {
		row, g, err := cl.activeGroup(ctx, id)
		if err != nil {
			return err
		}
		before, _ := groupDevices(g)
		c, w, added, err := f(g, before)
		if err != nil || c == nil {
			return err
		}
		state, err := g.MarshalState()
		if err != nil {
			return err
		}
		err = cl.p.update(ctx, func(tx *profile.Tx) error {
			if err := tx.UpdateGroupState(row, state, true); err != nil {
				return err
			}
			if err := cl.queueMLS(tx, cl.others(before), c, nil); err != nil {
				return err
			}
			if w == nil {
				return nil
			}
			return cl.queueMLS(tx, added, w, &wire.GroupMeta{Kind: uint64(row.Kind), Name: row.Name})
		})
		if errors.Is(err, profile.ErrStateChanged) {
			continue
		}
		if err != nil {
			return err
		}
		cl.groupChanged(ctx, g)
		return cl.flushOutbox(ctx)
	}
}

// AddMembers adds every device of the given users to a group.
func (cl *Client) AddMembers(ctx context.Context, id []byte, users []string) error {
	norm, err := normalizeAll(users)
	if err != nil {
		return err
	}
	return cl.changeGroup(ctx, id, func(g *mls.Group, devs []wire.Mailbox) ([]byte, []byte, []wire.Mailbox, error) {
		want, err := cl.targetDevices(ctx, norm)
		if err != nil {
			return nil, nil, nil, err
		}
		for u := range want {
			if !slices.Contains(norm, u) {
				delete(want, u) // own devices are added by linking
			}
		}
		pkgs, added, err := cl.claimFor(ctx, want, devs)
		if err != nil {
			return nil, nil, nil, err
		}
		if len(pkgs) == 0 {
			return nil, nil, nil, errors.New("no new device to add (already members, or no key packages published)")
		}
		c, w, err := commit(g, pkgs, nil)
		return c, w, added, err
	})
}

// RemoveMember removes every device of user from a group.
func (cl *Client) RemoveMember(ctx context.Context, id []byte, user string) error {
	user, err := wire.NormalizeAddress(user)
	if err != nil {
		return err
	}
	return cl.changeGroup(ctx, id, func(g *mls.Group, _ []wire.Mailbox) ([]byte, []byte, []wire.Mailbox, error) {
		var rm []mls.LeafIndex
		for _, m := range g.Members() {
			if mb, ok := memberDevice(m); ok && mb.Address == user && mb != cl.id.Mailbox() {
				rm = append(rm, m.Leaf)
			}
		}
		if len(rm) == 0 {
			return nil, nil, nil, fmt.Errorf("%s is not a member of the group", user)
		}
		c, _, err := commit(g, nil, rm)
		return c, nil, nil, err
	})
}

// removeDeviceFromGroups removes one device from every group holding it.
func (cl *Client) removeDeviceFromGroups(ctx context.Context, dev wire.Mailbox) error {
	rows, err := cl.p.groups(ctx)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if !r.Active {
			continue
		}
		err := cl.changeGroup(ctx, r.ID, func(g *mls.Group, _ []wire.Mailbox) ([]byte, []byte, []wire.Mailbox, error) {
			for _, m := range g.Members() {
				if mb, ok := memberDevice(m); ok && mb == dev {
					c, _, err := commit(g, nil, []mls.LeafIndex{m.Leaf})
					return c, nil, nil, err
				}
			}
			return nil, nil, nil, nil
		})
		if err != nil && !errors.Is(err, ErrNotInGroup) {
			return fmt.Errorf("group %x: %w", r.ID, err)
		}
	}
	return nil
}

// addOwnDeviceToGroups adds a newly linked device of the own account to
// every group this device is in (spec/09-mls.md section 9.5).
func (cl *Client) addOwnDeviceToGroups(ctx context.Context, device uint32, sigKey []byte) error {
	rows, err := cl.p.groups(ctx)
	if err != nil {
		return err
	}
	dev := wire.Mailbox{Address: cl.id.Address, Device: device}
	for _, r := range rows {
		if !r.Active {
			continue
		}
		err := cl.changeGroup(ctx, r.ID, func(g *mls.Group, devs []wire.Mailbox) ([]byte, []byte, []wire.Mailbox, error) {
			if slices.Contains(devs, dev) {
				return nil, nil, nil, nil
			}
			pkgs, added, err := cl.claimKeyPackages(ctx, dev.Address, []uint32{device}, map[uint32][]byte{device: sigKey})
			if err != nil || len(pkgs) == 0 {
				return nil, nil, nil, err
			}
			c, w, err := commit(g, pkgs, nil)
			return c, w, []wire.Mailbox{{Address: dev.Address, Device: added[0]}}, err
		})
		if err != nil && !errors.Is(err, ErrNotInGroup) {
			return fmt.Errorf("group %x: %w", r.ID, err)
		}
	}
	return nil
}

// SendGroup sends text to a group.
func (cl *Client) SendGroup(ctx context.Context, id []byte, text string) error {
	return cl.sendContent(ctx, id, &wire.Content{Type: wire.ContentText, SentAt: uint64(time.Now().UnixMilli()), Text: &text})
}

// sendContent encrypts one content item in a group's current epoch, saves
// the group's state and then sends the message to every other member
// device.
func (cl *Client) sendContent(ctx context.Context, id []byte, c *wire.Content) error {
	_, err := cl.sendContentWith(ctx, id, c, nil)
	return err
}

// sendContentWith is sendContent with a step of the caller's: also, when
// not nil, runs in the transaction that queues the message, given the group
// and the message's identifier. queued reports that the message is in the
// outbox: an error then is about sending it now.
func (cl *Client) sendContentWith(ctx context.Context, id []byte, c *wire.Content, also func(tx *profile.Tx, row *groupRow, msgID [32]byte) error) (queued bool, err error) {
	if err := c.Validate(); err != nil {
		return false, err
	}
	content, err := wire.Marshal(c)
	if err != nil {
		return false, err
	}
	for {
		row, g, err := cl.activeGroup(ctx, id)
		if err != nil {
			return false, err
		}
		msg, err := g.Encrypt(content, nil)
		if err != nil {
			return false, fmt.Errorf("encrypt: %w", err)
		}
		state, err := g.MarshalState()
		if err != nil {
			return false, err
		}
		// The state that consumed the key is saved, with the message in
		// the outbox, before the message leaves: no key is used twice and
		// nothing encrypted is lost.
		devs, _ := groupDevices(g)
		err = cl.p.update(ctx, func(tx *profile.Tx) error {
			if err := tx.UpdateGroupState(row, state, true); err != nil {
				return err
			}
			if also != nil {
				if err := also(tx, row, wire.MessageID(msg)); err != nil {
					return err
				}
			}
			return cl.queueMLS(tx, cl.others(devs), msg, nil)
		})
		if errors.Is(err, profile.ErrStateChanged) {
			continue
		}
		if err != nil {
			return false, err
		}
		if cl.afterQueue != nil {
			cl.afterQueue()
		}
		return true, cl.flushOutbox(ctx)
	}
}

// Send sends text to a user in the one-to-one group with that user,
// creating the group first when there is none.
func (cl *Client) Send(ctx context.Context, to, text string) error {
	to, err := wire.NormalizeAddress(to)
	if err != nil {
		return err
	}
	row, err := cl.p.directGroup(ctx, to)
	if err != nil {
		return err
	}
	var id []byte
	if row != nil {
		id = row.ID
	} else if id, err = cl.createGroup(ctx, wire.GroupKindDirect, "", []string{to}); err != nil {
		return err
	}
	return cl.SendGroup(ctx, id, text)
}
