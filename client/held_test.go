package client

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/client/mls"
	"github.com/xchat-im/xchat/spec/wire"
)

// acceptAnyCredential is the credential policy of the groups that tests
// drive directly: it accepts every credential.
func acceptAnyCredential(mls.Credential, []byte) error { return nil }

// member is a group member driven directly by a test.
type member struct {
	sender sender
	bundle *mls.KeyPackageBundle
	g      *mls.Group
}

func newMember(t *testing.T, domainKey ed25519.PrivateKey, addr string) *member {
	t.Helper()
	pub, priv, _ := ed25519.GenerateKey(nil)
	cert, err := wire.IssueSenderCert(domainKey, wire.SenderCertBody{Address: addr, Device: 1, SigKey: pub, Expires: uint64(time.Now().Add(time.Hour).Unix())})
	if err != nil {
		t.Fatal(err)
	}
	b, err := mls.NewKeyPackage(suite(), mls.Credential{Type: mls.CredentialTypeXchat, Identity: cert}, priv.Seed(), mls.XchatKeyPackageOptions())
	if err != nil {
		t.Fatal(err)
	}
	return &member{sender: sender{Address: addr, Device: 1, SigKey: pub}, bundle: b}
}

// held wraps an MLS message as an envelope received from m.
func (m *member) held(t *testing.T, n int, msg []byte, meta *wire.GroupMeta) (*heldMessage, *wire.MLSPayload) {
	t.Helper()
	p := &wire.MLSPayload{Mode: wire.PayloadMLS, Message: msg, Meta: meta}
	b, err := wire.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	id := make([]byte, 16)
	id[0] = byte(n)
	return &heldMessage{EnvelopeID: id, Sender: m.sender, Payload: b, ReceivedAt: time.Now()}, p
}

// device under test: a Client with no connection whose profile holds the
// given members' key packages as its own (own-domain credentials verify
// with domainKey, without the network).
func testClient(t *testing.T, domainKey ed25519.PrivateKey, addr string, bundles ...*mls.KeyPackageBundle) (*Client, *Profile) {
	t.Helper()
	p, err := OpenProfile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	cl := &Client{p: p, id: &Identity{Address: addr, Device: 1}, domainKey0: domainKey.Public().(ed25519.PublicKey)}
	for _, b := range bundles {
		storeBundle(t, p, b)
	}
	return cl, p
}

// storeBundle keeps a key package's private keys in the profile, as
// publishing it does.
func storeBundle(t *testing.T, p *Profile, b *mls.KeyPackageBundle) {
	t.Helper()
	ref, _ := b.Ref()
	enc, _ := b.MarshalBinary()
	if err := p.update(t.Context(), func(tx *profile.Tx) error { return tx.AddKeyPackage(ref, enc, false) }); err != nil {
		t.Fatal(err)
	}
}

// create makes m the creator of a group with the given members and
// returns the Welcome.
func (m *member) create(t *testing.T, id []byte, others ...*member) []byte {
	t.Helper()
	var err error
	if m.g, err = mls.CreateGroup(suite(), id, m.bundle, mls.Config{ValidateCredential: acceptAnyCredential}); err != nil {
		t.Fatal(err)
	}
	var add []mls.KeyPackage
	for _, o := range others {
		add = append(add, o.bundle.KeyPackage)
	}
	_, welcome, err := m.g.Commit(mls.CommitOptions{Add: add})
	if err != nil {
		t.Fatal(err)
	}
	return welcome
}

