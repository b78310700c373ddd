// Package secrettree derives the per-sender keys of an MLS epoch (RFC 9420
// section 9): the secret tree over the leaves, the hash ratchets of each
// sender, and the sender-data key and nonce. Secrets are dropped once used.
package secrettree

import (
	"errors"
	"fmt"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// MaxRatchetSkip bounds how many generations a HashRatchet advances in one
// step, so a peer cannot make a member derive an unbounded number of keys.
const MaxRatchetSkip = 1 << 16

// ErrGeneration reports a request for a generation that was already
// consumed or lies too far ahead.
var ErrGeneration = errors.New("mls: generation unavailable")

// ErrConsumed reports a generation whose key was already used (or
// dropped); it matches ErrGeneration too.
var ErrConsumed = errors.New("mls: generation already consumed")

// SecretTree derives per-sender encryption secrets from an epoch's
// encryption_secret (RFC 9420 section 9). Node secrets are deleted as soon
// as their children are derived.
type SecretTree struct {
	cs      *ciphersuite.CipherSuite
	nLeaves uint32
	secrets map[treemath.NodeIndex][]byte
}

// NewSecretTree returns the secret tree of a group with nLeaves leaves
// rooted at encryptionSecret.
func NewSecretTree(cs *ciphersuite.CipherSuite, encryptionSecret []byte, nLeaves uint32) *SecretTree {
	root := treemath.Root(nLeaves)
	return &SecretTree{
		cs:      cs,
		nLeaves: nLeaves,
		secrets: map[treemath.NodeIndex][]byte{root: append([]byte(nil), encryptionSecret...)},
	}
}

// leafSecret derives and removes the secret of leaf l's node.
func (t *SecretTree) leafSecret(l treemath.LeafIndex) ([]byte, error) {
	if uint32(l) >= t.nLeaves {
		return nil, fmt.Errorf("%w: leaf %d of %d", treemath.ErrTreeMath, l, t.nLeaves)
	}
	target := l.Node()
	path, err := target.DirectPath(t.nLeaves)
	if err != nil {
		return nil, err
	}
	// Find the lowest node on the path (or the leaf itself) still held.
	start := -1
	if _, ok := t.secrets[target]; !ok {
		for i, p := range path {
			if _, ok := t.secrets[p]; ok {
				start = i
				break
			}
		}
		if start < 0 {
			return nil, fmt.Errorf("%w: leaf %d secret already consumed", ErrGeneration, l)
		}
		for i := start; i >= 0; i-- {
			x := path[i]
			if err := t.split(x); err != nil {
				return nil, err
			}
		}
	}
	s := t.secrets[target]
	delete(t.secrets, target)
	return s, nil
}

// split replaces node x's secret by its children's secrets.
func (t *SecretTree) split(x treemath.NodeIndex) error {
	s := t.secrets[x]
	left, err := x.Left()
	if err != nil {
		return err
	}
	right, err := x.Right()
	if err != nil {
		return err
	}
	ls, err := t.cs.ExpandWithLabel(s, "tree", []byte("left"), t.cs.Nh())
	if err != nil {
		return err
	}
	rs, err := t.cs.ExpandWithLabel(s, "tree", []byte("right"), t.cs.Nh())
	if err != nil {
		return err
	}
	delete(t.secrets, x)
	t.secrets[left], t.secrets[right] = ls, rs
	return nil
}

// LeafRatchets returns leaf l's handshake and application ratchets at
// generation 0. Each leaf's ratchets can be taken once.
func (t *SecretTree) LeafRatchets(l treemath.LeafIndex) (handshake, application *HashRatchet, err error) {
	s, err := t.leafSecret(l)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: secret tree: %w", err)
	}
	hs, err := t.cs.ExpandWithLabel(s, "handshake", nil, t.cs.Nh())
	if err != nil {
		return nil, nil, err
	}
	as, err := t.cs.ExpandWithLabel(s, "application", nil, t.cs.Nh())
	if err != nil {
		return nil, nil, err
	}
	return &HashRatchet{cs: t.cs, secret: hs}, &HashRatchet{cs: t.cs, secret: as}, nil
}

// HashRatchet is one sender's symmetric ratchet for one content type
// (RFC 9420 section 9.1). It only moves forward.
type HashRatchet struct {
	cs         *ciphersuite.CipherSuite
	secret     []byte
	generation uint32
	// skipped holds the keys of generations passed over but not yet
	// used, when out-of-order delivery is allowed.
	skipped map[uint32]keyNonce
}

// keyNonce is the key and nonce of one generation.
type keyNonce struct{ key, nonce []byte }

// Generation returns the generation of the next key.
func (r *HashRatchet) Generation() uint32 { return r.generation }

