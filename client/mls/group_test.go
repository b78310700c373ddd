package mls

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/secrettree"
	"github.com/xchat-im/xchat/client/mls/internal/welcome"
)

// testSuites are the suites the group tests run with: xchat's default and
// the interoperability suite.
var testSuites = []CipherSuiteID{XWingAES128GCMSHA256Ed25519, X25519AES128GCMSHA256Ed25519}

func forSuites(t *testing.T, f func(t *testing.T, cs *CipherSuite)) {
	for _, id := range testSuites {
		t.Run(fmt.Sprintf("0x%04x", uint16(id)), func(t *testing.T) {
			t.Parallel()
			cs, err := LookupSuite(id)
			if err != nil {
				t.Fatal(err)
			}
			f(t, cs)
		})
	}
}

func newBundle(t testing.TB, cs *CipherSuite, name string) *KeyPackageBundle {
	t.Helper()
	priv, _, err := cs.GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewKeyPackage(cs, Credential{Type: CredentialTypeXchat, Identity: []byte(name)}, priv, XchatKeyPackageOptions())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func bundleLookup(bs ...*KeyPackageBundle) func([]byte) *KeyPackageBundle {
	return func(ref []byte) *KeyPackageBundle {
		for _, b := range bs {
			if r, err := b.Ref(); err == nil && bytes.Equal(r, ref) {
				return b
			}
		}
		return nil
	}
}

// newTestGroup creates a group of n members: the first creates it and
// adds the others in one commit.
func newTestGroup(t testing.TB, cs *CipherSuite, n int, cfg Config) []*Group {
	t.Helper()
	creator := newBundle(t, cs, "m0")
	g0, err := CreateGroup(cs, []byte("test group"), creator, cfg)
	if err != nil {
		t.Fatal(err)
	}
	gs := []*Group{g0}
	if n == 1 {
		return gs
	}
	var kps []KeyPackage
	var bs []*KeyPackageBundle
	for i := 1; i < n; i++ {
		b := newBundle(t, cs, fmt.Sprintf("m%d", i))
		bs = append(bs, b)
		kps = append(kps, b.KeyPackage)
	}
	_, w, err := g0.Commit(CommitOptions{Add: kps})
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bs {
		g, err := JoinFromWelcome(w, bundleLookup(b), nil, cfg)
		if err != nil {
			t.Fatal(err)
		}
		gs = append(gs, g)
	}
	sameState(t, gs...)
	return gs
}

// sameState checks that the groups share epoch and epoch authenticator.
func sameState(t testing.TB, gs ...*Group) {
	t.Helper()
	for i, g := range gs[1:] {
		if g.Epoch() != gs[0].Epoch() || !bytes.Equal(g.EpochAuthenticator(), gs[0].EpochAuthenticator()) {
			t.Fatalf("member %d: epoch %d, member 0: epoch %d (authenticators differ: %v)", i+1, g.Epoch(), gs[0].Epoch(),
				!bytes.Equal(g.EpochAuthenticator(), gs[0].EpochAuthenticator()))
		}
	}
}

// deliver processes msg at every group, failing on errors.
func deliver(t testing.TB, msg []byte, gs ...*Group) []*Processed {
	t.Helper()
	var out []*Processed
	for i, g := range gs {
		p, err := g.Process(msg)
		if err != nil {
			t.Fatalf("recipient %d: %v", i, err)
		}
		out = append(out, p)
	}
	return out
}

func mustEncrypt(t testing.TB, g *Group, text string) []byte {
	t.Helper()
	m, err := g.Encrypt([]byte(text), []byte("ad"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func expectText(t testing.TB, g *Group, msg []byte, text string) {
	t.Helper()
	p, err := g.Process(msg)
	if err != nil {
		t.Fatalf("process: %v", err)
	}
	if p.Kind != KindApplication || string(p.Plaintext) != text || string(p.AuthenticatedData) != "ad" {
		t.Fatalf("got kind %d %q", p.Kind, p.Plaintext)
	}
}

func expectErr(t testing.TB, err error, targets ...error) {
	t.Helper()
	if err == nil {
		t.Fatalf("no error, want %v", targets)
	}
	for _, target := range targets {
		if !errors.Is(err, target) {
			t.Fatalf("error %v, want %v", err, target)
		}
	}
}

func commit(t testing.TB, g *Group, opts CommitOptions) (c, w []byte) {
	t.Helper()
	c, w, err := g.Commit(opts)
	if err != nil {
		t.Fatal(err)
	}
	return c, w
}

func TestGroupLifecycle(t *testing.T) {
	forSuites(t, func(t *testing.T, cs *CipherSuite) {
		gs := newTestGroup(t, cs, 3, Config{ValidateCredential: acceptAnyCredential})
		a, b, c := gs[0], gs[1], gs[2]
		if got := len(a.Members()); got != 3 {
			t.Fatalf("%d members", got)
		}
		if m := b.Members()[2]; string(m.Credential.Identity) != "m2" || m.Credential.Type != CredentialTypeXchat {
			t.Fatalf("member 2: %+v", m.Credential)
		}
		m := mustEncrypt(t, a, "hello")
		expectText(t, b, m, "hello")
		expectText(t, c, m, "hello")

		// Updates by each member, with and without pending proposals.
		cm, _ := commit(t, b, CommitOptions{Update: true})
		deliver(t, cm, a, c)
		sameState(t, a, b, c)
		up, err := c.ProposeUpdate()
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, up, a, b)
		cm, _ = commit(t, a, CommitOptions{})
		ps := deliver(t, cm, b, c)
		if len(ps[0].Updated) != 1 || ps[0].Updated[0].Leaf != 2 {
			t.Fatalf("updated: %+v", ps[0].Updated)
		}
		sameState(t, a, b, c)

		// D joins; it cannot read what was sent before.
		before := mustEncrypt(t, b, "before D")
		d := newBundle(t, cs, "d")
		cm, w := commit(t, a, CommitOptions{Add: []KeyPackage{d.KeyPackage}})
		ps = deliver(t, cm, b, c)
		if len(ps[0].Added) != 1 || string(ps[0].Added[0].Credential.Identity) != "d" {
			t.Fatalf("added: %+v", ps[0].Added)
		}
		gd, err := JoinFromWelcome(w, bundleLookup(d), nil, Config{ValidateCredential: acceptAnyCredential})
		if err != nil {
			t.Fatal(err)
		}
		sameState(t, a, b, c, gd)
		_, err = gd.Process(before)
		expectErr(t, err, ErrWrongEpoch)
		expectText(t, c, before, "before D") // retained epoch
		m = mustEncrypt(t, gd, "from D")
		for _, g := range []*Group{a, b, c} {
			expectText(t, g, m, "from D")
		}

		// C is removed: it learns it, and reads nothing afterwards.
		cm, _ = commit(t, b, CommitOptions{Remove: []LeafIndex{c.OwnLeaf()}})
		deliver(t, cm, a, gd)
		p, err := c.Process(cm)
		if err != nil || !p.SelfRemoved || len(p.Removed) != 1 {
			t.Fatalf("removed member: %+v %v", p, err)
		}
		sameState(t, a, b, gd)
		after := mustEncrypt(t, a, "after C")
		_, err = c.Process(after)
		expectErr(t, err, ErrRemoved)
		expectText(t, gd, after, "after C")

		// A removed member that missed its removal cannot read either.
		e := newTestGroup(t, cs, 3, Config{ValidateCredential: acceptAnyCredential})
		cm, _ = commit(t, e[0], CommitOptions{Remove: []LeafIndex{2}})
		deliver(t, cm, e[1])
		after = mustEncrypt(t, e[0], "secret")
		_, err = e[2].Process(after)
		expectErr(t, err, ErrWrongEpoch)

		// Exports agree.
		x1, err := a.Export("test", []byte("ctx"), 32)
		if err != nil {
			t.Fatal(err)
		}
		x2, _ := gd.Export("test", []byte("ctx"), 32)
		if !bytes.Equal(x1, x2) {
			t.Fatal("exports differ")
		}
	})
}

func TestGroupProposalsByReference(t *testing.T) {
	forSuites(t, func(t *testing.T, cs *CipherSuite) {
		gs := newTestGroup(t, cs, 4, Config{ValidateCredential: acceptAnyCredential, EncryptHandshake: true})
		a, b, c, d := gs[0], gs[1], gs[2], gs[3]
		e := newBundle(t, cs, "e")
		p1, err := b.ProposeAdd(e.KeyPackage)
		if err != nil {
			t.Fatal(err)
		}
		p2, err := c.ProposeRemove(d.OwnLeaf())
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, p1, a, c, d)
		deliver(t, p2, a, b, d)
		_, err = a.Process(p1)
		expectErr(t, err, ErrReplay)
		cm, w := commit(t, a, CommitOptions{})
		deliver(t, cm, b, c)
		p, err := d.Process(cm)
		if err != nil || !p.SelfRemoved {
			t.Fatalf("%+v %v", p, err)
		}
		ge, err := JoinFromWelcome(w, bundleLookup(e), nil, Config{ValidateCredential: acceptAnyCredential, EncryptHandshake: true})
		if err != nil {
			t.Fatal(err)
		}
		sameState(t, a, b, c, ge)
		m := mustEncrypt(t, ge, "hi")
		expectText(t, a, m, "hi")
	})
}

func TestGroupCredentialHook(t *testing.T) {
	cs, _ := LookupSuite(X25519AES128GCMSHA256Ed25519)
	reject := errors.New("not allowed")
	cfg := Config{ValidateCredential: func(c Credential, key []byte) error {
		if string(c.Identity) == "mallory" {
			return reject
		}
		return nil
	}}
	gs := newTestGroup(t, cs, 2, cfg)
	mal := newBundle(t, cs, "mallory")
	_, _, err := gs[0].Commit(CommitOptions{Add: []KeyPackage{mal.KeyPackage}})
	expectErr(t, err, ErrInvalidCredential, reject)
	// A member with a lax policy adds mallory; the strict one refuses.
	lax := newTestGroup(t, cs, 2, Config{ValidateCredential: acceptAnyCredential})
	strict, err := UnmarshalGroup(mustState(t, lax[1]), cfg)
	if err != nil {
		t.Fatal(err)
	}
	cm, _ := commit(t, lax[0], CommitOptions{Add: []KeyPackage{mal.KeyPackage}})
	_, err = strict.Process(cm)
	expectErr(t, err, ErrInvalidCredential)
	if _, err := CreateGroup(cs, []byte("x"), mal, cfg); !errors.Is(err, ErrInvalidCredential) {
		t.Fatal(err)
	}
}

func mustState(t testing.TB, g *Group) []byte {
	t.Helper()
	b, err := g.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestGroupStateRoundTrip(t *testing.T) {
	forSuites(t, func(t *testing.T, cs *CipherSuite) {
		gs := newTestGroup(t, cs, 3, Config{ValidateCredential: acceptAnyCredential})
		a, b, c := gs[0], gs[1], gs[2]
		early := mustEncrypt(t, a, "early")
		m1 := mustEncrypt(t, a, "one")
		expectText(t, b, m1, "one")
		up, err := c.ProposeUpdate()
		if err != nil {
			t.Fatal(err)
		}
		deliver(t, up, a, b)
		// Reload everyone mid-epoch (pending proposals, skipped keys).
		for i, g := range gs {
			r, err := UnmarshalGroup(mustState(t, g), Config{ValidateCredential: acceptAnyCredential})
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(mustState(t, r), mustState(t, g)) {
				t.Fatalf("member %d: state changes across a round trip", i)
			}
			gs[i] = r
		}
		a, b, c = gs[0], gs[1], gs[2]
		expectText(t, b, early, "early")
		_, err = b.Process(m1)
		expectErr(t, err, ErrReplay)
		cm, _ := commit(t, b, CommitOptions{})
		deliver(t, cm, a, c)
		sameState(t, a, b, c)
		m := mustEncrypt(t, c, "after reload")
		expectText(t, a, m, "after reload")
		expectText(t, b, m, "after reload")
		if _, err := UnmarshalGroup(mustState(t, a)[:40], Config{ValidateCredential: acceptAnyCredential}); err == nil {
			t.Fatal("truncated state accepted")
		}
	})
}

func TestGroupExternalJoin(t *testing.T) {
	forSuites(t, func(t *testing.T, cs *CipherSuite) {
		gs := newTestGroup(t, cs, 2, Config{ValidateCredential: acceptAnyCredential})
		a, b := gs[0], gs[1]
		for i, withTree := range []bool{true, false} {
			gi, err := b.GroupInfo(withTree)
			if err != nil {
				t.Fatal(err)
			}
			var tree []byte
			if !withTree {
				if tree, err = b.RatchetTree(); err != nil {
					t.Fatal(err)
				}
			}
			x := newBundle(t, cs, fmt.Sprint("x", i))
			gx, cm, err := JoinExternal(cs, gi, x, tree, Config{ValidateCredential: acceptAnyCredential})
			if err != nil {
				t.Fatal(err)
			}
			ps := deliver(t, cm, gs...)
			if len(ps[0].Added) != 1 || ps[0].senderType != message.SenderTypeNewMemberCommit {
				t.Fatalf("%+v", ps[0])
			}
			gs = append(gs, gx)
			sameState(t, gs...)
			m := mustEncrypt(t, gx, "joined")
			expectText(t, a, m, "joined")
		}
		// A member that lost its state joins again in its own place.
		n := len(a.Members())
		gi, err := a.GroupInfo(true)
		if err != nil {
			t.Fatal(err)
		}
		old := gs[len(gs)-1]
		again, cm, err := JoinExternal(cs, gi, &KeyPackageBundle{KeyPackage: mustLeafBundle(t, old), SignaturePriv: old.sigPriv}, nil, Config{ValidateCredential: acceptAnyCredential})
		if err != nil {
			t.Fatal(err)
		}
		ps := deliver(t, cm, gs[:len(gs)-1]...)
		if len(ps[0].Removed) != 1 || len(a.Members()) != n {
			t.Fatalf("resync: removed %d, %d members", len(ps[0].Removed), len(a.Members()))
		}
		gs[len(gs)-1] = again
		sameState(t, gs...)
		// An external commit may not remove someone else.
		evil := Credential{Type: CredentialTypeXchat, Identity: []byte("evil")}
		props := []pendingProposal{
			{proposal: message.Proposal{Type: message.ProposalTypeExternalInit, ExternalInit: &message.ExternalInit{KEMOutput: []byte{1}}}},
			{proposal: message.Proposal{Type: message.ProposalTypeRemove, Remove: &message.Remove{Removed: 0}}},
		}
		err = a.validateProposalsExt(a.cur(), props, []bool{true, true}, message.Sender{Type: message.SenderTypeNewMemberCommit}, true, &evil)
		expectErr(t, err, ErrInvalidCommit)
	})
}

func TestGroupReplayAndOrder(t *testing.T) {
	forSuites(t, func(t *testing.T, cs *CipherSuite) {
		gs := newTestGroup(t, cs, 2, Config{ValidateCredential: acceptAnyCredential, MaxOutOfOrder: 3})
		a, b := gs[0], gs[1]
		var ms [][]byte
		for i := range 6 {
			ms = append(ms, mustEncrypt(t, a, fmt.Sprint(i)))
		}
		expectText(t, b, ms[2], "2")
		expectText(t, b, ms[0], "0")
		_, err := b.Process(ms[0])
		expectErr(t, err, ErrReplay)
		expectText(t, b, ms[1], "1")
		_, err = b.Process(ms[2])
		expectErr(t, err, ErrReplay)
		expectText(t, b, ms[5], "5")
		expectText(t, b, ms[4], "4")
		expectText(t, b, ms[3], "3")
		// Skipping more than the limit is refused.
		for range 4 {
			mustEncrypt(t, a, "lost")
		}
		_, err = b.Process(mustEncrypt(t, a, "far"))
		expectErr(t, err, secrettree.ErrGeneration)
		// A replayed commit is reported too.
		cm, _ := commit(t, a, CommitOptions{Update: true})
		deliver(t, cm, b)
		_, err = b.Process(cm)
		expectErr(t, err, ErrReplay)
	})
}

func TestGroupCommitDropsInvalidPending(t *testing.T) {
	cs, _ := LookupSuite(X25519AES128GCMSHA256Ed25519)
	gs := newTestGroup(t, cs, 3, Config{ValidateCredential: acceptAnyCredential})
	a, b, c := gs[0], gs[1], gs[2]
	e := newBundle(t, cs, "e")
	p, err := b.ProposeAdd(e.KeyPackage)
	if err != nil {
		t.Fatal(err)
	}
	deliver(t, p, a, c)
	// A adds E itself: the pending add of the same key package is left out.
	cm, w := commit(t, a, CommitOptions{Add: []KeyPackage{e.KeyPackage}})
	ps := deliver(t, cm, b, c)
	if len(ps[0].Added) != 1 {
		t.Fatalf("added %d", len(ps[0].Added))
	}
	ge, err := JoinFromWelcome(w, bundleLookup(e), nil, Config{ValidateCredential: acceptAnyCredential})
	if err != nil {
		t.Fatal(err)
	}
	sameState(t, a, b, c, ge)
}

func TestGroupPSKs(t *testing.T) {
	cs, _ := LookupSuite(XWingAES128GCMSHA256Ed25519)
	psk := func(id []byte) ([]byte, error) {
		if string(id) == "shared" {
			return []byte("a pre-shared secret"), nil
		}
		return nil, errors.New("unknown")
	}
	gs := newTestGroup(t, cs, 3, Config{ValidateCredential: acceptAnyCredential, ExternalPSK: psk})
	a := gs[0]
	cm, _ := commit(t, a, CommitOptions{PSKs: []PreSharedKeyID{{Type: keyschedule.PSKTypeExternal, ID: []byte("shared")}}})
	deliver(t, cm, gs[1:]...)
	sameState(t, gs...)
	// A resumption PSK of the previous epoch, with an add.
	d := newBundle(t, cs, "d")
	prev := a.Epoch() - 1
	cm, w := commit(t, gs[1], CommitOptions{Add: []KeyPackage{d.KeyPackage}, PSKs: []PreSharedKeyID{{Type: keyschedule.PSKTypeResumption, Usage: keyschedule.ResumptionPSKUsageApplication, GroupID: a.GroupID(), Epoch: prev}}})
	deliver(t, cm, a, gs[2])
	sameState(t, gs...)
	// The joiner cannot resolve a resumption PSK of an epoch it never saw.
	_, err := JoinFromWelcome(w, bundleLookup(d), nil, Config{ValidateCredential: acceptAnyCredential, ExternalPSK: psk})
	expectErr(t, err, welcome.ErrWelcomePSK)
	// Unknown PSKs are refused.
	_, _, err = a.Commit(CommitOptions{PSKs: []PreSharedKeyID{{Type: keyschedule.PSKTypeExternal, ID: []byte("other")}}})
	expectErr(t, err, ErrInvalidProposal)
}

func TestGroupLimits(t *testing.T) {
	cs, _ := LookupSuite(X25519AES128GCMSHA256Ed25519)
	gs := newTestGroup(t, cs, 2, Config{ValidateCredential: acceptAnyCredential, MaxMembers: 2})
	_, _, err := gs[0].Commit(CommitOptions{Add: []KeyPackage{newBundle(t, cs, "c").KeyPackage}})
	expectErr(t, err, ErrTooManyMembers)
	// A peer with a larger limit adds a third member: refused here.
	lax, err := UnmarshalGroup(mustState(t, gs[0]), Config{ValidateCredential: acceptAnyCredential})
	if err != nil {
		t.Fatal(err)
	}
	cm, _ := commit(t, lax, CommitOptions{Add: []KeyPackage{newBundle(t, cs, "c").KeyPackage}})
	_, err = gs[1].Process(cm)
	expectErr(t, err, ErrTooManyMembers)
	// Proposals for another epoch, and non-group messages, are typed.
	_, err = gs[1].Process(cm[:10])
	if err == nil {
		t.Fatal("truncated message accepted")
	}
	kp, _ := newBundle(t, cs, "k").Message()
	_, err = gs[1].Process(kp)
	expectErr(t, err, codec.ErrInvalidValue)
}

// mustLeafBundle returns a key package carrying g's own leaf node, as a
// member that lost its state but kept its credential and key would make.
func mustLeafBundle(t *testing.T, g *Group) KeyPackage {
	t.Helper()
	leaf := *g.cur().tree.Leaf(g.OwnLeaf())
	return KeyPackage{Version: message.ProtocolVersionMLS10, CipherSuite: g.cs.ID(), LeafNode: leaf}
}
