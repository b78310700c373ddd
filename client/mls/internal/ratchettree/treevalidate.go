package ratchettree

import (
	"bytes"
	"errors"
	"fmt"
	"slices"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// ErrInvalidTree reports a ratchet tree that fails validation.
var ErrInvalidTree = errors.New("mls: invalid ratchet tree")

// leafNodeTBS encodes the LeafNodeTBS of leaf at l in group groupID (RFC
// 9420 section 7.2): the content, then group_id and leaf_index for leaves
// from updates and commits.
func leafNodeTBS(leaf *message.LeafNode, groupID []byte, l treemath.LeafIndex) ([]byte, error) {
	var w codec.Writer
	leaf.MarshalContent(&w)
	switch leaf.Source {
	case message.LeafNodeSourceUpdate, message.LeafNodeSourceCommit:
		w.Opaque(groupID)
		w.Uint32(uint32(l))
	}
	return w.Bytes()
}

// VerifyLeafNodeSignature checks the signature of leaf, placed at l in
// group groupID, under its own signature key.
func VerifyLeafNodeSignature(cs *ciphersuite.CipherSuite, leaf *message.LeafNode, groupID []byte, l treemath.LeafIndex) error {
	tbs, err := leafNodeTBS(leaf, groupID, l)
	if err != nil {
		return fmt.Errorf("mls: leaf node %d: %w", l, err)
	}
	if err := cs.VerifyWithLabel(leaf.SignatureKey, "LeafNodeTBS", tbs, leaf.Signature); err != nil {
		return fmt.Errorf("mls: leaf node %d: %w", l, err)
	}
	return nil
}

// SignLeafNode sets the signature of leaf, placed at l in group groupID.
func SignLeafNode(cs *ciphersuite.CipherSuite, priv []byte, leaf *message.LeafNode, groupID []byte, l treemath.LeafIndex) error {
	tbs, err := leafNodeTBS(leaf, groupID, l)
	if err != nil {
		return fmt.Errorf("mls: leaf node %d: %w", l, err)
	}
	sig, err := cs.SignWithLabel(priv, "LeafNodeTBS", tbs)
	if err != nil {
		return err
	}
	leaf.Signature = sig
	return nil
}

// VerifyUnmergedLeaves checks that every unmerged leaf of a parent node is
// a non-blank leaf below it, listed also by every non-blank node between
// it and the parent (RFC 9420 section 12.4.3.1).
func (t *Tree) VerifyUnmergedLeaves() error {
	n := t.NumLeaves()
	for i, nd := range t.nodes {
		p := treemath.NodeIndex(i)
		if nd == nil || nd.Parent == nil {
			continue
		}
		seen := make(map[uint32]bool, len(nd.Parent.UnmergedLeaves))
		for _, u := range nd.Parent.UnmergedLeaves {
			x := treemath.LeafIndex(u).Node()
			if seen[u] || uint32(x) >= t.Width() || !inSubtree(x, p) || t.nodes[x] == nil {
				return fmt.Errorf("%w: node %d lists bad unmerged leaf %d", ErrInvalidTree, p, u)
			}
			seen[u] = true
			dp, err := x.DirectPath(n)
			if err != nil {
				return err
			}
			for _, q := range dp {
				if q == p {
					break
				}
				if qn := t.ParentAt(q); qn != nil && !slices.Contains(qn.UnmergedLeaves, u) {
					return fmt.Errorf("%w: node %d lacks unmerged leaf %d listed by node %d", ErrInvalidTree, q, u, p)
				}
			}
		}
	}
	return nil
}

// verifyStructure checks node types against positions and that
// encryption keys are unique.
func (t *Tree) verifyStructure() error {
	keys := make(map[string]treemath.NodeIndex)
	for i, nd := range t.nodes {
		if nd == nil {
			continue
		}
		var key []byte
		switch {
		case i%2 == 0 && nd.Type == message.NodeTypeLeaf && nd.Leaf != nil:
			key = nd.Leaf.EncryptionKey
		case i%2 == 1 && nd.Type == message.NodeTypeParent && nd.Parent != nil:
			key = nd.Parent.EncryptionKey
		default:
			return fmt.Errorf("%w: node %d has the wrong type", ErrInvalidTree, i)
		}
		if j, dup := keys[string(key)]; dup {
			return fmt.Errorf("%w: nodes %d and %d share an encryption key", ErrInvalidTree, j, i)
		}
		keys[string(key)] = treemath.NodeIndex(i)
	}
	return nil
}

// Validate checks a tree received from others (RFC 9420 section 12.4.3.1):
// node types, unique encryption keys, unmerged leaves, parent hashes, the
// signature of every leaf, and, when treeHash is non-nil, the tree hash.
// It does not check credentials, capabilities or lifetimes, which depend
// on the group's policy.
func (t *Tree) Validate(cs *ciphersuite.CipherSuite, groupID, treeHash []byte) error {
	if err := t.verifyStructure(); err != nil {
		return err
	}
	if treeHash != nil {
		h, err := t.TreeHash(cs)
		if err != nil {
			return err
		}
		if !bytes.Equal(h, treeHash) {
			return fmt.Errorf("%w: tree hash mismatch", ErrInvalidTree)
		}
	}
	if err := t.VerifyUnmergedLeaves(); err != nil {
		return err
	}
	if err := t.VerifyParentHashes(cs); err != nil {
		return err
	}
	for i := uint32(0); i < t.NumLeaves(); i++ {
		if leaf := t.Leaf(treemath.LeafIndex(i)); leaf != nil {
			if err := VerifyLeafNodeSignature(cs, leaf, groupID, treemath.LeafIndex(i)); err != nil {
				return err
			}
		}
	}
	return nil
}