// Next returns the key and nonce of the current generation and advances
// the ratchet.
func (r *HashRatchet) Next() (key, nonce []byte, generation uint32, err error) {
	g := r.generation
	key, err = r.cs.DeriveTreeSecret(r.secret, "key", g, r.cs.AEADKeySize())
	if err != nil {
		return nil, nil, 0, err
	}
	nonce, err = r.cs.DeriveTreeSecret(r.secret, "nonce", g, r.cs.AEADNonceSize())
	if err != nil {
		return nil, nil, 0, err
	}
	if err := r.advance(); err != nil {
		return nil, nil, 0, err
	}
	return key, nonce, g, nil
}

func (r *HashRatchet) advance() error {
	if r.generation == ^uint32(0) {
		return fmt.Errorf("%w: ratchet exhausted", ErrGeneration)
	}
	next, err := r.cs.DeriveTreeSecret(r.secret, "secret", r.generation, r.cs.Nh())
	if err != nil {
		return err
	}
	r.secret = next
	r.generation++
	return nil
}

// KeyAt advances the ratchet to generation g, skipping (and discarding)
// earlier generations, and returns g's key and nonce. Generations already
// passed, or more than MaxRatchetSkip ahead, are refused.
func (r *HashRatchet) KeyAt(g uint32) (key, nonce []byte, err error) {
	if g < r.generation {
		return nil, nil, fmt.Errorf("%w: %d already consumed (at %d)", ErrGeneration, g, r.generation)
	}
	if g-r.generation > MaxRatchetSkip {
		return nil, nil, fmt.Errorf("%w: %d is too far ahead of %d", ErrGeneration, g, r.generation)
	}
	for r.generation < g {
		if err := r.advance(); err != nil {
			return nil, nil, err
		}
	}
	key, nonce, _, err = r.Next()
	return key, nonce, err
}

// SenderDataKeyNonce derives the key and nonce that protect the sender data
// of a PrivateMessage from sender_data_secret and the ciphertext (RFC 9420
// section 6.3.2).
func SenderDataKeyNonce(cs *ciphersuite.CipherSuite, senderDataSecret, ciphertext []byte) (key, nonce []byte, err error) {
	sample := ciphertext
	if len(sample) > cs.Nh() {
		sample = sample[:cs.Nh()]
	}
	key, err = cs.ExpandWithLabel(senderDataSecret, "key", sample, cs.AEADKeySize())
	if err != nil {
		return nil, nil, err
	}
	nonce, err = cs.ExpandWithLabel(senderDataSecret, "nonce", sample, cs.AEADNonceSize())
	if err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}

// Prepare returns the key and nonce of generation g without changing the
// ratchet, and a commit function that consumes them. With maxSkip > 0 the
// keys of skipped generations are kept (at most maxSkip, the oldest
// dropped first) so that they can be used later, once; with maxSkip == 0
// generations must increase and may skip up to MaxRatchetSkip. A
// generation already used (or dropped) gives an error wrapping ErrConsumed
// and ErrGeneration.
func (r *HashRatchet) Prepare(g uint32, maxSkip int) (key, nonce []byte, commit func(), err error) {
	if g < r.generation {
		if kn, ok := r.skipped[g]; ok {
			return kn.key, kn.nonce, func() { delete(r.skipped, g) }, nil
		}
		return nil, nil, nil, fmt.Errorf("%w: %w: generation %d", ErrConsumed, ErrGeneration, g)
	}
	limit := uint32(MaxRatchetSkip)
	if maxSkip > 0 {
		limit = uint32(maxSkip)
	}
	if g-r.generation > limit {
		return nil, nil, nil, fmt.Errorf("%w: %d is too far ahead of %d", ErrGeneration, g, r.generation)
	}
	tmp := HashRatchet{cs: r.cs, secret: r.secret, generation: r.generation}
	var kept map[uint32]keyNonce
	for tmp.generation < g {
		if maxSkip > 0 && g-tmp.generation <= uint32(maxSkip) {
			k, n, gen, err := tmp.Next()
			if err != nil {
				return nil, nil, nil, err
			}
			if kept == nil {
				kept = map[uint32]keyNonce{}
			}
			kept[gen] = keyNonce{k, n}
			continue
		}
		if err := tmp.advance(); err != nil {
			return nil, nil, nil, err
		}
	}
	key, nonce, _, err = tmp.Next()
	if err != nil {
		return nil, nil, nil, err
	}
	return key, nonce, func() {
		r.secret, r.generation = tmp.secret, tmp.generation
		if len(kept) == 0 {
			return
		}
		if r.skipped == nil {
			r.skipped = map[uint32]keyNonce{}
		}
		for gen, kn := range kept {
			r.skipped[gen] = kn
		}
		for len(r.skipped) > maxSkip {
			oldest := ^uint32(0)
			for gen := range r.skipped {
				oldest = min(oldest, gen)
			}
			delete(r.skipped, oldest)
		}
	}, nil
}
