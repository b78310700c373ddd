package mls

import (
	"errors"
	"fmt"
)

// MaxVectorItems bounds the number of elements a Reader accepts in any one
// vector of structures or integers, on top of the byte limit of the vector.
const MaxVectorItems = 1 << 16

// ErrInvalidValue reports an enumerated value or presence flag that RFC 9420
// does not define, or a structure that violates a syntactic rule.
var ErrInvalidValue = errors.New("mls: invalid value")

// fail records err as the Writer's first error.
func (w *Writer) fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// invalid returns an ErrInvalidValue wrapping a description.
func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidValue, fmt.Sprintf(format, args...))
}

// dec is a sticky-error view of a Reader used by the Unmarshal methods:
// after the first error every read is a no-op returning a zero value.
type dec struct {
	r   *Reader
	err error
}

func (d *dec) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *dec) u8() uint8 {
	if d.err != nil {
		return 0
	}
	v, err := d.r.Uint8()
	d.fail(err)
	return v
}

func (d *dec) u16() uint16 {
	if d.err != nil {
		return 0
	}
	v, err := d.r.Uint16()
	d.fail(err)
	return v
}

func (d *dec) u32() uint32 {
	if d.err != nil {
		return 0
	}
	v, err := d.r.Uint32()
	d.fail(err)
	return v
}

func (d *dec) u64() uint64 {
	if d.err != nil {
		return 0
	}
	v, err := d.r.Uint64()
	d.fail(err)
	return v
}

func (d *dec) opaque() []byte {
	if d.err != nil {
		return nil
	}
	v, err := d.r.Opaque()
	d.fail(err)
	return v
}

// do runs a nested Unmarshal on the same Reader.
func (d *dec) do(f func(*Reader) error) {
	if d.err != nil {
		return
	}
	d.fail(f(d.r))
}

// present reads the presence octet of an optional<T>, which must be 0 or 1.
func (d *dec) present() bool {
	v := d.u8()
	if d.err == nil && v > 1 {
		d.fail(invalid("optional presence octet %d", v))
	}
	return v == 1
}

// vec reads a variable-length vector and calls elem until its content is
// consumed, enforcing MaxVectorItems.
func (d *dec) vec(elem func(*Reader) error) {
	if d.err != nil {
		return
	}
	sub, err := d.r.Vector()
	if err != nil {
		d.fail(err)
		return
	}
	for n := 0; sub.Len() > 0; n++ {
		if n >= MaxVectorItems {
			d.fail(fmt.Errorf("%w: more than %d items", ErrTooLong, MaxVectorItems))
			return
		}
		if err := elem(sub); err != nil {
			d.fail(err)
			return
		}
	}
}

// unmarshaler is a pointer to a wire structure.
type unmarshaler[T any] interface {
	*T
	Unmarshal(*Reader) error
}

// marshaler is a pointer to a wire structure.
type marshaler[T any] interface {
	*T
	Marshal(*Writer)
}

// readList decodes a vector of structures T.
func readList[T any, PT unmarshaler[T]](d *dec) []T {
	var out []T
	d.vec(func(r *Reader) error {
		var v T
		if err := PT(&v).Unmarshal(r); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out
}

// writeList encodes a vector of structures T.
func writeList[T any, PT marshaler[T]](w *Writer, list []T) {
	w.Vector(func(w *Writer) {
		for i := range list {
			PT(&list[i]).Marshal(w)
		}
	})
}

// readU16List decodes a vector of uint16.
func readU16List(d *dec) []uint16 {
	var out []uint16
	d.vec(func(r *Reader) error {
		v, err := r.Uint16()
		out = append(out, v)
		return err
	})
	return out
}

func writeU16List(w *Writer, list []uint16) {
	w.Vector(func(w *Writer) {
		for _, v := range list {
			w.Uint16(v)
		}
	})
}

// readU32List decodes a vector of uint32.
func readU32List(d *dec) []uint32 {
	var out []uint32
	d.vec(func(r *Reader) error {
		v, err := r.Uint32()
		out = append(out, v)
		return err
	})
	return out
}

func writeU32List(w *Writer, list []uint32) {
	w.Vector(func(w *Writer) {
		for _, v := range list {
			w.Uint32(v)
		}
	})
}

// readOpaqueList decodes a vector of opaque<V> values.
func readOpaqueList(d *dec) [][]byte {
	var out [][]byte
	d.vec(func(r *Reader) error {
		v, err := r.Opaque()
		out = append(out, v)
		return err
	})
	return out
}

func writeOpaqueList(w *Writer, list [][]byte) {
	w.Vector(func(w *Writer) {
		for _, v := range list {
			w.Opaque(v)
		}
	})
}

// unmarshalAll decodes b into v, rejecting trailing bytes.
func unmarshalAll(b []byte, v interface{ Unmarshal(*Reader) error }) error {
	r := NewReader(b)
	if err := v.Unmarshal(r); err != nil {
		return err
	}
	return r.Done()
}

// marshalAll encodes v into a fresh buffer.
func marshalAll(v interface{ Marshal(*Writer) }) ([]byte, error) {
	var w Writer
	v.Marshal(&w)
	return w.Bytes()
}
