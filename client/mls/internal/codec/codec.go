// Package codec encodes and decodes the TLS presentation language of
// RFC 9420 section 2.1: integers, the variable-length integer, opaque
// vectors, and lists of structures, with bounds on every length a peer
// controls.
package codec

import (
	"errors"
	"fmt"
)

// MaxVarint is the largest value the MLS variable-length integer encoding
// (RFC 9420 section 2.1.2) can carry: 2^30 - 1.
const MaxVarint = 1<<30 - 1

// DefaultMaxVector is the default upper bound, in bytes, on any single
// variable-length vector a Reader accepts. Peers cannot make a Reader
// allocate more than this for one field.
const DefaultMaxVector = 1 << 24

// Errors returned by the codec.
var (
	// ErrTruncated reports that the input ended before a field was complete.
	ErrTruncated = errors.New("mls: truncated input")
	// ErrVarint reports an invalid variable-length integer: the reserved
	// 0b11 prefix or a non-minimal encoding.
	ErrVarint = errors.New("mls: invalid variable-length integer")
	// ErrTooLong reports a vector longer than the permitted limit.
	ErrTooLong = errors.New("mls: vector too long")
	// ErrTrailing reports bytes left over after a complete structure.
	ErrTrailing = errors.New("mls: trailing data")
)

// Writer serialises values in the TLS presentation language as RFC 9420
// uses it. The zero value is ready to use.
type Writer struct {
	Buf []byte
	err error
}

// Bytes returns the encoding written so far and the first error met, if any
// (an over-long vector).
func (w *Writer) Bytes() ([]byte, error) {
	if w.err != nil {
		return nil, w.err
	}
	return w.Buf, nil
}

// Uint8 appends one byte.
func (w *Writer) Uint8(v uint8) { w.Buf = append(w.Buf, v) }

// Uint16 appends a big-endian 16-bit integer.
func (w *Writer) Uint16(v uint16) { w.Buf = append(w.Buf, byte(v>>8), byte(v)) }

// Uint32 appends a big-endian 32-bit integer.
func (w *Writer) Uint32(v uint32) {
	w.Buf = append(w.Buf, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}

// Uint64 appends a big-endian 64-bit integer.
func (w *Writer) Uint64(v uint64) {
	w.Uint32(uint32(v >> 32))
	w.Uint32(uint32(v))
}

// Varint appends v in the shortest MLS variable-length integer form.
// Values above MaxVarint record an error returned by Bytes.
func (w *Writer) Varint(v uint64) {
	b, err := AppendVarint(w.Buf, v)
	if err != nil {
		if w.err == nil {
			w.err = err
		}
		return
	}
	w.Buf = b
}

// Raw appends b with no length prefix.
func (w *Writer) Raw(b []byte) { w.Buf = append(w.Buf, b...) }

// Opaque appends b as a variable-length vector (opaque data<V>).
func (w *Writer) Opaque(b []byte) {
	w.Varint(uint64(len(b)))
	w.Buf = append(w.Buf, b...)
}

// Vector appends a variable-length vector whose content is written by f.
func (w *Writer) Vector(f func(*Writer)) {
	var inner Writer
	f(&inner)
	if inner.err != nil {
		if w.err == nil {
			w.err = inner.err
		}
		return
	}
	w.Opaque(inner.Buf)
}

// AppendVarint appends v to b in the shortest MLS variable-length integer
// form (1, 2 or 4 bytes).
func AppendVarint(b []byte, v uint64) ([]byte, error) {
	switch {
	case v < 1<<6:
		return append(b, byte(v)), nil
	case v < 1<<14:
		return append(b, 0x40|byte(v>>8), byte(v)), nil
	case v <= MaxVarint:
		return append(b, 0x80|byte(v>>24), byte(v>>16), byte(v>>8), byte(v)), nil
	default:
		return b, fmt.Errorf("%w: %d exceeds 2^30-1", ErrTooLong, v)
	}
}

// Reader decodes values in the TLS presentation language as RFC 9420 uses
// it. It never panics on malformed input: every method reports truncated,
// overlong or non-minimal input as an error.
type Reader struct {
	buf []byte
	// MaxVector bounds the length of any one vector; zero means
	// DefaultMaxVector.
	MaxVector int
}

// NewReader returns a Reader over b with the default vector limit.
func NewReader(b []byte) *Reader { return &Reader{buf: b} }

// Len returns the number of unread bytes.
func (r *Reader) Len() int { return len(r.buf) }

// Done returns ErrTrailing if unread bytes remain.
func (r *Reader) Done() error {
	if len(r.buf) != 0 {
		return fmt.Errorf("%w: %d bytes", ErrTrailing, len(r.buf))
	}
	return nil
}

func (r *Reader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.buf) {
		return nil, fmt.Errorf("%w: need %d bytes, have %d", ErrTruncated, n, len(r.buf))
	}
	b := r.buf[:n:n]
	r.buf = r.buf[n:]
	return b, nil
}

// Uint8 reads one byte.
func (r *Reader) Uint8() (uint8, error) {
	b, err := r.take(1)
	if err != nil {
		return 0, err
	}
	return b[0], nil
}

// Uint16 reads a big-endian 16-bit integer.
func (r *Reader) Uint16() (uint16, error) {
	b, err := r.take(2)
	if err != nil {
		return 0, err
	}
	return uint16(b[0])<<8 | uint16(b[1]), nil
}

// Uint32 reads a big-endian 32-bit integer.
func (r *Reader) Uint32() (uint32, error) {
	b, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]), nil
}

// Uint64 reads a big-endian 64-bit integer.
func (r *Reader) Uint64() (uint64, error) {
	hi, err := r.Uint32()
	if err != nil {
		return 0, err
	}
	lo, err := r.Uint32()
	if err != nil {
		return 0, err
	}
	return uint64(hi)<<32 | uint64(lo), nil
}

// Varint reads an MLS variable-length integer, rejecting the reserved
// 0b11 prefix and non-minimal encodings.
func (r *Reader) Varint() (uint64, error) {
	if len(r.buf) == 0 {
		return 0, fmt.Errorf("%w: varint", ErrTruncated)
	}
	n := 1 << (r.buf[0] >> 6)
	if n == 8 {
		return 0, fmt.Errorf("%w: reserved prefix 0b11", ErrVarint)
	}
	b, err := r.take(n)
	if err != nil {
		return 0, err
	}
	v := uint64(b[0] & 0x3f)
	for _, c := range b[1:] {
		v = v<<8 | uint64(c)
	}
	if (n == 2 && v < 1<<6) || (n == 4 && v < 1<<14) {
		return 0, fmt.Errorf("%w: %d encoded in %d bytes", ErrVarint, v, n)
	}
	return v, nil
}

func (r *Reader) limit() int {
	if r.MaxVector > 0 {
		return r.MaxVector
	}
	return DefaultMaxVector
}

// Raw reads exactly n bytes with no length prefix. The result aliases the
// input.
func (r *Reader) Raw(n int) ([]byte, error) { return r.take(n) }

// Opaque reads a variable-length vector (opaque data<V>) and returns its
// content, aliasing the input.
func (r *Reader) Opaque() ([]byte, error) {
	n, err := r.Varint()
	if err != nil {
		return nil, err
	}
	if n > uint64(r.limit()) {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLong, n, r.limit())
	}
	return r.take(int(n))
}

// Vector reads a variable-length vector and returns a Reader over its
// content, with the same limit.
func (r *Reader) Vector() (*Reader, error) {
	b, err := r.Opaque()
	if err != nil {
		return nil, err
	}
	return &Reader{buf: b, MaxVector: r.MaxVector}, nil
}
