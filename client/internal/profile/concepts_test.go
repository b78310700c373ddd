package profile

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

func TestIdentity(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	id := &Identity{Address: "alice@a.test", Server: "h:1", CAFile: "ca", SigSeed: bytes.Repeat([]byte{0xa1}, 32),
		HPKEKey: bytes.Repeat([]byte{0xb2}, 32), Token: bytes.Repeat([]byte{0xc3}, 32)}
	update(t, s, func(tx *Tx) error { return tx.InsertIdentity(id) })
	err := s.Update(t.Context(), func(tx *Tx) error { return tx.InsertIdentity(id) })
	if err == nil {
		t.Fatal("a second identity was stored")
	}
	// The error names what failed, not the keys.
	for _, secret := range []string{"a1a1a1", "b2b2b2", "c3c3c3", "\xa1", "\xb2", "\xc3"} {
		if strings.Contains(strings.ToLower(err.Error()), secret) {
			t.Fatalf("error %q shows a secret", err)
		}
	}
	update(t, s, func(tx *Tx) error {
		if err := tx.SetRegistration(4, 1); err != nil {
			return err
		}
		return tx.SetOwnToken([]byte{9})
	})
	view(t, s, func(tx *Tx) error {
		got, err := tx.Identity()
		if err != nil || got.Device != 4 || got.State != 1 || !bytes.Equal(got.Token, []byte{9}) || got.Server != "h:1" || got.CAFile != "ca" {
			t.Fatalf("identity %+v, %v", got, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.DeleteIdentity() })
	view(t, s, func(tx *Tx) error {
		if _, err := tx.Identity(); !errors.Is(err, ErrNotFound) {
			t.Fatalf("identity after delete: %v", err)
		}
		return nil
	})
}

func TestContactsAndDeviceLists(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	devs := []wire.DeviceInfo{{ID: 1}, {ID: 5}}
	update(t, s, func(tx *Tx) error {
		if err := tx.SetContactToken("bob@a.test", []byte{1}); err != nil {
			return err
		}
		if err := tx.SetContactToken("bob@a.test", []byte{2}); err != nil {
			return err
		}
		if err := tx.SetContactToken("carol@a.test", nil); err != nil {
			return err
		}
		return tx.SaveDeviceList("bob@a.test", devs)
	})
	view(t, s, func(tx *Tx) error {
		if tok, err := tx.ContactToken("bob@a.test"); err != nil || !bytes.Equal(tok, []byte{2}) {
			t.Fatalf("bob's token %x, %v", tok, err)
		}
		if tok, err := tx.ContactToken("carol@a.test"); err != nil || tok != nil {
			t.Fatalf("carol's token %x, %v", tok, err)
		}
		if got, err := tx.DeviceList("bob@a.test"); err != nil || len(got) != 2 || got[1].ID != 5 {
			t.Fatalf("device list %+v, %v", got, err)
		}
		return nil
	})
}

func TestMessages(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	gid := []byte{7}
	m := Message{ID: [16]byte{1}, Sender: "bob@a.test", SenderDevice: 2, Recipient: "alice@a.test", Text: "hi",
		SentAt: time.UnixMilli(10), ReceivedAt: time.UnixMilli(20), RequestLane: true, Group: gid, MessageID: [32]byte{3}, Type: 4, Ref: []byte{5}}
	update(t, s, func(tx *Tx) error {
		if err := tx.PutGroup(&Group{ID: gid, Kind: wire.GroupKindGroup, Name: "team", State: []byte{0}, Active: true}); err != nil {
			return err
		}
		for i, want := range []bool{true, false} {
			isNew, err := tx.InsertMessage(&m)
			if err != nil || isNew != want {
				t.Fatalf("insert %d: new %v, %v", i, isNew, err)
			}
		}
		m2 := m
		m2.ID, m2.MessageID = [16]byte{2}, [32]byte{4}
		_, err := tx.InsertMessage(&m2)
		return err
	})
	update(t, s, func(tx *Tx) error { return tx.MarkShown([16]byte{1}) })
	view(t, s, func(tx *Tx) error {
		all, err := tx.Messages(false)
		if err != nil || len(all) != 2 {
			t.Fatalf("messages %+v, %v", all, err)
		}
		got := all[0]
		if got.ID != m.ID || got.Sender != m.Sender || got.SenderDevice != 2 || got.Recipient != m.Recipient || got.Text != "hi" ||
			!got.SentAt.Equal(m.SentAt) || !got.ReceivedAt.Equal(m.ReceivedAt) || !got.RequestLane || !bytes.Equal(got.Group, gid) ||
			got.MessageID != m.MessageID || got.Type != 4 || !bytes.Equal(got.Ref, m.Ref) || got.GroupName != "team" || got.GroupKind != wire.GroupKindGroup {
			t.Fatalf("message read back as %+v", got)
		}
		if un, err := tx.Messages(true); err != nil || len(un) != 1 || un[0].ID != [16]byte{2} {
			t.Fatalf("unshown %+v, %v", un, err)
		}
		if from, err := tx.MessageSender(gid, m.MessageID[:]); err != nil || from != "bob@a.test" {
			t.Fatalf("sender %q, %v", from, err)
		}
		if _, err := tx.MessageSender([]byte{8}, m.MessageID[:]); !errors.Is(err, ErrNotFound) {
			t.Fatalf("sender in another group: %v", err)
		}
		return nil
	})
}

func TestGroups(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	update(t, s, func(tx *Tx) error {
		for _, g := range []*Group{
			{ID: []byte{2}, Kind: wire.GroupKindDirect, Peer: "bob@a.test", State: []byte{1}, Active: true},
			{ID: []byte{1}, Kind: wire.GroupKindDirect, Peer: "bob@a.test", State: []byte{1}, Active: true, Inviter: "bob", JoinedEpoch: 3},
			{ID: []byte{0}, Kind: wire.GroupKindDirect, Peer: "bob@a.test", State: []byte{1}, Active: false},
		} {
			if err := tx.PutGroup(g); err != nil {
				return err
			}
		}
		return nil
	})
	var g *Group
	view(t, s, func(tx *Tx) (err error) {
		// The lowest identifier of the active direct groups.
		g, err = tx.DirectGroup("bob@a.test")
		if err != nil || !bytes.Equal(g.ID, []byte{1}) || g.Inviter != "bob" || g.JoinedEpoch != 3 || g.Version != 1 {
			t.Fatalf("direct group %+v, %v", g, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.UpdateGroupState(g, []byte{2}, true) })
	// Saving from the state read before is refused.
	err := s.Update(t.Context(), func(tx *Tx) error { return tx.UpdateGroupState(g, []byte{3}, true) })
	if !errors.Is(err, ErrStateChanged) {
		t.Fatalf("a stale save: %v", err)
	}
	update(t, s, func(tx *Tx) error { return tx.SetGroupKind([]byte{1}, wire.GroupKindGroup, "") })
	// Put again replaces the group and moves its version on.
	update(t, s, func(tx *Tx) error {
		return tx.PutGroup(&Group{ID: []byte{0}, Kind: wire.GroupKindGroup, Name: "back", State: []byte{4}, Active: true})
	})
	view(t, s, func(tx *Tx) error {
		g, err := tx.Group([]byte{1})
		if err != nil || !bytes.Equal(g.State, []byte{2}) || g.Version != 2 || g.Kind != wire.GroupKindGroup || g.Peer != "" {
			t.Fatalf("group after saves %+v, %v", g, err)
		}
		g, err = tx.Group([]byte{0})
		if err != nil || !g.Active || g.Name != "back" || g.Version != 2 {
			t.Fatalf("replaced group %+v, %v", g, err)
		}
		gs, err := tx.Groups()
		if err != nil || len(gs) != 3 {
			t.Fatalf("groups %+v, %v", gs, err)
		}
		return nil
	})
}

func TestKeyPackages(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	update(t, s, func(tx *Tx) error {
		if err := tx.AddKeyPackage([]byte{1}, []byte{11}, false); err != nil {
			return err
		}
		return tx.AddKeyPackage([]byte{2}, []byte{12}, true)
	})
	view(t, s, func(tx *Tx) error {
		if b, err := tx.KeyPackage([]byte{2}); err != nil || !bytes.Equal(b, []byte{12}) {
			t.Fatalf("key package %x, %v", b, err)
		}
		if ok, err := tx.HasLastResort(); err != nil || !ok {
			t.Fatalf("last resort %v, %v", ok, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error {
		if err := tx.RetireLastResort(); err != nil {
			return err
		}
		return tx.MarkKeyPackageUsed([]byte{1})
	})
	view(t, s, func(tx *Tx) error {
		if ok, err := tx.HasLastResort(); err != nil || ok {
			t.Fatalf("last resort after retiring %v, %v", ok, err)
		}
		// Used packages stay until deleted.
		if _, err := tx.KeyPackage([]byte{1}); err != nil {
			t.Fatalf("used key package: %v", err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.DeleteKeyPackagesUsedBefore(time.Now().Add(time.Minute)) })
	view(t, s, func(tx *Tx) error {
		for _, ref := range [][]byte{{1}, {2}} {
			if _, err := tx.KeyPackage(ref); !errors.Is(err, ErrNotFound) {
				t.Fatalf("key package %x after delete: %v", ref, err)
			}
		}
		return nil
	})
}

func TestHeldMessages(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	known, unknown, left := []byte{1}, []byte{2}, []byte{3}
	update(t, s, func(tx *Tx) error {
		if err := tx.PutGroup(&Group{ID: known, State: []byte{0}, Active: true}); err != nil {
			return err
		}
		if err := tx.PutGroup(&Group{ID: left, State: []byte{0}, Active: false}); err != nil {
			return err
		}
		// Three for a known group (at most 2 kept), three for a group
		// not held (at most 2 kept for such groups), one for a group left.
		for i, g := range [][]byte{known, known, known, unknown, unknown, unknown, left} {
			m := &HeldMessage{EnvelopeID: []byte{byte(i)}, GroupID: g, Sender: "bob@a.test", SenderDevice: 2, SenderKey: []byte{9},
				Payload: []byte{byte(i)}, ReceivedAt: time.UnixMilli(int64(1000 * (i + 1))), Lane: 1}
			if err := tx.Hold(m, 2, 2); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx *Tx) error {
		h, err := tx.HeldMessages(known)
		if err != nil || len(h) != 2 || h[0].EnvelopeID[0] != 1 || h[1].EnvelopeID[0] != 2 || h[0].Sender != "bob@a.test" ||
			h[0].SenderDevice != 2 || !bytes.Equal(h[0].SenderKey, []byte{9}) || h[0].Lane != 1 || !h[0].ReceivedAt.Equal(time.UnixMilli(2000)) {
			t.Fatalf("held for the known group %+v, %v", h, err)
		}
		if h, err := tx.HeldMessages(unknown); err != nil || len(h) != 2 || h[0].EnvelopeID[0] != 4 || h[1].EnvelopeID[0] != 5 {
			t.Fatalf("held for an unknown group %+v, %v (the newest unknown ones are kept)", h, err)
		}
		if held, err := tx.IsHeld([]byte{0}); err != nil || held {
			t.Fatalf("the oldest of a full group still held: %v, %v", held, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error {
		if err := tx.Unhold([]byte{1}); err != nil {
			return err
		}
		return tx.ExpireHeld(time.UnixMilli(2500))
	})
	view(t, s, func(tx *Tx) error {
		for i, want := range []bool{false, false, true, false, true, true, false} {
			if held, err := tx.IsHeld([]byte{byte(i)}); err != nil || held != want {
				t.Fatalf("envelope %d held %v (%v), want %v", i, held, err, want)
			}
		}
		return nil
	})
}

func TestFragments(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	hash := []byte{0xaa}
	update(t, s, func(tx *Tx) error {
		for _, i := range []uint64{1, 0, 1} {
			f := &Fragment{Hash: hash, Sender: "bob@a.test", SenderDevice: 2, SenderKey: []byte{9}, Index: i, Count: 2,
				Data: []byte{byte(i), byte(i)}, ReceivedAt: time.UnixMilli(int64(1000 + i)), Lane: 1}
			if err := tx.AddFragment(f); err != nil {
				return err
			}
		}
		return tx.AddFragment(&Fragment{Hash: hash, Sender: "bob@a.test", SenderDevice: 3, SenderKey: []byte{8}, Data: []byte{7}, ReceivedAt: time.UnixMilli(5000)})
	})
	view(t, s, func(tx *Tx) error {
		fs, err := tx.Fragments(hash, "bob@a.test", 2)
		if err != nil || len(fs) != 2 || fs[0].Index != 0 || fs[1].Index != 1 || fs[1].Count != 2 || !bytes.Equal(fs[1].Data, []byte{1, 1}) ||
			!bytes.Equal(fs[0].SenderKey, []byte{9}) || fs[0].Lane != 1 {
			t.Fatalf("fragments %+v, %v", fs, err)
		}
		return nil
	})
	// 5 bytes in all; keeping 3 keeps the newest (1 + 2 bytes).
	update(t, s, func(tx *Tx) error { return tx.TrimFragments(3) })
	view(t, s, func(tx *Tx) error {
		fs, err := tx.Fragments(hash, "bob@a.test", 2)
		if err != nil || len(fs) != 1 || fs[0].Index != 0 {
			t.Fatalf("fragments after trimming %+v, %v", fs, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error {
		if err := tx.DeleteFragments(hash, "bob@a.test", 2); err != nil {
			return err
		}
		return tx.ExpireFragments(time.UnixMilli(6000))
	})
	view(t, s, func(tx *Tx) error {
		for _, dev := range []uint32{2, 3} {
			if fs, err := tx.Fragments(hash, "bob@a.test", dev); err != nil || len(fs) != 0 {
				t.Fatalf("device %d fragments %+v, %v", dev, fs, err)
			}
		}
		return nil
	})
}

func TestProcessed(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	update(t, s, func(tx *Tx) error {
		if err := tx.MarkProcessed([]byte{1}); err != nil {
			return err
		}
		return tx.MarkProcessed([]byte{1}) // twice is fine
	})
	view(t, s, func(tx *Tx) error {
		if seen, err := tx.Processed([]byte{1}); err != nil || !seen {
			t.Fatalf("processed %v, %v", seen, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.ForgetProcessed(time.Now().Add(-time.Hour)) })
	view(t, s, func(tx *Tx) error {
		if seen, err := tx.Processed([]byte{1}); err != nil || !seen {
			t.Fatalf("a recent one forgotten: %v, %v", seen, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.ForgetProcessed(time.Now().Add(time.Hour)) })
	view(t, s, func(tx *Tx) error {
		if seen, err := tx.Processed([]byte{1}); err != nil || seen {
			t.Fatalf("an old one kept: %v, %v", seen, err)
		}
		return nil
	})
}

func TestOwnDevices(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	update(t, s, func(tx *Tx) error {
		for _, d := range []struct {
			dev uint32
			key byte
		}{{2, 1}, {3, 1}, {2, 2}} {
			if err := tx.TrustOwnDevice(d.dev, []byte{d.key}); err != nil {
				return err
			}
		}
		return tx.UntrustOwnDevice(3)
	})
	view(t, s, func(tx *Tx) error {
		own, err := tx.OwnDevices()
		if err != nil || len(own) != 1 || !bytes.Equal(own[2], []byte{2}) {
			t.Fatalf("own devices %v, %v", own, err)
		}
		if k, err := tx.OwnDeviceKey(2); err != nil || !bytes.Equal(k, []byte{2}) {
			t.Fatalf("key of device 2 %x, %v", k, err)
		}
		return nil
	})
}

func TestLinks(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	now := time.Now()
	update(t, s, func(tx *Tx) error {
		for _, l := range []*Link{
			{Token: []byte{1}, Secret: []byte{11}, Device: 1, Expires: now.Add(time.Minute), Role: LinkShown},
			{Token: []byte{2}, Secret: []byte{12}, Device: 1, Expires: now.Add(-time.Minute), Role: LinkShown},
			{Token: []byte{3}, Secret: []byte{13}, Device: 4, Expires: now.Add(time.Hour), Role: LinkJoining},
		} {
			if err := tx.AddLink(l); err != nil {
				return err
			}
		}
		return nil
	})
	view(t, s, func(tx *Tx) error {
		if sec, err := tx.LinkSecret([]byte{1}, LinkShown); err != nil || !bytes.Equal(sec, []byte{11}) {
			t.Fatalf("link secret %x, %v", sec, err)
		}
		if _, err := tx.LinkSecret([]byte{2}, LinkShown); !errors.Is(err, ErrNotFound) {
			t.Fatalf("expired link: %v", err)
		}
		if _, err := tx.LinkSecret([]byte{3}, LinkShown); !errors.Is(err, ErrNotFound) {
			t.Fatalf("link of the other role: %v", err)
		}
		l, err := tx.JoinLink()
		if err != nil || !bytes.Equal(l.Token, []byte{3}) || !bytes.Equal(l.Secret, []byte{13}) || l.Device != 4 || l.Role != LinkJoining {
			t.Fatalf("join link %+v, %v", l, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error {
		if err := tx.DeleteExpiredLinks(); err != nil {
			return err
		}
		if err := tx.DeleteLink([]byte{1}); err != nil {
			return err
		}
		return tx.DeleteLinks(LinkJoining)
	})
	var n int
	if err := s.db.QueryRow(`SELECT count(*) FROM links`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("%d links left, %v", n, err)
	}
}

func TestOutbox(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	targets := []wire.Mailbox{{Address: "bob@a.test", Device: 2}, {Address: "carol@b.test", Device: 1}}
	var first int64
	update(t, s, func(tx *Tx) (err error) {
		if first, err = tx.QueueOut([]byte{1}, targets); err != nil {
			return err
		}
		_, err = tx.QueueOut([]byte{2}, targets[:1])
		return err
	})
	view(t, s, func(tx *Tx) error {
		out, err := tx.Outbox()
		if err != nil || len(out) != 2 || out[0].ID != first || !bytes.Equal(out[0].Payload, []byte{1}) || len(out[0].Targets) != 2 ||
			out[0].Targets[1] != targets[1] || len(out[1].Targets) != 1 {
			t.Fatalf("outbox %+v, %v", out, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.DeleteOut(first) })
	view(t, s, func(tx *Tx) error {
		if out, err := tx.Outbox(); err != nil || len(out) != 1 || out[0].Payload[0] != 2 {
			t.Fatalf("outbox after sending the first %+v, %v", out, err)
		}
		return nil
	})
	// A payload that reached some targets keeps only the others.
	var second int64
	view(t, s, func(tx *Tx) error {
		out, err := tx.Outbox()
		if err != nil || time.Since(out[0].Queued) > time.Minute || time.Since(out[0].Queued) < 0 {
			t.Fatalf("outbox %+v, %v: queued time", out, err)
		}
		second = out[0].ID
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.SetOutTargets(second, targets[1:]) })
	view(t, s, func(tx *Tx) error {
		if out, err := tx.Outbox(); err != nil || len(out) != 1 || len(out[0].Targets) != 1 || out[0].Targets[0] != targets[1] {
			t.Fatalf("outbox after narrowing the targets %+v, %v", out, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error {
		if err := tx.SetOutTargets(first, targets); !errors.Is(err, ErrNotFound) {
			t.Fatalf("narrowing a sent payload: %v, want ErrNotFound", err)
		}
		return nil
	})
}
