package mls

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestGroupRandomChain runs a chain of random commits (adds, removes,
// updates, by value and by reference, public and encrypted handshakes)
// and checks after each that every member is in the same state and can
// read the others.
func TestGroupRandomChain(t *testing.T) {
	cs, _ := LookupSuite(X25519AES128GCMSHA256Ed25519)
	rng := rand.New(rand.NewPCG(1, 2))
	rounds := 40
	if raceEnabled {
		rounds = 15
	}
	gs := newTestGroup(t, cs, 3, Config{ValidateCredential: acceptAnyCredential})
	next := 0
	for round := range rounds {
		committer := gs[rng.IntN(len(gs))]
		var opts CommitOptions
		var proposals [][]byte
		var proposers []*Group
		// Some members propose first.
		for _, g := range gs {
			if g == committer || rng.IntN(4) != 0 {
				continue
			}
			var p []byte
			var err error
			switch rng.IntN(2) {
			case 0:
				p, err = g.ProposeUpdate()
			case 1:
				next++
				p, err = g.ProposeAdd(newBundle(t, cs, fmt.Sprint("p", next)).KeyPackage)
			}
			if err != nil {
				t.Fatal(err)
			}
			proposals = append(proposals, p)
			proposers = append(proposers, g)
		}
		var joiners []*KeyPackageBundle
		for range rng.IntN(3) {
			next++
			b := newBundle(t, cs, fmt.Sprint("n", next))
			joiners = append(joiners, b)
			opts.Add = append(opts.Add, b.KeyPackage)
		}
		if len(gs) > 3 && rng.IntN(2) == 0 {
			victim := gs[rng.IntN(len(gs))]
			if victim != committer && !slices.Contains(proposers, victim) {
				opts.Remove = []LeafIndex{victim.OwnLeaf()}
			}
		}
		opts.Update = rng.IntN(3) == 0
		committer.cfg.EncryptHandshake = rng.IntN(2) == 0
		for i, p := range proposals {
			for _, g := range gs {
				if g != proposers[i] {
					if _, err := g.Process(p); err != nil {
						t.Fatalf("round %d: proposal: %v", round, err)
					}
				}
			}
		}
		cm, w, err := committer.Commit(opts)
		if err != nil {
			t.Fatalf("round %d: commit: %v", round, err)
		}
		var stay []*Group
		for _, g := range gs {
			if g == committer {
				stay = append(stay, g)
				continue
			}
			p, err := g.Process(cm)
			if err != nil {
				t.Fatalf("round %d: process commit: %v", round, err)
			}
			if !p.SelfRemoved {
				stay = append(stay, g)
			}
		}
		gs = stay
		if w != nil {
			// Members added by proposals stay silent (their bundles are
			// not kept); those of the commit's own adds join.
			for _, b := range joiners {
				g, err := JoinFromWelcome(w, bundleLookup(b), nil, Config{ValidateCredential: acceptAnyCredential})
				if err != nil {
					t.Fatalf("round %d: join: %v", round, err)
				}
				gs = append(gs, g)
			}
		}
		sameState(t, gs...)
		sender := gs[rng.IntN(len(gs))]
		m := mustEncrypt(t, sender, fmt.Sprint("round ", round))
		for _, g := range gs {
			if g != sender {
				expectText(t, g, m, fmt.Sprint("round ", round))
			}
		}
	}
	t.Logf("%d rounds, %d members at the end", rounds, len(gs))
}
