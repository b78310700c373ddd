package sframe

import "fmt"

// MaxMLSLeaf is the highest leaf index that can send media: the KID layout
// of spec 12.7 has 16 index bits.
const MaxMLSLeaf = 1<<16 - 1

// MLSKeyID returns the KID of the member at leaf index leaf in epoch epoch
// (spec 12.7): (leaf << 8) | (epoch mod 256). A leaf above MaxMLSLeaf has no
// KID of the layout; MLSSender refuses it.
func MLSKeyID(leaf uint32, epoch uint64) uint64 {
	return uint64(leaf)<<8 | epoch&0xff
}

// SplitMLSKeyID returns the leaf index and the low 8 bits of the epoch of a
// KID of the layout of spec 12.7. A KID with a leaf above MaxMLSLeaf or a
// non-zero context identifier gives an error wrapping ErrMalformed.
func SplitMLSKeyID(kid uint64) (leaf uint32, epochLow uint8, err error) {
	if kid>>24 != 0 {
		return 0, 0, fmt.Errorf("%w: KID %d outside the MLS layout", ErrMalformed, kid)
	}
	return uint32(kid >> 8), uint8(kid), nil
}
