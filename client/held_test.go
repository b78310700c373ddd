package client

import (
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/mls"
	"github.com/xchat-im/xchat/spec/wire"
)

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

	p, err := OpenProfile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	cl := &Client{p: p, id: &Identity{Address: "bob@a.test", Device: 1}, domainKey0: domainKey.Public().(ed25519.PublicKey)}
	ref, _ := bob.bundle.Ref()
	enc, _ := bob.bundle.MarshalBinary()
	if err := p.inTx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO key_packages (ref, bundle, last_resort, created_at_ms) VALUES (?, ?, 0, 0)`, ref, enc)
		return err
	}); err != nil {
		t.Fatal(err)
	}

	if alice.g, err = mls.CreateGroup(suite(), make([]byte, 16), alice.bundle, mls.Config{}); err != nil {
		t.Fatal(err)
	}
	_, welcome, err := alice.g.Commit(mls.CommitOptions{Add: []mls.KeyPackage{bob.bundle.KeyPackage, carol.bundle.KeyPackage}})
	if err != nil {
		t.Fatal(err)
	}
	if carol.g, err = mls.JoinFromWelcome(welcome, func([]byte) *mls.KeyPackageBundle { return carol.bundle }, nil, mls.Config{}); err != nil {
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
