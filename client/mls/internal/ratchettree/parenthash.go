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

// ErrParentHash reports a ratchet tree whose parent hashes do not verify.
var ErrParentHash = errors.New("mls: invalid parent hash")

// originalSiblingTreeHash returns the tree hash of s computed as if the
// leaves in unmerged had not been added: those leaves are blanked and
// dropped from every unmerged_leaves list (RFC 9420 section 7.9).
func (t *Tree) originalSiblingTreeHash(cs *ciphersuite.CipherSuite, s treemath.NodeIndex, unmerged []uint32) ([]byte, error) {
	if len(unmerged) == 0 {
		return t.NodeTreeHash(cs, s)
	}
	c := t.Clone()
	for _, u := range unmerged {
		if x := treemath.LeafIndex(u).Node(); uint32(x) < c.Width() {
			c.nodes[x] = nil
		}
	}
	for _, n := range c.nodes {
		if n != nil && n.Parent != nil {
			n.Parent.UnmergedLeaves = slices.DeleteFunc(n.Parent.UnmergedLeaves, func(v uint32) bool {
				return slices.Contains(unmerged, v)
			})
		}
	}
	return c.NodeTreeHash(cs, s)
}

// ParentHash returns the parent hash of the non-blank parent node at p
// with co-path child s (RFC 9420 section 7.9): the hash of the
// ParentHashInput{encryption_key, parent_hash, original_sibling_tree_hash}.
func (t *Tree) ParentHash(cs *ciphersuite.CipherSuite, p, s treemath.NodeIndex) ([]byte, error) {
	pn := t.ParentAt(p)
	if pn == nil {
		return nil, fmt.Errorf("%w: node %d is not a non-blank parent", treemath.ErrTreeMath, p)
	}
	sh, err := t.originalSiblingTreeHash(cs, s, pn.UnmergedLeaves)
	if err != nil {
		return nil, err
	}
	var w codec.Writer
	w.Opaque(pn.EncryptionKey)
	w.Opaque(pn.ParentHash)
	w.Opaque(sh)
	in, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: parent hash: %w", err)
	}
	return cs.Hash(in), nil
}

// SetParentHashes fills in the parent_hash fields along the filtered direct
// path of leaf l, from the root down, as a committer does after setting the
// path's parent nodes (RFC 9420 section 7.9). It returns the parent hash
// the committer's new leaf node must carry. Every node of the filtered
// direct path must be non-blank.
func (t *Tree) SetParentHashes(cs *ciphersuite.CipherSuite, l treemath.LeafIndex) ([]byte, error) {
	fdp, err := t.FilteredDirectPath(l)
	if err != nil {
		return nil, err
	}
	var ph []byte // the root-most node's parent_hash is empty
	for i := len(fdp) - 1; i >= 0; i-- {
		p := fdp[i]
		pn := t.ParentAt(p)
		if pn == nil {
			return nil, fmt.Errorf("%w: filtered direct path node %d is blank", treemath.ErrTreeMath, p)
		}
		pn.ParentHash = ph
		// The co-path child is the child of p not above (or at) leaf l.
		s, err := p.Left()
		if err != nil {
			return nil, err
		}
		if inSubtree(l.Node(), s) {
			if s, err = p.Right(); err != nil {
				return nil, err
			}
		}
		if ph, err = t.ParentHash(cs, p, s); err != nil {
			return nil, err
		}
	}
	return ph, nil
}

// nodeParentHash returns the parent_hash carried by node x: a parent's
// field or a commit-sourced leaf's, and false for other nodes.
func (t *Tree) nodeParentHash(x treemath.NodeIndex) ([]byte, bool) {
	n := t.Node(x)
	switch {
	case n == nil:
		return nil, false
	case n.Parent != nil:
		return n.Parent.ParentHash, true
	case n.Leaf != nil && n.Leaf.Source == message.LeafNodeSourceCommit:
		return n.Leaf.ParentHash, true
	}
	return nil, false
}

// parentHashValidVia reports whether the non-blank parent p is parent-hash
// valid with respect to its child c (RFC 9420 section 7.9.2): some node D in
// the resolution of c carries ParentHash(p, sibling of c), and p's unmerged
// leaves below c are exactly the resolution of c without D.
func (t *Tree) parentHashValidVia(cs *ciphersuite.CipherSuite, p, c, s treemath.NodeIndex) (bool, error) {
	want, err := t.ParentHash(cs, p, s)
	if err != nil {
		return false, err
	}
	res := t.Resolution(c)
	var below []treemath.NodeIndex
	for _, u := range t.ParentAt(p).UnmergedLeaves {
		if x := treemath.LeafIndex(u).Node(); inSubtree(x, c) {
			below = append(below, x)
		}
	}
	slices.Sort(below)
	for _, d := range res {
		ph, ok := t.nodeParentHash(d)
		if !ok || !bytes.Equal(ph, want) {
			continue
		}
		rest := slices.DeleteFunc(slices.Clone(res), func(x treemath.NodeIndex) bool { return x == d })
		slices.Sort(rest)
		if slices.Equal(rest, below) {
			return true, nil
		}
	}
	return false, nil
}

// VerifyParentHashes checks that every non-blank parent node is
// parent-hash valid with respect to one of its children (RFC 9420
// section 7.9.2).
func (t *Tree) VerifyParentHashes(cs *ciphersuite.CipherSuite) error {
	for i := range t.nodes {
		p := treemath.NodeIndex(i)
		if p.Level() == 0 || t.nodes[i] == nil {
			continue
		}
		l, _ := p.Left()
		r, _ := p.Right()
		ok, err := t.parentHashValidVia(cs, p, l, r)
		if err != nil {
			return err
		}
		if !ok {
			if ok, err = t.parentHashValidVia(cs, p, r, l); err != nil {
				return err
			}
		}
		if !ok {
			return fmt.Errorf("%w: parent node %d", ErrParentHash, p)
		}
	}
	return nil
}
