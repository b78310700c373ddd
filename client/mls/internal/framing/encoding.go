package framing

import (
	"maps"
	"slices"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/secrettree"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// Marshal encodes the message keys: the secret tree's remaining node
// secrets and every ratchet taken from it.
func (k *MessageKeys) Marshal(w *codec.Writer) {
	k.mu.Lock()
	defer k.mu.Unlock()
	w.Opaque(k.senderDataSecret)
	k.tree.Marshal(w)
	leaves := slices.Sorted(maps.Keys(k.ratchets))
	w.Uint32(uint32(len(leaves)))
	for _, l := range leaves {
		w.Uint32(uint32(l))
		for _, r := range k.ratchets[l] {
			r.Marshal(w)
		}
	}
}

func UnmarshalMessageKeys(cs *ciphersuite.CipherSuite, d *codec.Dec, nLeaves uint32) (*MessageKeys, error) {
	sds := slices.Clone(d.Opaque())
	tree, err := secrettree.UnmarshalSecretTree(cs, d, nLeaves)
	if err != nil {
		return nil, err
	}
	k := &MessageKeys{cs: cs, senderDataSecret: sds, tree: tree, ratchets: map[treemath.LeafIndex]*[2]*secrettree.HashRatchet{}}
	n := d.U32()
	for i := uint32(0); i < n && d.Err == nil; i++ {
		l := treemath.LeafIndex(d.U32())
		var rs [2]*secrettree.HashRatchet
		for j := range rs {
			rs[j] = secrettree.UnmarshalHashRatchet(cs, d, secrettree.MaxRatchetSkip)
		}
		k.ratchets[l] = &rs
	}
	if d.Err != nil {
		return nil, d.Err
	}
	return k, nil
}
