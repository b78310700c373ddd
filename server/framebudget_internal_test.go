package server

import "testing"

// The connections of one account share one frame budget, which goes with
// the last of them.
func TestAccountFramesShared(t *testing.T) {
	t.Parallel()
	var a accountFrames
	b1 := a.join("alice@a.test")
	b2 := a.join("alice@a.test")
	other := a.join("bob@a.test")
	if b1 != b2 || b1 == other {
		t.Fatal("connections of one account do not share a budget, or two accounts do")
	}
	if b1.Limit() != frameBudgetAccount {
		t.Fatalf("account budget %d, want %d", b1.Limit(), frameBudgetAccount)
	}
	a.leave("alice@a.test")
	if a.m["alice@a.test"] == nil {
		t.Fatal("the budget went while a connection still uses it")
	}
	a.leave("alice@a.test")
	a.leave("bob@a.test")
	if len(a.m) != 0 {
		t.Fatalf("budgets left after every connection ended: %v", a.m)
	}
}
