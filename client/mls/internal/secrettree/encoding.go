package secrettree

import (
	"fmt"
	"maps"
	"slices"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// WriteSecretMap encodes node secrets in the order of their indices.
func WriteSecretMap(w *codec.Writer, m map[treemath.NodeIndex][]byte) {
	keys := slices.Sorted(maps.Keys(m))
	w.Uint32(uint32(len(keys)))
	for _, k := range keys {
		w.Uint32(uint32(k))
		w.Opaque(m[k])
	}
}

// ReadSecretMap decodes node secrets written by writeSecretMap.
func ReadSecretMap(d *codec.Dec) map[treemath.NodeIndex][]byte {
	n := d.U32()
	m := map[treemath.NodeIndex][]byte{}
	for i := uint32(0); i < n && d.Err == nil; i++ {
		k := treemath.NodeIndex(d.U32())
		m[k] = slices.Clone(d.Opaque())
	}
	return m
}

// Marshal encodes the secrets the tree has not yet handed out.
func (t *SecretTree) Marshal(w *codec.Writer) { WriteSecretMap(w, t.secrets) }

// UnmarshalSecretTree decodes a secret tree of nLeaves leaves encoded by
// Marshal.
func UnmarshalSecretTree(cs *ciphersuite.CipherSuite, d *codec.Dec, nLeaves uint32) (*SecretTree, error) {
	secrets := ReadSecretMap(d)
	if d.Err != nil {
		return nil, d.Err
	}
	if nLeaves == 0 || nLeaves&(nLeaves-1) != 0 {
		return nil, fmt.Errorf("%w: secret tree of %d leaves", treemath.ErrTreeMath, nLeaves)
	}
	return &SecretTree{cs: cs, nLeaves: nLeaves, secrets: secrets}, nil
}

// Marshal encodes the ratchet: its secret, generation and skipped keys.
func (r *HashRatchet) Marshal(w *codec.Writer) {
	w.Opaque(r.secret)
	w.Uint32(r.generation)
	gens := slices.Sorted(maps.Keys(r.skipped))
	w.Uint32(uint32(len(gens)))
	for _, gen := range gens {
		w.Uint32(gen)
		w.Opaque(r.skipped[gen].key)
		w.Opaque(r.skipped[gen].nonce)
	}
}

// UnmarshalHashRatchet decodes a ratchet encoded by marshal, with at most
// maxSkipped skipped keys.
func UnmarshalHashRatchet(cs *ciphersuite.CipherSuite, d *codec.Dec, maxSkipped uint32) *HashRatchet {
	r := &HashRatchet{cs: cs, secret: slices.Clone(d.Opaque()), generation: d.U32()}
	m := d.U32()
	if d.Err == nil && m > maxSkipped {
		d.Fail(fmt.Errorf("%d skipped keys", m))
	}
	for s := uint32(0); s < m && d.Err == nil; s++ {
		if r.skipped == nil {
			r.skipped = map[uint32]keyNonce{}
		}
		gen := d.U32()
		r.skipped[gen] = keyNonce{slices.Clone(d.Opaque()), slices.Clone(d.Opaque())}
	}
	return r
}