// A Welcome never replaces a group the device is in; a group with a third
// user is not a direct chat, whatever its metadata says; proposals are
// dropped.
func TestWelcomeRules(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, domainKey, _ := ed25519.GenerateKey(nil)
	alice, mallory := newMember(t, domainKey, "alice@a.test"), newMember(t, domainKey, "mallory@a.test")
	bob, bob2 := newMember(t, domainKey, "bob@a.test"), newMember(t, domainKey, "bob@a.test")
	bob2.bundle, _ = mls.NewKeyPackage(suite(), bob.bundle.KeyPackage.LeafNode.Credential, bob.bundle.SignaturePriv, mls.XchatKeyPackageOptions())
	cl, p := testClient(t, domainKey, "bob@a.test", bob.bundle, bob2.bundle)

	gid := make([]byte, 16)
	h, pl := alice.held(t, 1, alice.create(t, gid, bob), &wire.GroupMeta{Kind: wire.GroupKindDirect})
	if _, err := cl.receiveMLS(ctx, h, pl); err != nil {
		t.Fatal(err)
	}
	// Mallory makes a group with the same identifier, a later epoch and
	// bob in it: it must not replace the chat with alice.
	w := mallory.create(t, gid, bob2)
	for range 3 {
		if _, _, err := mallory.g.Commit(mls.CommitOptions{Update: true}); err != nil {
			t.Fatal(err)
		}
	}
	h, pl = mallory.held(t, 2, w, &wire.GroupMeta{Kind: wire.GroupKindDirect})
	var d *dropError
	if _, err := cl.receiveMLS(ctx, h, pl); !errors.As(err, &d) {
		t.Fatalf("a Welcome for a group the device is in: %v", err)
	}
	if g, _ := p.directGroup(ctx, "alice@a.test"); g == nil || !bytes.Equal(g.ID, gid) {
		t.Fatalf("direct group with alice %+v", g)
	}

	// A "direct" group of three users is a group chat.
	carol := newMember(t, domainKey, "carol@a.test")
	bob3 := &member{sender: bob.sender}
	bob3.bundle, _ = mls.NewKeyPackage(suite(), bob.bundle.KeyPackage.LeafNode.Credential, bob.bundle.SignaturePriv, mls.XchatKeyPackageOptions())
	storeBundle(t, p, bob3.bundle)
	gid2 := bytes.Repeat([]byte{1}, 16)
	h, pl = mallory.held(t, 3, mallory.create(t, gid2, bob3, carol), &wire.GroupMeta{Kind: wire.GroupKindDirect})
	if _, err := cl.receiveMLS(ctx, h, pl); err != nil {
		t.Fatal(err)
	}
	if g, _ := p.group(ctx, gid2); g == nil || g.Kind != wire.GroupKindGroup || g.Peer != "" {
		t.Fatalf("a three-user group kept as %+v", g)
	}

	// A proposal, even from a member, is dropped.
	prop, err := alice.g.ProposeRemove(mls.LeafIndex(1))
	if err != nil {
		t.Fatal(err)
	}
	h, pl = alice.held(t, 4, prop, nil)
	if _, err := cl.receiveMLS(ctx, h, pl); !errors.As(err, &d) {
		t.Fatalf("a proposal: %v", err)
	}
}

