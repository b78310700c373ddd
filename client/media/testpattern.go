package media

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// The layout of a "test" video payload (spec section 12.8.2).
const (
	// TestHeaderLen is the size of the header of a test frame.
	TestHeaderLen = 12
	// TestKeyInterval is the distance between key frames, from frame 0.
	TestKeyInterval = 30
	// testKeyFactor is how many times larger a key frame's body is.
	testKeyFactor = 4
)

// ErrTestPattern is wrapped by the errors of CheckTestPattern for a payload
// that is not a frame of the test pattern.
var ErrTestPattern = errors.New("media: not a test pattern frame")

// TestPattern generates the synthetic "test" video of spec section 12.8.2
// at W×H (each 0 – 65,535; larger values are taken modulo 65,536).
type TestPattern struct {
	W, H int
}

// IsTestKeyFrame reports whether frame n of the test pattern is a key
// frame (every TestKeyInterval-th frame from frame 0).
func IsTestKeyFrame(n uint32) bool { return n%TestKeyInterval == 0 }

// testBodyLen is the body size of a test frame at w×h.
func testBodyLen(w, h uint16, key bool) int {
	n := int(w) * int(h) / 20
	if key {
		n *= testKeyFactor
	}
	return n
}

// Frame returns the payload of frame n: a 12-byte header (width and height,
// 2 bytes each; n, 4 bytes; 1 for a key frame, else 0; 3 zero bytes; all
// big-endian) and W·H/20 bytes (4 times as many for a key frame) in which
// byte j is (n + j) mod 251.
func (tp TestPattern) Frame(n uint32) []byte {
	w, h := uint16(tp.W), uint16(tp.H)
	key := IsTestKeyFrame(n)
	b := make([]byte, TestHeaderLen+testBodyLen(w, h, key))
	binary.BigEndian.PutUint16(b[0:], w)
	binary.BigEndian.PutUint16(b[2:], h)
	binary.BigEndian.PutUint32(b[4:], n)
	if key {
		b[8] = 1
	}
	v := byte(n % 251)
	for j := TestHeaderLen; j < len(b); j++ {
		b[j] = v
		if v++; v == 251 {
			v = 0
		}
	}
	return b
}

// CheckTestPattern checks that payload is a frame of the test pattern and
// returns its frame number and whether it is a key frame. Any difference
// from what TestPattern.Frame makes gives an error wrapping ErrTestPattern.
func CheckTestPattern(payload []byte) (n uint32, key bool, err error) {
	if len(payload) < TestHeaderLen {
		return 0, false, fmt.Errorf("%w: %d bytes, shorter than the header", ErrTestPattern, len(payload))
	}
	w := binary.BigEndian.Uint16(payload[0:])
	h := binary.BigEndian.Uint16(payload[2:])
	n = binary.BigEndian.Uint32(payload[4:])
	switch flag := payload[8]; {
	case flag > 1:
		return n, false, fmt.Errorf("%w: frame %d: key flag %d", ErrTestPattern, n, flag)
	case (flag == 1) != IsTestKeyFrame(n):
		return n, false, fmt.Errorf("%w: frame %d: key flag %d", ErrTestPattern, n, flag)
	default:
		key = flag == 1
	}
	if payload[9] != 0 || payload[10] != 0 || payload[11] != 0 {
		return n, key, fmt.Errorf("%w: frame %d: reserved header bytes not zero", ErrTestPattern, n)
	}
	if want := TestHeaderLen + testBodyLen(w, h, key); len(payload) != want {
		return n, key, fmt.Errorf("%w: frame %d at %dx%d: %d bytes, want %d", ErrTestPattern, n, w, h, len(payload), want)
	}
	v := byte(n % 251)
	for j := TestHeaderLen; j < len(payload); j++ {
		if payload[j] != v {
			return n, key, fmt.Errorf("%w: frame %d: body byte %d is %d, want %d", ErrTestPattern, n, j-TestHeaderLen, payload[j], v)
		}
		if v++; v == 251 {
			v = 0
		}
	}
	return n, key, nil
}
