package wire_test

import (
	"bytes"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

// cborCase is one CheckDeterministic input. The same table seeds
// FuzzCheckDeterministic.
type cborCase struct {
	name string
	hex  string
	want wire.Code // CodeOK: accepted
}

var cborCases = []cborCase{
	// Accepted.
	{"uint 0", "00", wire.CodeOK},
	{"uint 23", "17", wire.CodeOK},
	{"uint 24", "1818", wire.CodeOK},
	{"uint 255", "18ff", wire.CodeOK},
	{"uint 256", "190100", wire.CodeOK},
	{"uint 65535", "19ffff", wire.CodeOK},
	{"uint 65536", "1a00010000", wire.CodeOK},
	{"uint 2^32-1", "1affffffff", wire.CodeOK},
	{"uint 2^32", "1b0000000100000000", wire.CodeOK},
	{"uint 2^64-1", "1bffffffffffffffff", wire.CodeOK},
	{"nint -1", "20", wire.CodeOK},
	{"nint -25", "3818", wire.CodeOK},
	{"nint -2^64", "3bffffffffffffffff", wire.CodeOK},
	{"empty bstr", "40", wire.CodeOK},
	{"bstr", "4401020304", wire.CodeOK},
	{"bstr of 24", "5818" + "000000000000000000000000000000000000000000000000", wire.CodeOK},
	{"empty tstr", "60", wire.CodeOK},
	{"tstr", "6161", wire.CodeOK},
	{"tstr multibyte", "63e282ac", wire.CodeOK},
	{"false", "f4", wire.CodeOK},
	{"true", "f5", wire.CodeOK},
	{"null", "f6", wire.CodeOK},
	{"empty array", "80", wire.CodeOK},
	{"array", "83010203", wire.CodeOK},
	{"empty map", "a0", wire.CodeOK},
	{"map sorted uint keys", "a3000101021718f4", wire.CodeOK},
	{"map key 23 before 24", "a2170018180f", wire.CodeOK},
	{"map bytewise order, not length first", "a2190100002000", wire.CodeOK},
	{"map uint before tstr", "a2 01 00 6161 00", wire.CodeOK},
	{"map tstr keys", "a2 6161 01 6162 02", wire.CodeOK},
	{"map shorter tstr first", "a2 6162 01 626161 02", wire.CodeOK},
	{"nested", "a2 00 07 01 81 a3 01 50 00000000000000000000000000000000 02 a2 01 63 614062 02 01 04 41 00", wire.CodeOK},

	// Non-shortest arguments.
	{"uint 0 in 1 byte", "1800", wire.CodeNoncanonical},
	{"uint 23 in 1 byte", "1817", wire.CodeNoncanonical},
	{"uint 255 in 2 bytes", "1900ff", wire.CodeNoncanonical},
	{"uint 65535 in 4 bytes", "1a0000ffff", wire.CodeNoncanonical},
	{"uint 2^32-1 in 8 bytes", "1b00000000ffffffff", wire.CodeNoncanonical},
	{"nint -1 in 1 byte", "3800", wire.CodeNoncanonical},
	{"nint in 8 bytes", "3b0000000000000000", wire.CodeNoncanonical},
	{"bstr length in 1 byte", "580100", wire.CodeNoncanonical},
	{"tstr length in 2 bytes", "79000161", wire.CodeNoncanonical},
	{"array length in 1 byte", "980100", wire.CodeNoncanonical},
	{"map length in 1 byte", "b8010000", wire.CodeNoncanonical},
	{"map key non-shortest", "a1180000", wire.CodeNoncanonical},
	{"nested value non-shortest", "81a1001900ff", wire.CodeNoncanonical},
	// Indefinite lengths.
	{"indefinite bstr", "5f4100ff", wire.CodeNoncanonical},
	{"indefinite tstr", "7f6161ff", wire.CodeNoncanonical},
	{"indefinite array", "9f01ff", wire.CodeNoncanonical},
	{"indefinite map", "bf0000ff", wire.CodeNoncanonical},
	{"indefinite empty array", "9fff", wire.CodeNoncanonical},
	// Map order.
	{"map keys descending", "a2010000 00", wire.CodeNoncanonical},
	{"map 24 before 23", "a2181800 1700", wire.CodeNoncanonical},
	{"map length-first order", "a2200019010000", wire.CodeNoncanonical},
	{"map tstr before uint", "a2 6161 00 01 00", wire.CodeNoncanonical},
	{"map longer tstr first", "a2 626161 01 6162 02", wire.CodeNoncanonical},
	{"nested map unsorted", "81a2020001 00", wire.CodeNoncanonical},

	// Duplicate keys.
	{"duplicate uint key", "a2010001 00", wire.CodeMalformed},
	{"duplicate tstr key", "a2 6161 00 6161 01", wire.CodeMalformed},
	{"duplicate key in nested map", "a1 00 a2 0101 0102", wire.CodeMalformed},
	// Tags.
	{"tag 0", "c06161", wire.CodeMalformed},
	{"tag 1", "c101", wire.CodeMalformed},
	{"tag 24 encoded cbor", "d8184100", wire.CodeMalformed},
	{"bignum tag", "c24101", wire.CodeMalformed},
	{"tag inside map", "a100c101", wire.CodeMalformed},
	// Floats.
	{"float16 zero", "f90000", wire.CodeMalformed},
	{"float16 one", "f93c00", wire.CodeMalformed},
	{"float32", "fa3f800000", wire.CodeMalformed},
	{"float64", "fb3ff0000000000000", wire.CodeMalformed},
	{"float16 NaN", "f97e00", wire.CodeMalformed},
	{"float as map value", "a100f93c00", wire.CodeMalformed},
	// Simple values.
	{"undefined", "f7", wire.CodeMalformed},
	{"simple 0", "e0", wire.CodeMalformed},
	{"simple 19", "f3", wire.CodeMalformed},
	{"simple 32", "f820", wire.CodeMalformed},
	{"simple 255", "f8ff", wire.CodeMalformed},
	{"false in two bytes", "f814", wire.CodeMalformed},
	// Not well formed.
	{"empty input", "", wire.CodeMalformed},
	{"lone break", "ff", wire.CodeMalformed},
	{"break inside array", "8201ff", wire.CodeMalformed},
	{"reserved ai 28", "1c", wire.CodeMalformed},
	{"reserved ai 29", "3d", wire.CodeMalformed},
	{"reserved ai 30", "5e", wire.CodeMalformed},
	{"reserved simple ai 28", "fc", wire.CodeMalformed},
	{"truncated argument", "18", wire.CodeMalformed},
	{"truncated 8-byte argument", "1b000000", wire.CodeMalformed},
	{"truncated bstr", "420001"[:4], wire.CodeMalformed},
	{"truncated tstr", "6361", wire.CodeMalformed},
	{"truncated array", "820101"[:4], wire.CodeMalformed},
	{"truncated map", "a100", wire.CodeMalformed},
	{"huge bstr length", "5bffffffffffffffff00", wire.CodeMalformed},
	{"trailing byte", "0000", wire.CodeMalformed},
	{"two items", "a0a0", wire.CodeMalformed},
	// UTF-8.
	{"invalid utf-8", "61ff", wire.CodeMalformed},
	{"overlong utf-8", "62c0af", wire.CodeMalformed},
	{"utf-8 surrogate", "63eda080", wire.CodeMalformed},
	{"truncated utf-8 sequence", "62e282", wire.CodeMalformed},
	{"invalid utf-8 map key", "a161ff00", wire.CodeMalformed},
}

func TestCheckDeterministic(t *testing.T) {
	for _, tt := range cborCases {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, wire.CheckDeterministic(unhex(t, tt.hex)), tt.want)
		})
	}
}

