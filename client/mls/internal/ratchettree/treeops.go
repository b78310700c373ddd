package ratchettree

import (
	"fmt"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// AddLeaf inserts leaf at the leftmost blank leaf, extending the tree to
// the right when there is none, and records it as unmerged at every
// non-blank parent on its direct path (RFC 9420 section 7.7 and 12.1.1).
// It returns the new leaf's index.
func (t *Tree) AddLeaf(leaf *message.LeafNode) (treemath.LeafIndex, error) {
	if leaf == nil {
		return 0, codec.Invalid("adding a blank leaf")
	}
	n := t.NumLeaves()
	l := treemath.LeafIndex(n)
	for i := uint32(0); i < n; i++ {
		if t.isLeafBlank(treemath.LeafIndex(i)) {
			l = treemath.LeafIndex(i)
			break
		}
	}
	if uint32(l) >= n {
		if n >= 1<<30 {
			return 0, fmt.Errorf("%w: tree too large to extend", treemath.ErrTreeMath)
		}
		// Add a new root whose right subtree is blank.
		t.nodes = append(t.nodes, make([]*message.Node, len(t.nodes)+1)...)
	}
	if err := t.SetLeaf(l, leaf); err != nil {
		return 0, err
	}
	dp, err := l.Node().DirectPath(t.NumLeaves())
	if err != nil {
		return 0, err
	}
	for _, p := range dp {
		if pn := t.ParentAt(p); pn != nil {
			pn.UnmergedLeaves = append(pn.UnmergedLeaves, uint32(l))
		}
	}
	return l, nil
}

// blankDirectPath blanks every node on the direct path of leaf l.
func (t *Tree) blankDirectPath(l treemath.LeafIndex) error {
	dp, err := l.Node().DirectPath(t.NumLeaves())
	if err != nil {
		return err
	}
	for _, p := range dp {
		t.nodes[p] = nil
	}
	return nil
}

// UpdateLeaf replaces the leaf at l and blanks its direct path (RFC 9420
// section 12.1.2).
func (t *Tree) UpdateLeaf(l treemath.LeafIndex, leaf *message.LeafNode) error {
	if leaf == nil {
		return codec.Invalid("updating leaf %d to a blank", l)
	}
	if t.isLeafBlank(l) {
		return fmt.Errorf("%w: update of blank leaf %d", treemath.ErrTreeMath, l)
	}
	if err := t.SetLeaf(l, leaf); err != nil {
		return err
	}
	return t.blankDirectPath(l)
}

// RemoveLeaf blanks the leaf at l and its direct path, then truncates the
// tree (RFC 9420 section 12.1.3).
func (t *Tree) RemoveLeaf(l treemath.LeafIndex) error {
	if t.isLeafBlank(l) {
		return fmt.Errorf("%w: removal of blank leaf %d", treemath.ErrTreeMath, l)
	}
	if err := t.SetLeaf(l, nil); err != nil {
		return err
	}
	if err := t.blankDirectPath(l); err != nil {
		return err
	}
	t.Truncate()
	return nil
}

// Truncate removes the right subtree of the root while all of its leaves
// are blank, keeping at least one leaf (RFC 9420 section 7.7).
func (t *Tree) Truncate() {
	for t.NumLeaves() > 1 {
		n := t.NumLeaves()
		for i := n / 2; i < n; i++ {
			if !t.isLeafBlank(treemath.LeafIndex(i)) {
				return
			}
		}
		half := treemath.NodeWidth(n / 2)
		clear(t.nodes[half:])
		t.nodes = t.nodes[:half]
	}
}

// ApplyProposal applies an Add, Update or Remove proposal from the member
// at sender to the tree. Other proposal types leave the tree unchanged.
func (t *Tree) ApplyProposal(p *message.Proposal, sender treemath.LeafIndex) error {
	switch p.Type {
	case message.ProposalTypeAdd:
		if p.Add == nil {
			return codec.Invalid("add proposal without body")
		}
		leaf := p.Add.KeyPackage.LeafNode
		_, err := t.AddLeaf(&leaf)
		return err
	case message.ProposalTypeUpdate:
		if p.Update == nil {
			return codec.Invalid("update proposal without body")
		}
		leaf := p.Update.LeafNode
		return t.UpdateLeaf(sender, &leaf)
	case message.ProposalTypeRemove:
		if p.Remove == nil {
			return codec.Invalid("remove proposal without body")
		}
		return t.RemoveLeaf(treemath.LeafIndex(p.Remove.Removed))
	}
	return nil
}
