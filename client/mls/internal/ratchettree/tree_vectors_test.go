package ratchettree

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

func parseTree(t *testing.T, b []byte) *Tree {
	t.Helper()
	r := codec.NewReader(b)
	var rt message.RatchetTree
	if err := rt.Unmarshal(r); err != nil {
		t.Fatalf("unmarshal tree: %v", err)
	}
	if err := r.Done(); err != nil {
		t.Fatalf("trailing bytes after tree: %v", err)
	}
	tr, err := NewTree(rt)
	if err != nil {
		t.Fatalf("new tree: %v", err)
	}
	return tr
}

func marshalTree(t *testing.T, tr *Tree) []byte {
	t.Helper()
	rt := tr.RatchetTree()
	var w codec.Writer
	rt.Marshal(&w)
	b, err := w.Bytes()
	if err != nil {
		t.Fatalf("marshal tree: %v", err)
	}
	return b
}

func TestTreeOperationsVectors(t *testing.T) {
	var cases []struct {
		CipherSuite    uint16   `json:"cipher_suite"`
		TreeBefore     hexBytes `json:"tree_before"`
		TreeHashBefore hexBytes `json:"tree_hash_before"`
		Proposal       hexBytes `json:"proposal"`
		ProposalSender uint32   `json:"proposal_sender"`
		TreeAfter      hexBytes `json:"tree_after"`
		TreeHashAfter  hexBytes `json:"tree_hash_after"`
	}
	loadVectors(t, "tree-operations.json", &cases)
	ran := 0
	for i, c := range cases {
		cs, ok := suiteOrSkip(t, c.CipherSuite)
		if !ok {
			continue
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			tr := parseTree(t, c.TreeBefore)
			if !bytes.Equal(marshalTree(t, tr), c.TreeBefore) {
				t.Fatal("tree_before does not round-trip")
			}
			h, err := tr.TreeHash(cs)
			if err != nil || !bytes.Equal(h, c.TreeHashBefore) {
				t.Fatalf("tree hash before = %x, %v; want %x", h, err, c.TreeHashBefore)
			}
			var p message.Proposal
			r := codec.NewReader(c.Proposal)
			if err := p.Unmarshal(r); err != nil || r.Done() != nil {
				t.Fatalf("proposal: %v", err)
			}
			if err := tr.ApplyProposal(&p, treemath.LeafIndex(c.ProposalSender)); err != nil {
				t.Fatalf("apply proposal type %d: %v", p.Type, err)
			}
			if got := marshalTree(t, tr); !bytes.Equal(got, c.TreeAfter) {
				t.Fatalf("proposal type %d: tree after = %x, want %x", p.Type, got, c.TreeAfter)
			}
			h, err = tr.TreeHash(cs)
			if err != nil || !bytes.Equal(h, c.TreeHashAfter) {
				t.Fatalf("tree hash after = %x, %v; want %x", h, err, c.TreeHashAfter)
			}
		})
		ran++
	}
	t.Logf("%d of %d tree-operations cases run", ran, len(cases))
}

func TestTreeValidationVectors(t *testing.T) {
	var cases []struct {
		CipherSuite uint16     `json:"cipher_suite"`
		Tree        hexBytes   `json:"tree"`
		GroupID     hexBytes   `json:"group_id"`
		TreeHashes  []hexBytes `json:"tree_hashes"`
		Resolutions [][]uint32 `json:"resolutions"`
	}
	loadVectors(t, "tree-validation.json", &cases)
	ran := 0
	for i, c := range cases {
		cs, ok := suiteOrSkip(t, c.CipherSuite)
		if !ok {
			continue
		}
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			tr := parseTree(t, c.Tree)
			if int(tr.Width()) != len(c.TreeHashes) || len(c.Resolutions) != len(c.TreeHashes) {
				t.Fatalf("tree width %d, %d tree hashes, %d resolutions", tr.Width(), len(c.TreeHashes), len(c.Resolutions))
			}
			hs, err := tr.TreeHashes(cs)
			if err != nil {
				t.Fatal(err)
			}
			for x, want := range c.TreeHashes {
				if !bytes.Equal(hs[x], want) {
					t.Errorf("tree hash of node %d = %x, want %x", x, hs[x], []byte(want))
				}
				if x == int(tr.Root()) {
					if h, err := tr.TreeHash(cs); err != nil || !bytes.Equal(h, want) {
						t.Errorf("root tree hash = %x, %v", h, err)
					}
				}
			}
			for x, want := range c.Resolutions {
				var got []uint32
				for _, y := range tr.Resolution(treemath.NodeIndex(x)) {
					got = append(got, uint32(y))
				}
				if !slices.Equal(got, want) {
					t.Errorf("resolution of node %d = %v, want %v", x, got, want)
				}
			}
			if err := tr.Validate(cs, c.GroupID, hs[tr.Root()]); err != nil {
				t.Errorf("validate: %v", err)
			}
		})
		ran++
	}
	t.Logf("%d of %d tree-validation cases run", ran, len(cases))
}

// TestTreeValidationRejects checks that corrupting a valid tree is caught.
func TestTreeValidationRejects(t *testing.T) {
	var cases []struct {
		CipherSuite uint16   `json:"cipher_suite"`
		Tree        hexBytes `json:"tree"`
		GroupID     hexBytes `json:"group_id"`
	}
	loadVectors(t, "tree-validation.json", &cases)
	for i, c := range cases {
		cs, ok := suiteOrSkip(t, c.CipherSuite)
		if !ok {
			continue
		}
		tr := parseTree(t, c.Tree)
		// Corrupt the first non-blank parent's parent_hash, if any.
		for x := range tr.Width() {
			pn := tr.ParentAt(treemath.NodeIndex(x))
			if pn == nil {
				continue
			}
			bad := tr.Clone()
			bp := bad.ParentAt(treemath.NodeIndex(x))
			bp.ParentHash = append(slices.Clone(bp.ParentHash), 1)
			if err := bad.VerifyParentHashes(cs); err == nil {
				t.Errorf("case %d: corrupted parent hash at node %d accepted", i, x)
			}
			break
		}
		// Corrupt the first leaf's signature.
		bad := tr.Clone()
		for l := range bad.NumLeaves() {
			if leaf := bad.Leaf(treemath.LeafIndex(l)); leaf != nil {
				leaf.Signature = append(slices.Clone(leaf.Signature[:len(leaf.Signature)-1]), leaf.Signature[len(leaf.Signature)-1]^1)
				if err := bad.Validate(cs, c.GroupID, nil); err == nil {
					t.Errorf("case %d: corrupted signature of leaf %d accepted", i, l)
				}
				break
			}
		}
		// A wrong group id breaks update/commit leaf signatures only; a
		// wrong tree hash is always caught.
		if err := tr.Validate(cs, c.GroupID, []byte{1}); !errors.Is(err, ErrInvalidTree) {
			t.Errorf("case %d: wrong tree hash: %v", i, err)
		}
	}
}