// nest returns n arrays, one inside the other, around inner.
func nest(n int, inner []byte) []byte {
	b := bytes.Repeat([]byte{0x81}, n)
	return append(b, inner...)
}

// nestMaps returns n maps {0: ...}, one inside the other, around inner.
func nestMaps(n int, inner []byte) []byte {
	b := bytes.Repeat([]byte{0xa1, 0x00}, n)
	return append(b, inner...)
}

// arrayOf returns an array of n zeros.
func arrayOf(n int) []byte {
	return append(cborHead(4, uint64(n)), make([]byte, n)...)
}

// cborHead returns the shortest head of a major type and argument.
func cborHead(major byte, arg uint64) []byte {
	m := major << 5
	switch {
	case arg < 24:
		return []byte{m | byte(arg)}
	case arg < 1<<8:
		return []byte{m | 24, byte(arg)}
	case arg < 1<<16:
		return []byte{m | 25, byte(arg >> 8), byte(arg)}
	case arg < 1<<32:
		return []byte{m | 26, byte(arg >> 24), byte(arg >> 16), byte(arg >> 8), byte(arg)}
	}
	return []byte{m | 27, byte(arg >> 56), byte(arg >> 48), byte(arg >> 40), byte(arg >> 32),
		byte(arg >> 24), byte(arg >> 16), byte(arg >> 8), byte(arg)}
}

// mapOf returns a map of n pairs i: 0.
func mapOf(n int) []byte {
	b := cborHead(5, uint64(n))
	for i := 0; i < n; i++ {
		b = append(b, cborHead(0, uint64(i))...)
		b = append(b, 0x00)
	}
	return b
}

