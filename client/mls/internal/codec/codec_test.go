package codec

import (
	"bytes"
	"errors"
	"testing"
)

func TestDeserializationVectors(t *testing.T) {
	var cases []struct {
		Header hexBytes `json:"vlbytes_header"`
		Length uint64   `json:"length"`
	}
	loadVectors(t, "deserialization.json", &cases)
	for _, c := range cases {
		got, err := AppendVarint(nil, c.Length)
		if err != nil || !bytes.Equal(got, c.Header) {
			t.Errorf("encode %d = %x, %v; want %x", c.Length, got, err, c.Header)
		}
		r := NewReader(c.Header)
		v, err := r.Varint()
		if err != nil || v != c.Length || r.Len() != 0 {
			t.Errorf("decode %x = %d, %v; want %d", c.Header, v, err, c.Length)
		}
	}
	t.Logf("%d cases", len(cases))
}

func TestVarintRejects(t *testing.T) {
	for _, tc := range []struct {
		in   []byte
		want error
	}{
		{nil, ErrTruncated},
		{[]byte{0x40}, ErrTruncated},
		{[]byte{0x80, 0, 0}, ErrTruncated},
		{[]byte{0xc0, 0, 0, 0, 0, 0, 0, 0}, ErrVarint},
		{[]byte{0x40, 0x3f}, ErrVarint},
		{[]byte{0x80, 0x00, 0x3f, 0xff}, ErrVarint},
	} {
		_, err := NewReader(tc.in).Varint()
		if !errors.Is(err, tc.want) {
			t.Errorf("Varint(%x) error %v, want %v", tc.in, err, tc.want)
		}
	}
	if _, err := AppendVarint(nil, MaxVarint+1); !errors.Is(err, ErrTooLong) {
		t.Errorf("AppendVarint(2^30) error %v", err)
	}
}

func TestRoundTrip(t *testing.T) {
	var w Writer
	w.Uint8(1)
	w.Uint16(0x0203)
	w.Uint32(0x04050607)
	w.Uint64(0x08090a0b0c0d0e0f)
	w.Opaque(bytes.Repeat([]byte{0xaa}, 100))
	w.Vector(func(w *Writer) { w.Uint16(7); w.Opaque([]byte("x")) })
	b, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	r := NewReader(b)
	u8, _ := r.Uint8()
	u16, _ := r.Uint16()
	u32, _ := r.Uint32()
	u64, _ := r.Uint64()
	op, _ := r.Opaque()
	inner, err := r.Vector()
	if err != nil {
		t.Fatal(err)
	}
	in16, _ := inner.Uint16()
	inOp, err := inner.Opaque()
	if err != nil || inner.Done() != nil || r.Done() != nil {
		t.Fatalf("inner decode: %v", err)
	}
	if u8 != 1 || u16 != 0x0203 || u32 != 0x04050607 || u64 != 0x08090a0b0c0d0e0f ||
		len(op) != 100 || in16 != 7 || string(inOp) != "x" {
		t.Fatalf("round trip mismatch")
	}
}

func TestReaderLimit(t *testing.T) {
	b, _ := AppendVarint(nil, 1000)
	b = append(b, make([]byte, 1000)...)
	r := &Reader{buf: b, MaxVector: 999}
	if _, err := r.Opaque(); !errors.Is(err, ErrTooLong) {
		t.Fatalf("Opaque over limit: %v", err)
	}
	r = NewReader(b[:500])
	if _, err := r.Opaque(); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Opaque truncated: %v", err)
	}
}

// FuzzReader feeds arbitrary bytes to the decoder: it must never panic, and
// every vector it accepts must re-encode to the same bytes.
func FuzzReader(f *testing.F) {
	for _, s := range [][]byte{
		{}, {0x00}, {0x3f}, {0x40, 0x40}, {0x80, 0x00, 0x40, 0x00}, {0xc0},
		{0x03, 'a', 'b', 'c', 0x01, 0x00}, {0x40, 0x3f}, {0xbf, 0xff, 0xff, 0xff},
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &Reader{buf: data, MaxVector: 1 << 16}
		var w Writer
		for r.Len() > 0 {
			b, err := r.Opaque()
			if err != nil {
				return
			}
			w.Opaque(b)
		}
		out, err := w.Bytes()
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		if !bytes.Equal(out, data) {
			t.Fatalf("re-encoding %x gave %x", data, out)
		}
		r = NewReader(data)
		_, _ = r.Uint64()
		_, _ = r.Uint16()
		_, _ = r.Vector()
	})
}
