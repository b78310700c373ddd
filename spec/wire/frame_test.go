package wire_test

import (
	"bytes"
	"errors"
	"io"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

func TestVarintShortestForm(t *testing.T) {
	tests := []struct {
		v   uint64
		enc string
	}{
		{0, "00"},
		{1, "01"},
		{63, "3f"},
		{64, "4040"},
		{16383, "7fff"},
		{16384, "80004000"},
		{wire.MaxFrame, "80100000"},
		{1<<30 - 1, "bfffffff"},
		{1 << 30, "c000000040000000"},
		{1<<62 - 1, "ffffffffffffffff"},
	}
	for _, tt := range tests {
		got := wire.AppendVarint([]byte{0xee}, tt.v)
		if want := append([]byte{0xee}, unhex(t, tt.enc)...); !bytes.Equal(got, want) {
			t.Errorf("AppendVarint(%d) = %x, want %x", tt.v, got, want)
		}
		v, n, err := wire.ParseVarint(append(unhex(t, tt.enc), 0xaa, 0xbb))
		if err != nil || v != tt.v || n != len(tt.enc)/2 {
			t.Errorf("ParseVarint(%s) = %d, %d, %v; want %d, %d", tt.enc, v, n, err, tt.v, len(tt.enc)/2)
		}
	}
}

func TestParseVarintRejects(t *testing.T) {
	tests := []struct {
		name string
		enc  string
		want wire.Code
	}{
		{"empty", "", wire.CodeMalformed},
		{"truncated 2-byte", "40", wire.CodeMalformed},
		{"truncated 4-byte", "800000", wire.CodeMalformed},
		{"truncated 8-byte", "c0000000000000", wire.CodeMalformed},
		{"0 in 2 bytes", "4000", wire.CodeNoncanonical},
		{"63 in 2 bytes", "403f", wire.CodeNoncanonical},
		{"16383 in 4 bytes", "80003fff", wire.CodeNoncanonical},
		{"1 in 4 bytes", "80000001", wire.CodeNoncanonical},
		{"2^30-1 in 8 bytes", "c00000003fffffff", wire.CodeNoncanonical},
		{"0 in 8 bytes", "c000000000000000", wire.CodeNoncanonical},
	}
	for _, tt := range tests {
		_, _, err := wire.ParseVarint(unhex(t, tt.enc))
		t.Run(tt.name, func(t *testing.T) { wantCode(t, err, tt.want) })
	}
}

// headerOnlyReader serves a frame header and fails the test if ReadFrame
// asks for a single byte more.
type headerOnlyReader struct {
	t   *testing.T
	hdr []byte
}

func (r *headerOnlyReader) Read(p []byte) (int, error) {
	if len(r.hdr) == 0 {
		r.t.Errorf("ReadFrame read past the %s header", "frame")
		return 0, errors.New("read past the header")
	}
	n := copy(p, r.hdr)
	r.hdr = r.hdr[n:]
	return n, nil
}

func TestReadFrame(t *testing.T) {
	big := repeat(0x00, 64)
	tests := []struct {
		name    string
		in      []byte
		max     int
		payload []byte
		err     error
	}{
		{"one-byte length", unhex(t, "01a0"), 0, unhex(t, "a0"), nil},
		{"two-byte length", append(unhex(t, "4040"), big...), 0, big, nil},
		{"trailing bytes stay in the reader", unhex(t, "01a0 01a0"), 0, unhex(t, "a0"), nil},
		{"clean end of stream", nil, 0, nil, wire.ErrEndOfStream},
		{"empty frame", unhex(t, "00"), 0, nil, wire.ErrMalformed},
		{"empty frame, long form", unhex(t, "4000"), 0, nil, wire.ErrMalformed},
		{"empty frame, 8-byte form", unhex(t, "c000000000000000"), 0, nil, wire.ErrMalformed},
		{"non-shortest length", unhex(t, "4001a0"), 0, nil, wire.ErrNoncanonical},
		{"non-shortest 4-byte length", unhex(t, "80000001a0"), 0, nil, wire.ErrNoncanonical},
		{"header cut short", unhex(t, "40"), 0, nil, wire.ErrMalformed},
		{"8-byte header cut short", unhex(t, "c0000000"), 0, nil, wire.ErrMalformed},
		{"payload cut short", unhex(t, "05a1"), 0, nil, wire.ErrMalformed},
		{"payload missing", unhex(t, "05"), 0, nil, wire.ErrMalformed},
		{"over MaxFrame", wire.AppendVarint(nil, wire.MaxFrame+1), 0, nil, wire.ErrFrameTooLarge},
		{"over MaxFrame, 8-byte form", unhex(t, "c000000000100001"), 0, nil, wire.ErrFrameTooLarge},
		{"largest 8-byte value", unhex(t, "ffffffffffffffff"), 0, nil, wire.ErrFrameTooLarge},
		{"over the caller's max", unhex(t, "0b"), 10, nil, wire.ErrFrameTooLarge},
		{"at the caller's max", append(unhex(t, "0a"), repeat(0x00, 10)...), 10, repeat(0x00, 10), nil},
		{"max above MaxFrame is MaxFrame", wire.AppendVarint(nil, wire.MaxFrame+1), 2 * wire.MaxFrame, nil, wire.ErrFrameTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := wire.ReadFrame(bytes.NewReader(tt.in), tt.max)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("ReadFrame(%x) = %x, %v; want %v", tt.in, got, err, tt.err)
				}
				return
			}
			if err != nil || !bytes.Equal(got, tt.payload) {
				t.Fatalf("ReadFrame(%x) = %x, %v; want %x", tt.in, got, err, tt.payload)
			}
		})
	}
}

