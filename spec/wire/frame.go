package wire

import (
	"errors"
	"fmt"
	"io"
	"slices"
)

// AppendVarint appends v as a QUIC variable-length integer (RFC 9000
// section 16) in its shortest form. v must be below 2^62.
func AppendVarint(b []byte, v uint64) []byte {
	switch {
	case v < 1<<6:
		return append(b, byte(v))
	case v < 1<<14:
		return append(b, byte(v>>8)|0x40, byte(v))
	case v < 1<<30:
		return append(b, byte(v>>24)|0x80, byte(v>>16), byte(v>>8), byte(v))
	default:
		return append(b, byte(v>>56)|0xc0, byte(v>>48), byte(v>>40), byte(v>>32),
			byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
	}
}

// ParseVarint decodes a QUIC variable-length integer at the start of b and
// returns it with the number of bytes it used. It fails with CodeMalformed
// when b is too short and CodeNoncanonical when the encoding is not the
// shortest.
func ParseVarint(b []byte) (uint64, int, error) {
	if len(b) == 0 {
		return 0, 0, Errorf(CodeMalformed, "truncated varint")
	}
	n := 1 << (b[0] >> 6)
	if len(b) < n {
		return 0, 0, Errorf(CodeMalformed, "truncated varint")
	}
	v := varintValue(b[:n])
	if n > 1 && v < 1<<(8*(n/2)-2) {
		return 0, 0, Errorf(CodeNoncanonical, "frame length %d not in shortest form", v)
	}
	return v, n, nil
}

// varintValue returns the value of the complete varint b, whatever its form.
func varintValue(b []byte) uint64 {
	v := uint64(b[0] & 0x3f)
	for _, c := range b[1:] {
		v = v<<8 | uint64(c)
	}
	return v
}

// AppendFrame appends a frame holding payload to b.
func AppendFrame(b, payload []byte) []byte {
	b = AppendVarint(b, uint64(len(payload)))
	return append(b, payload...)
}

// EncodeFrame returns the frame of v's deterministic encoding.
func EncodeFrame(v any) ([]byte, error) {
	p, err := Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(p) > MaxFrame {
		return nil, Errorf(CodeFrameTooLarge, "frame of %d bytes, limit %d", len(p), MaxFrame)
	}
	return AppendFrame(make([]byte, 0, len(p)+8), p), nil
}

// ErrEndOfStream is returned by ReadFrame when the stream ended cleanly
// before the first byte of a frame.
var ErrEndOfStream = errors.New("wire: end of stream")

// ReadFrame reads one frame from r and returns its payload. The length is
// checked against max (at most MaxFrame) before any payload byte is read.
// A clean end of stream before the frame is ErrEndOfStream; a frame cut
// short is CodeMalformed; other read errors are returned wrapped.
func ReadFrame(r io.Reader, max int) ([]byte, error) {
	length, err := readFrameLength(r, max)
	if err != nil {
		return nil, err
	}
	return readPayload(r, length)
}

// readFrameLength reads and checks the length of a frame (spec/03-framing.md
// section 3.1), within max (at most MaxFrame).
func readFrameLength(r io.Reader, max int) (int, error) {
	if max <= 0 || max > MaxFrame {
		max = MaxFrame
	}
	var hdr [8]byte
	if _, err := io.ReadFull(r, hdr[:1]); err != nil {
		if errors.Is(err, io.EOF) {
			return 0, ErrEndOfStream
		}
		return 0, fmt.Errorf("wire: read frame: %w", err)
	}
	n := 1 << (hdr[0] >> 6)
	if n > 1 {
		if _, err := io.ReadFull(r, hdr[1:n]); err != nil {
			return 0, readErr(err)
		}
	}
	// The value is checked before the form (spec/03-framing.md section
	// 3.1): a long form of a too-large length is frame_too_large, and a
	// long form of 0 is malformed.
	length := varintValue(hdr[:n])
	if length == 0 {
		return 0, Errorf(CodeMalformed, "empty frame")
	}
	if length > uint64(max) {
		return 0, Errorf(CodeFrameTooLarge, "frame of %d bytes, limit %d", length, max)
	}
	if _, _, err := ParseVarint(hdr[:n]); err != nil {
		return 0, err
	}
	return int(length), nil
}

// readPayload reads the want bytes of a frame's payload.
func readPayload(r io.Reader, want int) ([]byte, error) {
	// Grow the buffer as bytes arrive rather than trusting the announced
	// length: a peer that announces 1 MiB and sends 4 bytes costs at most
	// firstReadBuf bytes.
	p := make([]byte, 0, min(want, firstReadBuf))
	for len(p) < want {
		if len(p) == cap(p) {
			p = slices.Grow(p, min(want-len(p), len(p)))
		}
		n, err := r.Read(p[len(p):min(cap(p), want)])
		p = p[:len(p)+n]
		if err != nil {
			if len(p) == want && errors.Is(err, io.EOF) {
				break
			}
			return nil, readErr(err)
		}
	}
	return p, nil
}

// firstReadBuf bounds the buffer ReadFrame allocates before the payload's
// bytes arrive; a longer payload's buffer doubles as it fills.
const firstReadBuf = 16 << 10

func readErr(err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return Errorf(CodeMalformed, "frame cut short")
	}
	return fmt.Errorf("wire: read frame: %w", err)
}
