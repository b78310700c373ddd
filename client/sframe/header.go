package sframe

import (
	"encoding/binary"
	"fmt"
	"math/bits"
)

// MaxHeaderLen is the length of the longest SFrame header: a config byte,
// then 8 bytes each of KID and counter.
const MaxHeaderLen = 17

// AppendHeader appends the SFrame header of kid and ctr (RFC 9605 section
// 4.3), in its shortest form, to dst.
func AppendHeader(dst []byte, kid, ctr uint64) []byte {
	var config byte
	kidLen, ctrLen := 0, 0
	if kid < 8 {
		config = byte(kid) << 4
	} else {
		kidLen = uintLen(kid)
		config = 0x80 | byte(kidLen-1)<<4
	}
	if ctr < 8 {
		config |= byte(ctr)
	} else {
		ctrLen = uintLen(ctr)
		config |= 0x08 | byte(ctrLen-1)
	}
	dst = append(dst, config)
	dst = appendUint(dst, kid, kidLen)
	return appendUint(dst, ctr, ctrLen)
}

// ParseHeader decodes the SFrame header at the start of b and returns its
// KID, counter and length. An error wraps ErrMalformed. Longer-than-needed
// encodings of a value are accepted, as RFC 9605 does not forbid them.
func ParseHeader(b []byte) (kid, ctr uint64, headerLen int, err error) {
	if len(b) == 0 {
		return 0, 0, 0, fmt.Errorf("%w: empty header", ErrMalformed)
	}
	config := b[0]
	n := 1
	kid, n, ok := field(b, n, config>>4)
	if !ok {
		return 0, 0, 0, fmt.Errorf("%w: header cut short in the KID", ErrMalformed)
	}
	ctr, n, ok = field(b, n, config&0x0f)
	if !ok {
		return 0, 0, 0, fmt.Errorf("%w: header cut short in the counter", ErrMalformed)
	}
	return kid, ctr, n, nil
}

// field decodes one 4-bit header field (the extended flag and 3 bits) and
// the bytes it announces at b[n:].
func field(b []byte, n int, bitsOf byte) (v uint64, next int, ok bool) {
	if bitsOf&0x08 == 0 {
		return uint64(bitsOf & 0x07), n, true
	}
	l := int(bitsOf&0x07) + 1
	if len(b)-n < l {
		return 0, n, false
	}
	for _, c := range b[n : n+l] {
		v = v<<8 | uint64(c)
	}
	return v, n + l, true
}

// uintLen returns the bytes needed for v (at least 1).
func uintLen(v uint64) int {
	return max(1, (bits.Len64(v)+7)/8)
}

// appendUint appends the l low bytes of v, big-endian.
func appendUint(dst []byte, v uint64, l int) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return append(dst, b[8-l:]...)
}
