// Package ratchettree is the ratchet tree of an MLS group (RFC 9420
// sections 4, 7 and 12.4.3): its nodes, tree hashes and parent hashes,
// the operations proposals apply (add, update, remove, truncate), TreeKEM
// update paths with the private keys a member holds, and the validation of
// a tree received from a peer.
package ratchettree

import (
	"fmt"

	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// Tree is an in-memory ratchet tree (RFC 9420 section 7). Its node array
// always spans a complete binary tree: the number of leaves is a power of
// two and blank nodes are nil. The wire form (RatchetTree) omits trailing
// blank nodes; Tree pads them back.
type Tree struct {
	nodes []*message.Node
}

// NewTree returns a tree built from the wire form rt. The nodes are
// copied, so later changes to the tree do not touch rt.
func NewTree(rt message.RatchetTree) (*Tree, error) {
	if err := rt.Check(); err != nil {
		return nil, err
	}
	leaves := uint32(len(rt)+1) / 2
	n := uint32(1)
	for n < leaves {
		n <<= 1
	}
	t := &Tree{nodes: make([]*message.Node, treemath.NodeWidth(n))}
	for i, nd := range rt {
		t.nodes[i] = cloneNode(nd)
	}
	return t, nil
}

// cloneNode returns a deep copy of the node's mutable parts.
func cloneNode(n *message.Node) *message.Node {
	if n == nil {
		return nil
	}
	c := &message.Node{Type: n.Type}
	if n.Leaf != nil {
		l := *n.Leaf
		c.Leaf = &l
	}
	if n.Parent != nil {
		p := *n.Parent
		p.UnmergedLeaves = append([]uint32(nil), n.Parent.UnmergedLeaves...)
		c.Parent = &p
	}
	return c
}

// Clone returns a copy of the tree that can be changed independently.
func (t *Tree) Clone() *Tree {
	c := &Tree{nodes: make([]*message.Node, len(t.nodes))}
	for i, n := range t.nodes {
		c.nodes[i] = cloneNode(n)
	}
	return c
}

// RatchetTree returns the wire form of the tree, with trailing blank nodes
// removed. The nodes are shared with the tree.
func (t *Tree) RatchetTree() message.RatchetTree {
	end := len(t.nodes)
	for end > 0 && t.nodes[end-1] == nil {
		end--
	}
	return message.RatchetTree(append([]*message.Node(nil), t.nodes[:end]...))
}

// NumLeaves returns the number of leaves (a power of two).
func (t *Tree) NumLeaves() uint32 { return uint32(len(t.nodes)+1) / 2 }

// Width returns the number of nodes.
func (t *Tree) Width() uint32 { return uint32(len(t.nodes)) }

// Root returns the root node index.
func (t *Tree) Root() treemath.NodeIndex { return treemath.Root(t.NumLeaves()) }

// Node returns the node at x, or nil if x is blank or outside the tree.
func (t *Tree) Node(x treemath.NodeIndex) *message.Node {
	if uint32(x) >= uint32(len(t.nodes)) {
		return nil
	}
	return t.nodes[x]
}

// Leaf returns the leaf node at l, or nil if it is blank or outside the
// tree.
func (t *Tree) Leaf(l treemath.LeafIndex) *message.LeafNode {
	if n := t.Node(l.Node()); n != nil {
		return n.Leaf
	}
	return nil
}

// ParentAt returns the parent node at x, or nil if it is blank, a leaf or
// outside the tree.
func (t *Tree) ParentAt(x treemath.NodeIndex) *message.ParentNode {
	if n := t.Node(x); n != nil {
		return n.Parent
	}
	return nil
}

// SetLeaf stores leaf at l (nil blanks it); l must be inside the tree.
func (t *Tree) SetLeaf(l treemath.LeafIndex, leaf *message.LeafNode) error {
	x := l.Node()
	if uint32(x) >= t.Width() {
		return fmt.Errorf("%w: leaf %d outside a tree of %d leaves", treemath.ErrTreeMath, l, t.NumLeaves())
	}
	if leaf == nil {
		t.nodes[x] = nil
	} else {
		t.nodes[x] = &message.Node{Type: message.NodeTypeLeaf, Leaf: leaf}
	}
	return nil
}

// SetParent stores p at parent position x (nil blanks it).
func (t *Tree) SetParent(x treemath.NodeIndex, p *message.ParentNode) error {
	if uint32(x) >= t.Width() || x.Level() == 0 {
		return fmt.Errorf("%w: %d is not a parent position of a tree of %d leaves", treemath.ErrTreeMath, x, t.NumLeaves())
	}
	if p == nil {
		t.nodes[x] = nil
	} else {
		t.nodes[x] = &message.Node{Type: message.NodeTypeParent, Parent: p}
	}
	return nil
}

// isLeafBlank reports whether leaf l is blank (or outside the tree).
func (t *Tree) isLeafBlank(l treemath.LeafIndex) bool { return t.Leaf(l) == nil }

// Resolution returns the resolution of x (RFC 9420 section 4.1.1): x itself
// and its unmerged leaves if x is not blank, nothing for a blank leaf, and
// the resolutions of both children concatenated for a blank parent.
func (t *Tree) Resolution(x treemath.NodeIndex) []treemath.NodeIndex {
	return t.appendResolution(nil, x)
}

func (t *Tree) appendResolution(out []treemath.NodeIndex, x treemath.NodeIndex) []treemath.NodeIndex {
	if uint32(x) >= t.Width() {
		return out
	}
	if n := t.nodes[x]; n != nil {
		out = append(out, x)
		if n.Parent != nil {
			for _, u := range n.Parent.UnmergedLeaves {
				out = append(out, treemath.LeafIndex(u).Node())
			}
		}
		return out
	}
	if x.Level() == 0 {
		return out
	}
	l, _ := x.Left()
	r, _ := x.Right()
	out = t.appendResolution(out, l)
	return t.appendResolution(out, r)
}

// FilteredDirectPath returns the direct path of leaf l with every node
// removed whose child on the copath has an empty resolution (RFC 9420
// section 4.1.2).
func (t *Tree) FilteredDirectPath(l treemath.LeafIndex) ([]treemath.NodeIndex, error) {
	n := t.NumLeaves()
	dp, err := l.Node().DirectPath(n)
	if err != nil {
		return nil, err
	}
	cp, err := l.Node().Copath(n)
	if err != nil {
		return nil, err
	}
	var out []treemath.NodeIndex
	for i, p := range dp {
		if len(t.Resolution(cp[i])) > 0 {
			out = append(out, p)
		}
	}
	return out, nil
}

// inSubtree reports whether node y lies in the subtree rooted at x.
func inSubtree(y, x treemath.NodeIndex) bool {
	span := treemath.NodeIndex(1)<<x.Level() - 1
	return y+span >= x && y <= x+span
}