func TestCheckDeterministicLimits(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		want wire.Code
	}{
		{"8 nested arrays, innermost empty", nest(7, []byte{0x80}), wire.CodeOK},
		{"scalar inside 8 arrays", nest(8, []byte{0x01}), wire.CodeOK},
		{"bstr inside 8 arrays", nest(8, []byte{0x41, 0x00}), wire.CodeOK},
		{"9 nested arrays", nest(8, []byte{0x80}), wire.CodeMalformed},
		{"scalar inside 8 maps", nestMaps(8, []byte{0x01}), wire.CodeOK},
		{"9 nested maps", nestMaps(8, []byte{0xa0}), wire.CodeMalformed},
		{"array in map key position at depth 9", append(nestMaps(7, []byte{0xa1}), 0x80, 0x00), wire.CodeMalformed},
		{"array of 1024", arrayOf(wire.MaxArray), wire.CodeOK},
		{"array of 1025", arrayOf(wire.MaxArray + 1), wire.CodeMalformed},
		{"array of 2^32 claimed", unhex(t, "9b0000000100000000"), wire.CodeMalformed},
		{"map of 64", mapOf(wire.MaxMapPairs), wire.CodeOK},
		{"map of 65", mapOf(wire.MaxMapPairs + 1), wire.CodeMalformed},
		{"map of 2^32 claimed", unhex(t, "bb0000000100000000"), wire.CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, wire.CheckDeterministic(tt.b), tt.want)
		})
	}
	// "scalar inside 8 arrays" really is 8 arrays and a scalar.
	if b := nest(8, []byte{0x01}); len(b) != 9 || b[8] != 0x01 {
		t.Fatalf("nest: %x", b)
	}
}

// Everything Marshal produces passes CheckDeterministic.
func TestMarshalIsDeterministic(t *testing.T) {
	values := []any{
		uint64(0), uint64(24), uint64(1) << 40, int64(-1), int64(-1) << 40,
		"", "héllo", []byte{}, []byte{1, 2, 3}, true, false, nil,
		[]any{uint64(1), "a", []byte{2}},
		map[uint64]any{5: "x", 0: uint64(1), 24: []uint64{1, 2}, 23: map[string]bool{"b": true, "a": false}},
		map[any]any{"a": 1, uint64(1000): 2, int64(-1): 3, "": 4},
		&wire.Envelope{ID: make([]byte, 16), To: wire.Mailbox{Address: "a@b", Device: 1}, Sealed: []byte{1}},
		&wire.SetDeliveryPolicy{}, // nil slice encodes as an empty array
	}
	for _, v := range values {
		b := mustMarshal(t, v)
		if err := wire.CheckDeterministic(b); err != nil {
			t.Errorf("Marshal(%#v) = %x: %v", v, b, err)
		}
	}
	if b := mustMarshal(t, &wire.SetDeliveryPolicy{}); !bytes.Equal(b, unhex(t, "a3 00 00 01 80 02 f4")) {
		t.Errorf("nil slice: %x", b)
	}
}

// Unmarshal reports the checker's code, and decoding problems as malformed.
func TestUnmarshal(t *testing.T) {
	var m wire.Mailbox
	wantCode(t, wire.Unmarshal(unhex(t, "a2 01 63 614062 02 1800"), &m), wire.CodeNoncanonical)
	wantCode(t, wire.Unmarshal(unhex(t, "a2 01 63 614062 02 01 00"), &m), wire.CodeMalformed) // trailing
	wantCode(t, wire.Unmarshal(unhex(t, "a2 01 43 614062 02 01"), &m), wire.CodeMalformed)    // bstr address
	wantCode(t, wire.Unmarshal(unhex(t, "a2 01 63 614062 02 20"), &m), wire.CodeMalformed)    // negative device
	wantCode(t, wire.Unmarshal(unhex(t, "a2 01 63 614062 02 1b0000000100000000"), &m), wire.CodeMalformed)
	wantCode(t, wire.Unmarshal(unhex(t, "a1 01 63 614062"), &m), wire.CodeMalformed)       // key 2 missing
	wantCode(t, wire.Unmarshal(unhex(t, "a2 01 63 614062 02 f6"), &m), wire.CodeMalformed) // null device
	wantCode(t, wire.Unmarshal(unhex(t, "a2 01 f6 02 01"), &m), wire.CodeMalformed)        // null address
	wantCode(t, wire.Unmarshal(unhex(t, "83 01 02 03"), &m), wire.CodeMalformed)           // not a map
	wantCode(t, wire.Unmarshal(unhex(t, "a2 01 63 614062 02 01"), nil), wire.CodeMalformed)
	// Unknown keys are ignored, even holding null; text keys are unknown keys.
	if err := wire.Unmarshal(unhex(t, "a4 01 63 614062 02 01 03 f6 6132 f6"), &m); err != nil || m != (wire.Mailbox{Address: "a@b", Device: 1}) {
		t.Fatalf("unknown keys: %+v, %v", m, err)
	}
	// Into an interface anything well formed goes, null included.
	var v any
	if err := wire.Unmarshal(unhex(t, "82 f6 a0"), &v); err != nil {
		t.Fatal(err)
	}
}
