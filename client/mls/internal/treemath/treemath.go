// Package treemath computes positions in the array representation of an
// MLS ratchet tree (RFC 9420 section 4.1 and Appendix C): node and leaf
// indices, parents, children, siblings, direct paths and copaths.
package treemath

import (
	"errors"
	"fmt"
	"math/bits"
)

// NodeIndex is the position of a node in the array representation of a
// ratchet tree (RFC 9420 section 4.1 and Appendix C): leaves are at even
// indices, parent nodes at odd ones.
type NodeIndex uint32

// LeafIndex is the position of a leaf among the leaves of a tree.
type LeafIndex uint32

// ErrTreeMath reports a tree operation that is undefined for its arguments,
// such as the left child of a leaf or the parent of the root.
var ErrTreeMath = errors.New("mls: undefined tree operation")

// Node returns the node index of leaf l.
func (l LeafIndex) Node() NodeIndex { return NodeIndex(2 * uint32(l)) }

// Leaf returns the leaf index of node x, and false if x is not a leaf.
func (x NodeIndex) Leaf() (LeafIndex, bool) {
	if x&1 != 0 {
		return 0, false
	}
	return LeafIndex(x / 2), true
}

// Level returns the level of x in the tree: 0 for leaves, k for a node with
// 2^k leaves below it, the number of trailing one bits of x.
func (x NodeIndex) Level() uint {
	return uint(bits.TrailingZeros32(^uint32(x)))
}

// NodeWidth returns the number of nodes of a tree with n leaves.
func NodeWidth(n uint32) uint32 {
	if n == 0 {
		return 0
	}
	return 2*(n-1) + 1
}

// Root returns the root of a tree with n leaves; n must be a power of two
// as RFC 9420 trees always are.
func Root(n uint32) NodeIndex {
	w := NodeWidth(n)
	if w == 0 {
		return 0
	}
	return NodeIndex(uint32(1)<<(bits.Len32(w)-1) - 1)
}

// Left returns the left child of x.
func (x NodeIndex) Left() (NodeIndex, error) {
	k := x.Level()
	if k == 0 {
		return 0, fmt.Errorf("%w: left child of leaf %d", ErrTreeMath, x)
	}
	return x ^ NodeIndex(1)<<(k-1), nil
}

// Right returns the right child of x.
func (x NodeIndex) Right() (NodeIndex, error) {
	k := x.Level()
	if k == 0 {
		return 0, fmt.Errorf("%w: right child of leaf %d", ErrTreeMath, x)
	}
	return x ^ NodeIndex(3)<<(k-1), nil
}

// checkNode reports whether x lies in a tree with n leaves.
func checkNode(x NodeIndex, n uint32) error {
	if uint32(x) >= NodeWidth(n) {
		return fmt.Errorf("%w: node %d outside a tree of %d leaves", ErrTreeMath, x, n)
	}
	return nil
}

// Parent returns the parent of x in a tree with n leaves.
func (x NodeIndex) Parent(n uint32) (NodeIndex, error) {
	if err := checkNode(x, n); err != nil {
		return 0, err
	}
	if x == Root(n) {
		return 0, fmt.Errorf("%w: parent of root %d", ErrTreeMath, x)
	}
	k := x.Level()
	b := (x >> (k + 1)) & 1
	return (x | NodeIndex(1)<<k) ^ (b << (k + 1)), nil
}

// Sibling returns the other child of x's parent in a tree with n leaves.
func (x NodeIndex) Sibling(n uint32) (NodeIndex, error) {
	p, err := x.Parent(n)
	if err != nil {
		return 0, err
	}
	if x < p {
		return p.Right()
	}
	return p.Left()
}

// DirectPath returns the parents of x from x's parent up to the root in a
// tree with n leaves; it is empty for the root.
func (x NodeIndex) DirectPath(n uint32) ([]NodeIndex, error) {
	if err := checkNode(x, n); err != nil {
		return nil, err
	}
	r := Root(n)
	var d []NodeIndex
	for x != r {
		p, err := x.Parent(n)
		if err != nil {
			return nil, err
		}
		d = append(d, p)
		x = p
	}
	return d, nil
}

// Copath returns the siblings of x and of each node of its direct path
// except the root, in a tree with n leaves.
func (x NodeIndex) Copath(n uint32) ([]NodeIndex, error) {
	d, err := x.DirectPath(n)
	if err != nil || len(d) == 0 {
		return nil, err
	}
	path := append([]NodeIndex{x}, d[:len(d)-1]...)
	c := make([]NodeIndex, len(path))
	for i, y := range path {
		if c[i], err = y.Sibling(n); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// CommonAncestor returns the lowest node that is x or y or an ancestor of
// both.
func CommonAncestor(x, y NodeIndex) NodeIndex {
	lx, ly := x.Level()+1, y.Level()+1
	if lx <= ly && x>>ly == y>>ly {
		return y
	}
	if ly <= lx && x>>lx == y>>lx {
		return x
	}
	k := uint(0)
	for x != y {
		x, y = x>>1, y>>1
		k++
	}
	return x<<k + NodeIndex(1)<<(k-1) - 1
}
