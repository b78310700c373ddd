package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/ratchettree"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
	"github.com/xchat-im/xchat/client/mls/internal/welcome"
)

// treeFromExtensions returns the ratchet tree given out of band (when
// rt is not empty) or carried by the ratchet_tree extension.
func treeFromExtensions(rt []byte, exts []Extension) (*ratchettree.Tree, error) {
	rt = slices.Clone(rt)
	if len(rt) == 0 {
		for _, e := range exts {
			if e.Type == message.ExtensionTypeRatchetTree {
				rt = e.Data
			}
		}
	}
	if len(rt) == 0 {
		return nil, fmt.Errorf("%w: no ratchet tree", ratchettree.ErrInvalidTree)
	}
	var wire message.RatchetTree
	if err := codec.UnmarshalAll(rt, &wire); err != nil {
		return nil, fmt.Errorf("%w: %w", ratchettree.ErrInvalidTree, err)
	}
	return ratchettree.NewTree(wire)
}

// validateJoinedTree checks a tree a joiner received (RFC 9420 section
// 12.4.3.1): structure, tree hash, parent hashes, leaf signatures, and the
// credential and capability checks of every leaf.
func (g *Group) validateJoinedTree(tree *ratchettree.Tree, gc *message.GroupContext) error {
	if err := tree.Validate(g.cs, gc.GroupID, gc.TreeHash); err != nil {
		return err
	}
	n := 0
	for i := uint32(0); i < tree.NumLeaves(); i++ {
		leaf := tree.Leaf(LeafIndex(i))
		if leaf == nil {
			continue
		}
		n++
		if err := g.cfg.checkCredential(leaf); err != nil {
			return err
		}
		if err := supportsRequired(&leaf.Capabilities, gc.Extensions); err != nil {
			return fmt.Errorf("%w: leaf %d: %w", ratchettree.ErrInvalidTree, i, err)
		}
	}
	if n > g.cfg.maxMembers() {
		return ErrTooManyMembers
	}
	return nil
}

// JoinFromWelcome joins a group through data, an encoded Welcome MLSMessage
// (RFC 9420 section 12.4.3.1). bundles returns the key package bundle
// whose KeyPackageRef is ref, or nil. ratchetTree is the encoded ratchet
// tree when it is given out of band; nil takes it from the GroupInfo's
// ratchet_tree extension.
func JoinFromWelcome(data []byte, bundles func(ref []byte) *KeyPackageBundle, ratchetTree []byte, cfg Config) (*Group, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("mls: join: %w", err)
	}
	var m MLSMessage
	if err := m.UnmarshalBinary(slices.Clone(data)); err != nil {
		return nil, err
	}
	if m.WireFormat != WireFormatWelcome {
		return nil, fmt.Errorf("mls: join: %w", codec.Invalid("wire format %d is not a Welcome", m.WireFormat))
	}
	w := m.Welcome
	cs, err := LookupSuite(w.CipherSuite)
	if err != nil {
		return nil, err
	}
	var b *KeyPackageBundle
	for _, s := range w.Secrets {
		if b = bundles(s.NewMember); b != nil {
			break
		}
	}
	if b == nil {
		return nil, welcome.ErrWelcomeNoMatch
	}
	g := &Group{cs: cs, cfg: cfg, sigPriv: slices.Clone(b.SignaturePriv)}
	var tree *ratchettree.Tree
	signer := func(gi *message.GroupInfo) ([]byte, error) {
		t, err := treeFromExtensions(ratchetTree, gi.Extensions)
		if err != nil {
			return nil, err
		}
		tree = t.Clone()
		leaf := t.Leaf(LeafIndex(gi.Signer))
		if leaf == nil {
			return nil, fmt.Errorf("%w: signer %d", ErrNotMember, gi.Signer)
		}
		return leaf.SignatureKey, nil
	}
	psk := func(id *PreSharedKeyID) ([]byte, error) {
		if id.Type == keyschedule.PSKTypeExternal && cfg.ExternalPSK != nil {
			return cfg.ExternalPSK(id.ID)
		}
		return nil, errors.New("unknown pre-shared key")
	}
	j, err := welcome.ProcessWelcome(cs, w, &b.KeyPackage, b.InitPriv, signer, psk)
	if err != nil {
		if errors.Is(err, ciphersuite.ErrSignature) || errors.Is(err, ciphersuite.ErrDecryption) || errors.Is(err, welcome.ErrWelcomeConfirmation) {
			return nil, tampered(err)
		}
		return nil, err
	}
	gc := j.GroupInfo.GroupContext
	if err := g.validateJoinedTree(tree, &gc); err != nil {
		return nil, err
	}
	// Find our own leaf: the one identical to the key package's.
	want, err := codec.MarshalAll(&b.KeyPackage.LeafNode)
	if err != nil {
		return nil, err
	}
	own := LeafIndex(^uint32(0))
	for i := uint32(0); i < tree.NumLeaves(); i++ {
		if leaf := tree.Leaf(LeafIndex(i)); leaf != nil {
			if got, err := codec.MarshalAll(leaf); err == nil && bytes.Equal(got, want) {
				own = LeafIndex(i)
				break
			}
		}
	}
	if own == LeafIndex(^uint32(0)) {
		return nil, fmt.Errorf("%w: own leaf not in the tree", ratchettree.ErrInvalidTree)
	}
	ownCaps := &tree.Leaf(own).Capabilities
	for _, e := range gc.Extensions {
		if !defaultExtension(e.Type) && !slices.Contains(ownCaps.Extensions, e.Type) {
			return nil, fmt.Errorf("%w: group extension %d not supported", codec.ErrInvalidValue, e.Type)
		}
	}
	priv := ratchettree.NewTreeKEMPrivate(own, b.EncryptionPriv)
	if ps := j.GroupSecrets.PathSecret; ps != nil {
		signerLeaf := LeafIndex(j.GroupInfo.Signer)
		fdp, err := tree.FilteredDirectPath(signerLeaf)
		if err != nil {
			return nil, err
		}
		lca := treemath.CommonAncestor(own.Node(), signerLeaf.Node())
		at := slices.Index(fdp, lca)
		if at < 0 || signerLeaf == own {
			return nil, fmt.Errorf("%w: path secret for a node off the committer's path", ratchettree.ErrInvalidTree)
		}
		for i := at; i < len(fdp); i++ {
			if i > at {
				if ps, err = ratchettree.NextPathSecret(cs, ps); err != nil {
					return nil, err
				}
			}
			pub, err := priv.SetPathSecret(cs, fdp[i], ps)
			if err != nil {
				return nil, err
			}
			if !bytes.Equal(pub, tree.NodePublicKey(fdp[i])) {
				return nil, fmt.Errorf("%w: path secret does not match node %d", ratchettree.ErrInvalidTree, fdp[i])
			}
		}
	}
	interim, err := keyschedule.InterimTranscriptHash(cs, gc.ConfirmedTranscriptHash, j.GroupInfo.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	e, err := g.newEpoch(gc, tree, priv, j.Epoch, interim, j.GroupInfo.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	g.chain = []*epoch{e}
	g.addResumption(gc.Epoch, j.Epoch.ResumptionPSK)
	g.welcomedBy, g.joinedWelcome = LeafIndex(j.GroupInfo.Signer), true
	return g, nil
}
