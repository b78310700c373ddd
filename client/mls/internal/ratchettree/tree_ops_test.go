package ratchettree

import (
	"crypto/rand"
	"slices"
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// simulateCommitPath replaces the path of leaf l as a committer would:
// fresh parent nodes on the filtered direct path, blanks elsewhere on the
// direct path, parent hashes set top-down and a commit-sourced leaf.
func simulateCommitPath(t *testing.T, tr *Tree, cs *ciphersuite.CipherSuite, l treemath.LeafIndex) {
	t.Helper()
	fdp, err := tr.FilteredDirectPath(l)
	if err != nil {
		t.Fatal(err)
	}
	dp, err := l.Node().DirectPath(tr.NumLeaves())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range dp {
		var pn *message.ParentNode
		if slices.Contains(fdp, p) {
			pn = &message.ParentNode{EncryptionKey: []byte(rand.Text())}
		}
		if err := tr.SetParent(p, pn); err != nil {
			t.Fatal(err)
		}
	}
	ph, err := tr.SetParentHashes(cs, l)
	if err != nil {
		t.Fatal(err)
	}
	leaf := *tr.Leaf(l)
	leaf.Source = message.LeafNodeSourceCommit
	leaf.ParentHash = ph
	if err := tr.SetLeaf(l, &leaf); err != nil {
		t.Fatal(err)
	}
}

func TestTreeSetParentHashes(t *testing.T) {
	var cases []struct {
		CipherSuite uint16   `json:"cipher_suite"`
		Tree        hexBytes `json:"tree"`
	}
	loadVectors(t, "tree-validation.json", &cases)
	checked := 0
	for i, c := range cases {
		if c.CipherSuite != 1 && c.CipherSuite != 2 {
			continue
		}
		cs, ok := suiteOrSkip(t, c.CipherSuite)
		if !ok {
			continue
		}
		base := parseTree(t, c.Tree)
		if err := base.VerifyParentHashes(cs); err != nil {
			t.Fatalf("case %d: %v", i, err)
		}
		for l := range base.NumLeaves() {
			if base.Leaf(treemath.LeafIndex(l)) == nil {
				continue
			}
			tr := base.Clone()
			simulateCommitPath(t, tr, cs, treemath.LeafIndex(l))
			if err := tr.VerifyParentHashes(cs); err != nil {
				t.Errorf("case %d: after commit from leaf %d: %v", i, l, err)
			}
			if err := tr.VerifyUnmergedLeaves(); err != nil {
				t.Errorf("case %d: after commit from leaf %d: %v", i, l, err)
			}
			checked++
		}
	}
	t.Logf("%d simulated commits verified", checked)
}

func TestTreeAddRemoveTruncate(t *testing.T) {
	cs, err := ciphersuite.LookupSuite(ciphersuite.X25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	leaf := func(i int) *message.LeafNode {
		return &message.LeafNode{EncryptionKey: []byte{byte(i)}, SignatureKey: []byte{byte(i)}, Credential: message.Credential{Type: message.CredentialTypeBasic, Identity: []byte{byte(i)}}, Source: message.LeafNodeSourceKeyPackage}
	}
	tr, err := NewTree(message.RatchetTree{{Type: message.NodeTypeLeaf, Leaf: leaf(0)}})
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 5; i++ {
		l, err := tr.AddLeaf(leaf(i))
		if err != nil || l != treemath.LeafIndex(i) {
			t.Fatalf("add %d: got leaf %d, %v", i, l, err)
		}
	}
	if tr.NumLeaves() != 8 || len(tr.RatchetTree()) != 9 {
		t.Fatalf("after 5 adds: %d leaves, wire length %d", tr.NumLeaves(), len(tr.RatchetTree()))
	}
	if err := tr.SetParent(5, &message.ParentNode{EncryptionKey: []byte("p5")}); err != nil {
		t.Fatal(err)
	}
	if l, err := tr.AddLeaf(leaf(5)); err != nil || l != 5 {
		t.Fatalf("add 5: %d, %v", l, err)
	}
	// Node 5 covers leaves 2 and 3, not leaf 5.
	if got := tr.ParentAt(5).UnmergedLeaves; len(got) != 0 {
		t.Fatalf("node 5 unmerged = %v", got)
	}
	if err := tr.SetParent(11, &message.ParentNode{EncryptionKey: []byte("p11")}); err != nil {
		t.Fatal(err)
	}
	if l, err := tr.AddLeaf(leaf(6)); err != nil || l != 6 {
		t.Fatalf("add 6: %d, %v", l, err)
	}
	if got := tr.ParentAt(11).UnmergedLeaves; !slices.Equal(got, []uint32{6}) {
		t.Fatalf("node 11 unmerged = %v, want [6]", got)
	}
	if got := tr.Resolution(11); !slices.Equal(got, []treemath.NodeIndex{11, 12}) {
		t.Fatalf("resolution of 11 = %v", got)
	}
	// Removing leaves 6, 5, 4 truncates back to 4 leaves.
	for _, l := range []treemath.LeafIndex{6, 5} {
		if err := tr.RemoveLeaf(l); err != nil {
			t.Fatal(err)
		}
	}
	if tr.NumLeaves() != 8 {
		t.Fatalf("truncated too early to %d leaves", tr.NumLeaves())
	}
	if err := tr.RemoveLeaf(4); err != nil {
		t.Fatal(err)
	}
	if tr.NumLeaves() != 4 || tr.Width() != 7 {
		t.Fatalf("after removals: %d leaves", tr.NumLeaves())
	}
	if err := tr.RemoveLeaf(4); err == nil {
		t.Fatal("removing a leaf outside the tree succeeded")
	}
	if _, err := tr.TreeHash(cs); err != nil {
		t.Fatal(err)
	}
	if err := tr.UpdateLeaf(1, leaf(9)); err != nil {
		t.Fatal(err)
	}
	if fdp, err := tr.FilteredDirectPath(0); err != nil || !slices.Equal(fdp, []treemath.NodeIndex{1, 3}) {
		t.Fatalf("filtered direct path of 0 = %v, %v", fdp, err)
	}
	if err := tr.RemoveLeaf(1); err != nil {
		t.Fatal(err)
	}
	if fdp, err := tr.FilteredDirectPath(0); err != nil || !slices.Equal(fdp, []treemath.NodeIndex{3}) {
		t.Fatalf("filtered direct path of 0 after removing 1 = %v, %v", fdp, err)
	}
}
