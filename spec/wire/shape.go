package wire

import (
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
)

// The CBOR decoder fills a struct from whatever keys it finds: it leaves a
// field whose key is missing at its zero value, and it treats null as "no
// value" for every Go type. The CDDL is stricter (spec/01-conventions.md
// sections 1.6 and 1.8): a required key must be present, and null appears
// in no defined field. checkShape enforces both on an item that
// CheckDeterministic has accepted, by walking it alongside the target Go
// type. A key is required when its struct field has no omitempty option.
// Keys the Go type does not define are skipped: null is allowed there.

// shape is what checkShape needs to know about a Go type.
type shape struct {
	kind     shapeKind
	fields   []shapeField // structShape: by key
	required uint64       // structShape: bit i set when fields[i] is required
	elem     *shape       // arrayShape
}

type shapeKind uint8

const (
	leafShape   shapeKind = iota // scalar, string, byte string
	anyShape                     // interface or map: anything, null included
	structShape                  // a map with integer keys
	arrayShape                   // a slice other than []byte
)

type shapeField struct {
	key   uint64
	shape *shape
}

var shapes sync.Map // reflect.Type → *shape

func shapeOf(t reflect.Type) *shape {
	if s, ok := shapes.Load(t); ok {
		return s.(*shape)
	}
	s := buildShape(t, make(map[reflect.Type]*shape))
	shapes.Store(t, s)
	return s
}

func buildShape(t reflect.Type, seen map[reflect.Type]*shape) *shape {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if s, ok := seen[t]; ok {
		return s
	}
	s := &shape{}
	seen[t] = s
	switch t.Kind() {
	case reflect.Interface, reflect.Map:
		s.kind = anyShape
	case reflect.Slice, reflect.Array:
		if t.Elem().Kind() != reflect.Uint8 {
			s.kind = arrayShape
			s.elem = buildShape(t.Elem(), seen)
		}
	case reflect.Struct:
		s.kind = structShape
		var req []bool
		addFields(s, &req, t, seen)
		idx := make([]int, len(s.fields))
		for i := range idx {
			idx[i] = i
		}
		sort.SliceStable(idx, func(a, b int) bool { return s.fields[idx[a]].key < s.fields[idx[b]].key })
		sorted := make([]shapeField, len(s.fields))
		for i, j := range idx {
			sorted[i] = s.fields[j]
			if req[j] {
				s.required |= 1 << i
			}
		}
		s.fields = sorted
	}
	return s
}

// addFields adds the integer-keyed fields of struct type t, and of the
// structs it embeds, to s.
func addFields(s *shape, req *[]bool, t reflect.Type, seen map[reflect.Type]*shape) {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		tag, hasTag := f.Tag.Lookup("cbor")
		if f.Anonymous && !hasTag {
			ft := f.Type
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				addFields(s, req, ft, seen)
			}
			continue
		}
		if !f.IsExported() || !hasTag {
			continue
		}
		opts := strings.Split(tag, ",")
		key, err := strconv.ParseUint(opts[0], 10, 64)
		if err != nil || !hasOption(opts[1:], "keyasint") {
			continue
		}
		if len(s.fields) == 64 {
			panic("wire: struct with more than 64 keys: " + t.String())
		}
		s.fields = append(s.fields, shapeField{key: key, shape: buildShape(f.Type, seen)})
		*req = append(*req, !hasOption(opts[1:], "omitempty") && !hasOption(opts[1:], "omitzero"))
	}
}

func hasOption(opts []string, o string) bool {
	for _, x := range opts {
		if x == o {
			return true
		}
	}
	return false
}

// checkShape checks b, an item accepted by CheckDeterministic, against the
// Go type of v. Type mismatches it does not look for are left to the
// decoder.
func checkShape(b []byte, v any) error {
	t := reflect.TypeOf(v)
	if t == nil || len(b) == 0 {
		return nil
	}
	s := shapeOf(t)
	if s.kind != structShape && s.kind != arrayShape {
		return nil
	}
	w := shapeWalker{b: b}
	return w.value(s)
}

type shapeWalker struct {
	b   []byte
	pos int
}

// head returns the major type and argument of the item at w.pos and the
// position after its head. The item is known to be well formed.
func (w *shapeWalker) head() (major byte, arg uint64, next int) {
	ib := w.b[w.pos]
	major, ai := ib>>5, ib&0x1f
	p := w.pos + 1
	switch {
	case ai < 24:
		return major, uint64(ai), p
	case ai == 24:
		return major, uint64(w.b[p]), p + 1
	case ai == 25:
		return major, uint64(w.b[p])<<8 | uint64(w.b[p+1]), p + 2
	case ai == 26:
		var a uint64
		for _, c := range w.b[p : p+4] {
			a = a<<8 | uint64(c)
		}
		return major, a, p + 4
	default: // 27
		var a uint64
		for _, c := range w.b[p : p+8] {
			a = a<<8 | uint64(c)
		}
		return major, a, p + 8
	}
}

// skip moves past one item.
func (w *shapeWalker) skip() {
	major, arg, next := w.head()
	w.pos = next
	switch major {
	case 2, 3:
		w.pos += int(arg)
	case 4:
		for i := uint64(0); i < arg; i++ {
			w.skip()
		}
	case 5:
		for i := uint64(0); i < 2*arg; i++ {
			w.skip()
		}
	case 6:
		w.skip()
	}
}

// value checks the item at w.pos against s and moves past it.
func (w *shapeWalker) value(s *shape) error {
	if w.b[w.pos] == 0xf6 && s.kind != anyShape {
		return Errorf(CodeMalformed, "null in a defined field")
	}
	major, arg, next := w.head()
	switch {
	case s.kind == structShape && major == 5:
		w.pos = next
		var seen uint64
		for i := uint64(0); i < arg; i++ {
			km, key, _ := w.head()
			w.skip()
			j := -1
			if km == 0 {
				for k := range s.fields {
					if s.fields[k].key == key {
						j = k
						break
					}
				}
			}
			if j < 0 {
				w.skip()
				continue
			}
			seen |= 1 << j
			if err := w.value(s.fields[j].shape); err != nil {
				return err
			}
		}
		if missing := s.required &^ seen; missing != 0 {
			for k := range s.fields {
				if missing&(1<<k) != 0 {
					return Errorf(CodeMalformed, "required key %d missing", s.fields[k].key)
				}
			}
		}
		return nil
	case s.kind == arrayShape && major == 4:
		w.pos = next
		for i := uint64(0); i < arg; i++ {
			if err := w.value(s.elem); err != nil {
				return err
			}
		}
		return nil
	}
	// A scalar, or a type mismatch that the decoder reports.
	w.skip()
	return nil
}
