package mls

import (
	"bytes"
	"fmt"
	"testing"
)

// clone copies a group through its persisted state.
func clone(t testing.TB, g *Group) *Group {
	t.Helper()
	c, err := UnmarshalGroup(mustState(t, g), g.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// processRace processes a commit of a race: it must either apply or lose
// with ErrStaleCommit, according to the hashes.
func processRace(t *testing.T, g *Group, msg []byte, wins bool) *Processed {
	t.Helper()
	p, err := g.Process(msg)
	if wins {
		if err != nil {
			t.Fatalf("winning commit: %v", err)
		}
		return p
	}
	expectErr(t, err, ErrStaleCommit)
	return nil
}

func lower(a, b []byte) bool { return bytes.Compare(commitHash(a), commitHash(b)) < 0 }

func TestConvergenceTwoCommits(t *testing.T) {
	forSuites(t, func(t *testing.T, cs *CipherSuite) {
		for _, private := range []bool{false, true} {
			t.Run(fmt.Sprint("encrypted-handshake-", private), func(t *testing.T) {
				convergeTwo(t, cs, Config{ValidateCredential: acceptAnyCredential, EncryptHandshake: private})
			})
		}
	})
}

// convergeTwo races an add against an update and checks that every
// delivery order converges, then that the loser's re-commit does too.
func convergeTwo(t *testing.T, cs *CipherSuite, cfg Config) {
	gs := newTestGroup(t, cs, 3, cfg)
	a, b, c := gs[0], gs[1], gs[2]
	c2 := clone(t, c)
	d := newBundle(t, cs, "d")
	cA, wA := commit(t, a, CommitOptions{Add: []KeyPackage{d.KeyPackage}})
	cB, _ := commit(t, b, CommitOptions{Update: true})
	mA := mustEncrypt(t, a, "in A's epoch")
	mB := mustEncrypt(t, b, "in B's epoch")
	aWins := lower(cA, cB)
	t.Logf("A wins: %v", aWins)

	pa := processRace(t, a, cB, !aWins)
	pb := processRace(t, b, cA, aWins)
	if !aWins && (len(pa.Removed) != 1 || string(pa.Removed[0].Credential.Identity) != "d") {
		t.Fatalf("A's view of the switch: removed %+v", pa.Removed)
	}
	processRace(t, c, cA, true)
	processRace(t, c, cB, !aWins)
	processRace(t, c2, cB, true)
	processRace(t, c2, cA, aWins)
	sameState(t, a, b, c, c2)
	// Application messages of both branches stay readable by all:
	// a losing commit's epoch is kept read-only even by members that
	// never applied it.
	for _, g := range []*Group{b, c, c2} {
		expectText(t, g, mA, "in A's epoch")
	}
	for _, g := range []*Group{a, c, c2} {
		expectText(t, g, mB, "in B's epoch")
	}

	var gd *Group
	joinCfg := cfg
	if aWins {
		if pb.LostOwnCommit == nil || !pb.LostOwnCommit.Retry.Update {
			t.Fatalf("B's lost commit: %+v", pb.LostOwnCommit)
		}
		var err error
		if gd, err = JoinFromWelcome(wA, bundleLookup(d), nil, joinCfg); err != nil {
			t.Fatal(err)
		}
		re, _ := commit(t, b, pb.LostOwnCommit.Retry)
		deliver(t, re, a, c, c2, gd)
	} else {
		lost := pa.LostOwnCommit
		if lost == nil || len(lost.Retry.Add) != 1 || len(lost.proposals) != 1 {
			t.Fatalf("A's lost commit: %+v", lost)
		}
		re, w := commit(t, a, lost.Retry)
		deliver(t, re, b, c, c2)
		var err error
		if gd, err = JoinFromWelcome(w, bundleLookup(d), nil, joinCfg); err != nil {
			t.Fatal(err)
		}
	}
	all := []*Group{a, b, c, c2, gd}
	sameState(t, all...)
	m := mustEncrypt(t, gd, "all together")
	for _, g := range all[:4] {
		expectText(t, g, m, "all together")
	}
}

func TestConvergenceThreeCommits(t *testing.T) {
	forSuites(t, func(t *testing.T, cs *CipherSuite) {
		gs := newTestGroup(t, cs, 4, Config{ValidateCredential: acceptAnyCredential})
		d := gs[3]
		var cms [][]byte
		for _, g := range gs[:3] {
			cm, _ := commit(t, g, CommitOptions{Update: true})
			cms = append(cms, cm)
		}
		win := 0
		for i := range cms {
			if lower(cms[i], cms[win]) {
				win = i
			}
		}
		orders := [][]int{{1, 2}, {2, 0}, {0, 1}, {2, 1, 0}}
		lostSeen := 0
		for who, order := range orders {
			applied := -1
			if who < 3 {
				applied = who
			}
			for _, i := range order {
				p, err := gs[who].Process(cms[i])
				if applied < 0 || lower(cms[i], cms[applied]) {
					if err != nil {
						t.Fatalf("member %d, commit %d: %v", who, i, err)
					}
					if p.LostOwnCommit != nil {
						lostSeen++
					}
					applied = i
				} else {
					expectErr(t, err, ErrStaleCommit)
				}
			}
			if applied != win {
				t.Fatalf("member %d ends on commit %d, winner %d", who, applied, win)
			}
		}
		if lostSeen != 2 {
			t.Fatalf("lost commits reported: %d", lostSeen)
		}
		sameState(t, gs...)
		m := mustEncrypt(t, d, "three-way")
		for _, g := range gs[:3] {
			expectText(t, g, m, "three-way")
		}
	})
}

func TestConvergenceLosingBranch(t *testing.T) {
	forSuites(t, func(t *testing.T, cs *CipherSuite) {
		gs := newTestGroup(t, cs, 3, Config{ValidateCredential: acceptAnyCredential})
		a, b, c := gs[0], gs[1], gs[2]
		cA, _ := commit(t, a, CommitOptions{Update: true})
		cB, _ := commit(t, b, CommitOptions{Update: true})
		winner, loser, wc, lc := a, b, cA, cB
		if lower(cB, cA) {
			winner, loser, wc, lc = b, a, cB, cA
		}
		_ = winner
		// The loser builds on its own branch before it learns.
		onLosing, _ := commit(t, loser, CommitOptions{Update: true})
		processRace(t, c, wc, true)
		processRace(t, c, lc, false)
		_, err := c.Process(onLosing)
		expectErr(t, err, ErrTampered)
		// The loser sees the winner, undoes both its commits.
		p, err := loser.Process(wc)
		if err != nil {
			t.Fatal(err)
		}
		if p.LostOwnCommit == nil || len(p.LostOwnCommit.proposals) != 0 || !p.LostOwnCommit.Retry.Update {
			t.Fatalf("lost: %+v", p.LostOwnCommit)
		}
		processRace(t, winner, lc, false)
		_, err = winner.Process(onLosing)
		expectErr(t, err, ErrTampered)
		sameState(t, a, b, c)
	})
}

func TestConvergenceOldCommit(t *testing.T) {
	cs, _ := LookupSuite(X25519AES128GCMSHA256Ed25519)
	gs := newTestGroup(t, cs, 2, Config{ValidateCredential: acceptAnyCredential, MaxRetainedEpochs: 1})
	a, b := gs[0], gs[1]
	fork := clone(t, a)
	old, _ := commit(t, fork, CommitOptions{Update: true})
	var cms [][]byte
	for range 3 {
		cm, _ := commit(t, a, CommitOptions{Update: true})
		cms = append(cms, cm)
	}
	// Epoch 1 is older than every retained epoch of A.
	_, err := a.Process(old)
	expectErr(t, err, ErrStaleCommit)
	for _, cm := range cms {
		deliver(t, cm, b)
	}
	_, err = b.Process(old)
	expectErr(t, err, ErrStaleCommit)
	sameState(t, a, b)
}
