package ratchettree

import (
	"fmt"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// TreeHash returns the tree hash of the whole tree (RFC 9420 section 7.8).
func (t *Tree) TreeHash(cs *ciphersuite.CipherSuite) ([]byte, error) {
	return t.NodeTreeHash(cs, t.Root())
}

// NodeTreeHash returns the tree hash of the subtree rooted at x.
func (t *Tree) NodeTreeHash(cs *ciphersuite.CipherSuite, x treemath.NodeIndex) ([]byte, error) {
	if uint32(x) >= t.Width() {
		return nil, fmt.Errorf("%w: node %d outside a tree of %d leaves", treemath.ErrTreeMath, x, t.NumLeaves())
	}
	return t.treeHash(cs, x, nil)
}

// TreeHashes returns the tree hash of every node, indexed by node index.
func (t *Tree) TreeHashes(cs *ciphersuite.CipherSuite) ([][]byte, error) {
	out := make([][]byte, t.Width())
	if _, err := t.treeHash(cs, t.Root(), out); err != nil {
		return nil, err
	}
	return out, nil
}

// treeHash computes the hash of x, recording each subtree hash in memo
// when it is non-nil.
func (t *Tree) treeHash(cs *ciphersuite.CipherSuite, x treemath.NodeIndex, memo [][]byte) ([]byte, error) {
	var w codec.Writer
	n := t.nodes[x]
	if x.Level() == 0 {
		// TreeHashInput{leaf, LeafNodeHashInput{leaf_index, optional<LeafNode>}}
		w.Uint8(uint8(message.NodeTypeLeaf))
		w.Uint32(uint32(x) / 2)
		if n == nil {
			w.Uint8(0)
		} else {
			if n.Leaf == nil {
				return nil, codec.Invalid("leaf position %d holds a non-leaf node", x)
			}
			w.Uint8(1)
			n.Leaf.Marshal(&w)
		}
	} else {
		l, _ := x.Left()
		r, _ := x.Right()
		lh, err := t.treeHash(cs, l, memo)
		if err != nil {
			return nil, err
		}
		rh, err := t.treeHash(cs, r, memo)
		if err != nil {
			return nil, err
		}
		// TreeHashInput{parent, ParentNodeHashInput{optional<ParentNode>, left_hash, right_hash}}
		w.Uint8(uint8(message.NodeTypeParent))
		if n == nil {
			w.Uint8(0)
		} else {
			if n.Parent == nil {
				return nil, codec.Invalid("parent position %d holds a non-parent node", x)
			}
			w.Uint8(1)
			n.Parent.Marshal(&w)
		}
		w.Opaque(lh)
		w.Opaque(rh)
	}
	in, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: tree hash of node %d: %w", x, err)
	}
	h := cs.Hash(in)
	if memo != nil {
		memo[x] = h
	}
	return h, nil
}
