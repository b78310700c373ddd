package mls

import (
	"testing"
)

// fuzzGroup returns the persisted state of member 1 of a three-member
// group, with real messages to it as seeds.
func fuzzGroup(f *testing.F) (state []byte, seeds [][]byte, welcome []byte, joiner *KeyPackageBundle) {
	cs, err := LookupSuite(X25519AES128GCMSHA256Ed25519)
	if err != nil {
		f.Fatal(err)
	}
	gs := newTestGroup(f, cs, 3, Config{ValidateCredential: acceptAnyCredential})
	a, b := gs[0], gs[1]
	state = mustState(f, b)
	m, err := a.Encrypt([]byte("application"), []byte("ad"))
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, m)
	p, err := a.ProposeUpdate()
	if err != nil {
		f.Fatal(err)
	}
	seeds = append(seeds, p)
	pub := clone(f, a)
	cm, _ := commit(f, pub, CommitOptions{Update: true})
	seeds = append(seeds, cm)
	priv := clone(f, a)
	priv.cfg.EncryptHandshake = true
	cm, _ = commit(f, priv, CommitOptions{Remove: []LeafIndex{2}})
	seeds = append(seeds, cm)
	joiner = newBundle(f, cs, "j")
	cm, welcome = commit(f, clone(f, a), CommitOptions{Add: []KeyPackage{joiner.KeyPackage}})
	seeds = append(seeds, cm, welcome)
	return state, seeds, welcome, joiner
}

func FuzzGroupProcess(f *testing.F) {
	state, seeds, _, _ := fuzzGroup(f)
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > 1<<16 {
			return
		}
		g, err := UnmarshalGroup(state, Config{ValidateCredential: acceptAnyCredential})
		if err != nil {
			t.Fatal(err)
		}
		_, _ = g.Process(msg)
	})
}

func FuzzJoinFromWelcome(f *testing.F) {
	_, seeds, welcome, joiner := fuzzGroup(f)
	f.Add(welcome)
	f.Add(seeds[0])
	f.Fuzz(func(t *testing.T, msg []byte) {
		if len(msg) > 1<<16 {
			return
		}
		_, _ = JoinFromWelcome(msg, func([]byte) *KeyPackageBundle { return joiner }, nil, Config{ValidateCredential: acceptAnyCredential})
	})
}

func FuzzParseKeyPackage(f *testing.F) {
	cs, _ := LookupSuite(X25519AES128GCMSHA256Ed25519)
	b := newBundle(f, cs, "k")
	m, err := b.Message()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(m)
	bb, err := b.MarshalBinary()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(bb)
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		_, _ = ParseKeyPackage(data)
		_, _ = UnmarshalKeyPackageBundle(data)
	})
}
