package treemath

import (
	"slices"
	"testing"
)

func TestTreeMathVectors(t *testing.T) {
	var cases []struct {
		NLeaves uint32    `json:"n_leaves"`
		NNodes  uint32    `json:"n_nodes"`
		Root    uint32    `json:"root"`
		Left    []*uint32 `json:"left"`
		Right   []*uint32 `json:"right"`
		Parent  []*uint32 `json:"parent"`
		Sibling []*uint32 `json:"sibling"`
	}
	loadVectors(t, "tree-math.json", &cases)
	check := func(n uint32, op string, x int, got NodeIndex, err error, want *uint32) {
		t.Helper()
		switch {
		case want == nil && err == nil:
			t.Errorf("n=%d %s(%d) = %d, want undefined", n, op, x, got)
		case want != nil && (err != nil || uint32(got) != *want):
			t.Errorf("n=%d %s(%d) = %d, %v; want %d", n, op, x, got, err, *want)
		}
	}
	for _, c := range cases {
		if NodeWidth(c.NLeaves) != c.NNodes {
			t.Errorf("NodeWidth(%d) = %d, want %d", c.NLeaves, NodeWidth(c.NLeaves), c.NNodes)
		}
		if uint32(Root(c.NLeaves)) != c.Root {
			t.Errorf("Root(%d) = %d, want %d", c.NLeaves, Root(c.NLeaves), c.Root)
		}
		for i := range int(c.NNodes) {
			x := NodeIndex(i)
			got, err := x.Left()
			check(c.NLeaves, "left", i, got, err, c.Left[i])
			got, err = x.Right()
			check(c.NLeaves, "right", i, got, err, c.Right[i])
			got, err = x.Parent(c.NLeaves)
			check(c.NLeaves, "parent", i, got, err, c.Parent[i])
			got, err = x.Sibling(c.NLeaves)
			check(c.NLeaves, "sibling", i, got, err, c.Sibling[i])
		}
	}
	t.Logf("%d cases", len(cases))
}

func TestDirectPathCopath(t *testing.T) {
	// Tree of 8 leaves (RFC 9420 Appendix C figure): root 7.
	d, err := NodeIndex(4).DirectPath(8)
	if err != nil || !slices.Equal(d, []NodeIndex{5, 3, 7}) {
		t.Fatalf("DirectPath(4) = %v, %v", d, err)
	}
	c, err := NodeIndex(4).Copath(8)
	if err != nil || !slices.Equal(c, []NodeIndex{6, 1, 11}) {
		t.Fatalf("Copath(4) = %v, %v", c, err)
	}
	if d, _ := Root(8).DirectPath(8); len(d) != 0 {
		t.Fatalf("DirectPath(root) = %v", d)
	}
	if _, err := NodeIndex(15).DirectPath(8); err == nil {
		t.Fatal("DirectPath outside the tree succeeded")
	}
	for _, tc := range []struct{ x, y, want NodeIndex }{
		{0, 2, 1}, {0, 4, 3}, {4, 14, 7}, {5, 5, 5}, {3, 4, 3}, {8, 13, 11}, {0, 0, 0},
	} {
		if got := CommonAncestor(tc.x, tc.y); got != tc.want {
			t.Errorf("CommonAncestor(%d,%d) = %d, want %d", tc.x, tc.y, got, tc.want)
		}
	}
}