// A message of an epoch the device has not reached (its commit, from
// another member, is still on its way) is held and delivered once the
// commit arrives; a message whose sealed sender is not its MLS sender is
// dropped.
func TestHeldUntilCommit(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, domainKey, _ := ed25519.GenerateKey(nil)
	alice, carol := newMember(t, domainKey, "alice@a.test"), newMember(t, domainKey, "carol@a.test")
	bob := newMember(t, domainKey, "bob@a.test")

	cl, p := testClient(t, domainKey, "bob@a.test", bob.bundle)
	var err error

	welcome := alice.create(t, make([]byte, 16), bob, carol)
	if carol.g, err = mls.JoinFromWelcome(welcome, func([]byte) *mls.KeyPackageBundle { return carol.bundle }, nil, mls.Config{ValidateCredential: acceptAnyCredential}); err != nil {
		t.Fatal(err)
	}
	h, pl := alice.held(t, 1, welcome, &wire.GroupMeta{Kind: wire.GroupKindGroup, Name: "g"})
	if _, err := cl.receiveMLS(ctx, h, pl); err != nil {
		t.Fatalf("welcome: %v", err)
	}

	commit, _, err := alice.g.Commit(mls.CommitOptions{Update: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := carol.g.Process(commit); err != nil {
		t.Fatal(err)
	}
	text := "sent in the new epoch"
	content, _ := wire.Marshal(&wire.Content{Type: wire.ContentText, SentAt: 1, Text: &text})
	msg, err := carol.g.Encrypt(content, nil)
	if err != nil {
		t.Fatal(err)
	}

	// Carol's message arrives before alice's commit: it is held.
	h, pl = carol.held(t, 2, msg, nil)
	if got, err := cl.receiveMLS(ctx, h, pl); err != nil || len(got) != 0 {
		t.Fatalf("early message: %v, %+v", err, got)
	}
	if held, _ := p.heldMessages(ctx, make([]byte, 16)); len(held) != 1 {
		t.Fatalf("%d held messages", len(held))
	}
	// The same MLS message sealed by another device is not carol's.
	h2, pl2 := alice.held(t, 3, commit, nil)
	h2.Sender = carol.sender
	if _, err := cl.receiveMLS(ctx, h2, pl2); err == nil {
		t.Fatal("a commit sealed by another device than its MLS sender was accepted")
	}
	h, pl = alice.held(t, 4, commit, nil)
	got, err := cl.receiveMLS(ctx, h, pl)
	if err != nil || len(got) != 1 || got[0].Text != text || got[0].From != "carol@a.test" || got[0].GroupName != "g" {
		t.Fatalf("after the commit: %v, %s", err, fmt.Sprint(got))
	}
	if held, _ := p.heldMessages(ctx, make([]byte, 16)); len(held) != 0 {
		t.Fatalf("%d messages still held", len(held))
	}
	// A redelivery of an envelope already processed is acknowledged and
	// ignored.
	if seen, err := p.processed(ctx, h.EnvelopeID); err != nil || !seen {
		t.Fatalf("processed %v %v", seen, err)
	}
}

// A Welcome too large for one envelope (a group of 60 with the hybrid
// suite) arrives in fragments, in any order, and is joined once complete;
// a fragment from another device does not complete it.
func TestFragmentedWelcome(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	_, domainKey, _ := ed25519.GenerateKey(nil)
	alice, bob := newMember(t, domainKey, "alice@a.test"), newMember(t, domainKey, "bob@a.test")
	cl, p := testClient(t, domainKey, "bob@a.test", bob.bundle)
	var err error
	others := []*member{bob}
	for i := range 58 {
		others = append(others, newMember(t, domainKey, fmt.Sprintf("user%d@a.test", i)))
	}
	welcome := alice.create(t, make([]byte, 16), others...)
	payload, _ := wire.Marshal(&wire.MLSPayload{Mode: wire.PayloadMLS, Message: welcome, Meta: &wire.GroupMeta{Name: "sixty"}})
	frags, err := wire.Fragment(payload)
	if err != nil || len(frags) < 2 {
		t.Fatalf("welcome of %d bytes in %d fragments: %v", len(welcome), len(frags), err)
	}
	deliver := func(i int, f []byte, from sender) ([]Message, error) {
		dp, err := wire.DecodePayload(f)
		if err != nil {
			t.Fatal(err)
		}
		id := make([]byte, 16)
		id[0], id[1] = byte(i), byte(from.Device)
		return cl.receiveFragment(ctx, wire.Delivery{ID: id, ReceivedAt: uint64(time.Now().UnixMilli())}, from, dp.(*wire.FragmentPayload))
	}
	last := len(frags) - 1
	// The last fragment first; then every fragment but the first from
	// another device of alice: neither completes the Welcome.
	if _, err := deliver(last, frags[last], alice.sender); err != nil {
		t.Fatal(err)
	}
	other := alice.sender
	other.Device = 2
	for i := 1; i < len(frags); i++ {
		if _, err := deliver(100+i, frags[i], other); err != nil {
			t.Fatal(err)
		}
	}
	for i := 0; i < last; i++ {
		if _, err := deliver(i, frags[i], alice.sender); err != nil {
			t.Fatalf("fragment %d: %v", i, err)
		}
	}
	gs, err := ProfileGroups(ctx, p)
	if err != nil || len(gs) != 1 || gs[0].Name != "sixty" || gs[0].Devices != 60 {
		t.Fatalf("groups %+v, %v", gs, err)
	}
	first, _ := wire.DecodePayload(frags[0])
	var kept []*profile.Fragment
	if err := p.view(ctx, func(tx *profile.Tx) (err error) {
		kept, err = tx.Fragments(first.(*wire.FragmentPayload).Hash, alice.sender.Address, alice.sender.Device)
		return err
	}); err != nil || len(kept) != 0 {
		t.Fatalf("%d fragments kept after the Welcome was joined (%v)", len(kept), err)
	}
}