func TestReadFrameMaxFrameExactly(t *testing.T) {
	p := repeat(0x00, wire.MaxFrame)
	got, err := wire.ReadFrame(bytes.NewReader(wire.AppendFrame(nil, p)), wire.MaxFrame)
	if err != nil || len(got) != wire.MaxFrame {
		t.Fatalf("frame of MaxFrame bytes: len %d, %v", len(got), err)
	}
}

// A too-large length is refused from the header alone, in any form.
func TestReadFrameRejectsLengthBeforePayload(t *testing.T) {
	for _, hdr := range []string{"80100001", "bfffffff", "c000000000100001", "c000000040000000", "ffffffffffffffff"} {
		r := &headerOnlyReader{t: t, hdr: unhex(t, hdr)}
		_, err := wire.ReadFrame(r, wire.MaxFrame)
		wantCode(t, err, wire.CodeFrameTooLarge)
	}
	r := &headerOnlyReader{t: t, hdr: unhex(t, "41")} // 0x41.. needs a second byte
	r.hdr = append(r.hdr, 0x00)                       // 256
	if _, err := wire.ReadFrame(r, 255); !errors.Is(err, wire.ErrFrameTooLarge) {
		t.Errorf("256 bytes over a max of 255: %v", err)
	}
}

type failingReader struct{ err error }

func (r failingReader) Read([]byte) (int, error) { return 0, r.err }

func TestReadFramePassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	_, err := wire.ReadFrame(failingReader{boom}, 0)
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want it to wrap %v", err, boom)
	}
	var e *wire.Error
	if errors.As(err, &e) {
		t.Fatalf("transport error %v reported as protocol error", err)
	}
	// After the first byte as well.
	_, err = wire.ReadFrame(io.MultiReader(bytes.NewReader([]byte{0x05, 0xa0}), failingReader{boom}), 0)
	if !errors.Is(err, boom) {
		t.Fatalf("got %v, want it to wrap %v", err, boom)
	}
}

func TestFrameSequence(t *testing.T) {
	var stream []byte
	payloads := [][]byte{{0xa0}, repeat(0x41, 100), repeat(0x42, 20000)}
	for _, p := range payloads {
		stream = wire.AppendFrame(stream, p)
	}
	r := bytes.NewReader(stream)
	for i, want := range payloads {
		got, err := wire.ReadFrame(r, 0)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %d bytes, %v", i, len(got), err)
		}
	}
	if _, err := wire.ReadFrame(r, 0); err != wire.ErrEndOfStream {
		t.Fatalf("after the last frame: %v, want ErrEndOfStream", err)
	}
}

func TestEncodeFrame(t *testing.T) {
	b, err := wire.EncodeFrame(map[uint64]uint64{0: 3})
	if err != nil || !bytes.Equal(b, unhex(t, "03a10003")) {
		t.Fatalf("EncodeFrame = %x, %v", b, err)
	}
	// A payload over MaxFrame is refused by the encoder too.
	_, err = wire.EncodeFrame(make([]byte, wire.MaxFrame))
	wantCode(t, err, wire.CodeFrameTooLarge)
	if _, err := wire.EncodeFrame(make(chan int)); err == nil {
		t.Fatal("EncodeFrame of a channel succeeded")
	}
}
