package codec

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

// Fail records err as the Writer's first error.
func (w *Writer) Fail(err error) {
	if w.err == nil {
		w.err = err
	}
}

// Invalid returns an ErrInvalidValue wrapping a description.
func Invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidValue, fmt.Sprintf(format, args...))
}

// Dec is a sticky-error view of a Reader used by the Unmarshal methods:
// after the first error every read is a no-op returning a zero value.
type Dec struct {
	R   *Reader
	Err error
}

func (d *Dec) Fail(err error) {
	if d.Err == nil {
		d.Err = err
	}
}

func (d *Dec) U8() uint8 {
	if d.Err != nil {
		return 0
	}
	v, err := d.R.Uint8()
	d.Fail(err)
	return v
}

func (d *Dec) U16() uint16 {
	if d.Err != nil {
		return 0
	}
	v, err := d.R.Uint16()
	d.Fail(err)
	return v
}

func (d *Dec) U32() uint32 {
	if d.Err != nil {
		return 0
	}
	v, err := d.R.Uint32()
	d.Fail(err)
	return v
}

func (d *Dec) U64() uint64 {
	if d.Err != nil {
		return 0
	}
	v, err := d.R.Uint64()
	d.Fail(err)
	return v
}

func (d *Dec) Opaque() []byte {
	if d.Err != nil {
		return nil
	}
	v, err := d.R.Opaque()
	d.Fail(err)
	return v
}

// Do runs a nested Unmarshal on the same Reader.
func (d *Dec) Do(f func(*Reader) error) {
	if d.Err != nil {
		return
	}
	d.Fail(f(d.R))
}

// Present reads the presence octet of an optional<T>, which must be 0 or 1.
func (d *Dec) Present() bool {
	v := d.U8()
	if d.Err == nil && v > 1 {
		d.Fail(Invalid("optional presence octet %d", v))
	}
	return v == 1
}

// Vec reads a variable-length vector and calls elem until its content is
// consumed, enforcing MaxVectorItems.
func (d *Dec) Vec(elem func(*Reader) error) {
	if d.Err != nil {
		return
	}
	sub, err := d.R.Vector()
	if err != nil {
		d.Fail(err)
		return
	}
	for n := 0; sub.Len() > 0; n++ {
		if n >= MaxVectorItems {
			d.Fail(fmt.Errorf("%w: more than %d items", ErrTooLong, MaxVectorItems))
			return
		}
		if err := elem(sub); err != nil {
			d.Fail(err)
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

// ReadList decodes a vector of structures T.
func ReadList[T any, PT unmarshaler[T]](d *Dec) []T {
	var out []T
	d.Vec(func(r *Reader) error {
		var v T
		if err := PT(&v).Unmarshal(r); err != nil {
			return err
		}
		out = append(out, v)
		return nil
	})
	return out
}

// WriteList encodes a vector of structures T.
func WriteList[T any, PT marshaler[T]](w *Writer, list []T) {
	w.Vector(func(w *Writer) {
		for i := range list {
			PT(&list[i]).Marshal(w)
		}
	})
}

// ReadU16List decodes a vector of uint16.
func ReadU16List(d *Dec) []uint16 {
	var out []uint16
	d.Vec(func(r *Reader) error {
		v, err := r.Uint16()
		out = append(out, v)
		return err
	})
	return out
}

func WriteU16List(w *Writer, list []uint16) {
	w.Vector(func(w *Writer) {
		for _, v := range list {
			w.Uint16(v)
		}
	})
}

// ReadU32List decodes a vector of uint32.
func ReadU32List(d *Dec) []uint32 {
	var out []uint32
	d.Vec(func(r *Reader) error {
		v, err := r.Uint32()
		out = append(out, v)
		return err
	})
	return out
}

func WriteU32List(w *Writer, list []uint32) {
	w.Vector(func(w *Writer) {
		for _, v := range list {
			w.Uint32(v)
		}
	})
}

// ReadOpaqueList decodes a vector of opaque<V> values.
func ReadOpaqueList(d *Dec) [][]byte {
	var out [][]byte
	d.Vec(func(r *Reader) error {
		v, err := r.Opaque()
		out = append(out, v)
		return err
	})
	return out
}

func WriteOpaqueList(w *Writer, list [][]byte) {
	w.Vector(func(w *Writer) {
		for _, v := range list {
			w.Opaque(v)
		}
	})
}

// UnmarshalAll decodes b into v, rejecting trailing bytes.
func UnmarshalAll(b []byte, v interface{ Unmarshal(*Reader) error }) error {
	r := NewReader(b)
	if err := v.Unmarshal(r); err != nil {
		return err
	}
	return r.Done()
}

// MarshalAll encodes v into a fresh buffer.
func MarshalAll(v interface{ Marshal(*Writer) }) ([]byte, error) {
	var w Writer
	v.Marshal(&w)
	return w.Bytes()
}
