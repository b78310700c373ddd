package cddl

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"

	"github.com/fxamacker/cbor/v2"
)

// ErrNonUintKey is wrapped by the errors of maps that hold a key that is
// not an unsigned integer and that no entry of the rule allows.
var ErrNonUintKey = errors.New("map key that is not an unsigned integer")

// Error is a validation failure.
type Error struct {
	Path       string // where in the item, for example "register/1/[3]/2"
	Msg        string
	nonUintKey bool
	depth      int // how many entries matched before the failure
}

func (e *Error) Error() string { return e.Path + ": " + e.Msg }

// Unwrap returns ErrNonUintKey when the failure is such a key.
func (e *Error) Unwrap() error {
	if e.nonUintKey {
		return ErrNonUintKey
	}
	return nil
}

var decMode, _ = cbor.DecOptions{
	DefaultMapType:   reflect.TypeFor[map[any]any](),
	IntDec:           cbor.IntDecConvertNone,
	MaxArrayElements: 1 << 20,
	MaxMapPairs:      1 << 20,
}.DecMode()

// Validate decodes one CBOR item and checks it against the rule.
func (s *Spec) Validate(rule string, item []byte) error {
	var v any
	if err := decMode.Unmarshal(item, &v); err != nil {
		return &Error{Path: rule, Msg: "not a CBOR item: " + err.Error()}
	}
	return s.ValidateValue(rule, v)
}

// ValidateValue checks a decoded item (uint64, int64, []byte, string,
// bool, nil, []any, map[any]any) against the rule.
func (s *Spec) ValidateValue(rule string, v any) error {
	r := s.Rules[rule]
	if r == nil || r.Type == nil {
		return fmt.Errorf("cddl: no type rule %s", rule)
	}
	if e := s.matchType(r.Type, v, rule); e != nil {
		return e
	}
	return nil
}

func (s *Spec) matchType(t *Type, v any, path string) *Error {
	var best *Error
	for _, a := range t.Alts {
		e := s.matchType1(a, v, path)
		if e == nil {
			return nil
		}
		if best == nil || e.depth > best.depth {
			best = e
		}
	}
	if len(t.Alts) > 1 && best.depth == 0 {
		return &Error{Path: path, Msg: "matches no alternative (" + best.Msg + ")", nonUintKey: best.nonUintKey}
	}
	return best
}

func (s *Spec) matchType1(t *Type1, v any, path string) *Error {
	if e := s.matchType2(t.Base, v, path); e != nil {
		return e
	}
	switch t.Control {
	case ".size":
		var n uint64
		switch x := v.(type) {
		case []byte:
			n = uint64(len(x))
		case string:
			n = uint64(len(x))
		default:
			return &Error{Path: path, Msg: ".size on a value that is no string"}
		}
		lo, hi, ok := bounds(t.Arg)
		if !ok {
			return &Error{Path: path, Msg: ".size argument not a number or range"}
		}
		if n < lo || n > hi {
			return &Error{Path: path, Msg: fmt.Sprintf("size %d, want %s", n, span(lo, hi))}
		}
	case ".ne":
		lo, hi, ok := bounds(t.Arg)
		if !ok || lo != hi {
			return &Error{Path: path, Msg: ".ne argument not a number"}
		}
		if x, isUint := v.(uint64); isUint && x == lo {
			return &Error{Path: path, Msg: fmt.Sprintf("value %d excluded", x)}
		}
	}
	return nil
}

func span(lo, hi uint64) string {
	if lo == hi {
		return fmt.Sprint(lo)
	}
	return fmt.Sprintf("%d..%d", lo, hi)
}

// bounds returns the range a .size or .ne argument stands for.
func bounds(t *Type2) (lo, hi uint64, ok bool) {
	for t != nil && t.Kind == KindParen && len(t.Inner.Alts) == 1 && t.Inner.Alts[0].Control == "" {
		t = t.Inner.Alts[0].Base
	}
	if t == nil || (t.Kind != KindUint && t.Kind != KindRange) {
		return 0, 0, false
	}
	return t.Lo, t.Hi, true
}

func typeName(v any) string {
	switch v.(type) {
	case uint64:
		return "uint"
	case int64:
		return "nint"
	case []byte:
		return "bstr"
	case string:
		return "tstr"
	case bool:
		return "bool"
	case nil:
		return "null"
	case []any:
		return "array"
	case map[any]any:
		return "map"
	}
	return fmt.Sprintf("%T", v)
}

func mismatch(path, want string, v any) *Error {
	return &Error{Path: path, Msg: fmt.Sprintf("%s, want %s", typeName(v), want)}
}

func (s *Spec) matchType2(t *Type2, v any, path string) *Error {
	switch t.Kind {
	case KindParen:
		return s.matchType(t.Inner, v, path)
	case KindUint, KindRange:
		x, ok := v.(uint64)
		if !ok {
			return mismatch(path, span(t.Lo, t.Hi), v)
		}
		if x < t.Lo || x > t.Hi {
			return &Error{Path: path, Msg: fmt.Sprintf("%d, want %s", x, span(t.Lo, t.Hi))}
		}
		return nil
	case KindText:
		if x, ok := v.(string); !ok || x != t.Name {
			return mismatch(path, fmt.Sprintf("%q", t.Name), v)
		}
		return nil
	case KindArray:
		a, ok := v.([]any)
		if !ok {
			return mismatch(path, "array", v)
		}
		e := t.Entries[0]
		if n := uint64(len(a)); n < e.Min || n > e.Max {
			return &Error{Path: path, Msg: fmt.Sprintf("%d elements, want %s", n, occ(e))}
		}
		for i, x := range a {
			if err := s.matchType(e.Value, x, fmt.Sprintf("%s/[%d]", path, i)); err != nil {
				return err
			}
		}
		return nil
	case KindMap:
		m, ok := v.(map[any]any)
		if !ok {
			return mismatch(path, "map", v)
		}
		return s.matchMap(s.expand(t.Entries), m, path)
	}
	// A name.
	switch t.Name {
	case "any":
		return nil
	case "uint":
		if _, ok := v.(uint64); ok {
			return nil
		}
	case "nint":
		if _, ok := v.(int64); ok {
			return nil
		}
	case "int":
		switch v.(type) {
		case uint64, int64:
			return nil
		}
	case "bstr", "bytes":
		if _, ok := v.([]byte); ok {
			return nil
		}
	case "tstr", "text":
		if _, ok := v.(string); ok {
			return nil
		}
	case "bool":
		if _, ok := v.(bool); ok {
			return nil
		}
	case "true", "false":
		if b, ok := v.(bool); ok && b == (t.Name == "true") {
			return nil
		}
	case "nil", "null":
		if v == nil {
			return nil
		}
	default:
		r := s.Rules[t.Name]
		if r == nil || r.Type == nil {
			return &Error{Path: path, Msg: t.Name + " is not a type rule"}
		}
		return s.matchType(r.Type, v, path)
	}
	return mismatch(path, t.Name, v)
}

func occ(e *Entry) string {
	if e.Max == math.MaxUint64 {
		return fmt.Sprintf("at least %d", e.Min)
	}
	return span(e.Min, e.Max)
}

// expand inserts the entries of referenced group rules.
func (s *Spec) expand(es []*Entry) []*Entry {
	var out []*Entry
	for _, e := range es {
		if e.GroupRef != "" {
			out = append(out, s.expand(s.groups[e.GroupRef])...)
			continue
		}
		out = append(out, e)
	}
	return out
}

// Entries returns the entries of a map type with group references
// expanded.
func (s *Spec) Entries(t *Type2) []*Entry { return s.expand(t.Entries) }

func (s *Spec) matchMap(es []*Entry, m map[any]any, path string) *Error {
	used := map[uint64]bool{}
	depth := 0
	for _, e := range es {
		if !e.HasKey {
			continue
		}
		v, ok := m[e.Key]
		if !ok {
			if !e.Optional() {
				return &Error{Path: path, Msg: fmt.Sprintf("required key %d missing", e.Key), depth: depth}
			}
			continue
		}
		used[e.Key] = true
		if err := s.matchType(e.Value, v, fmt.Sprintf("%s/%d", path, e.Key)); err != nil {
			err.depth += depth
			return err
		}
		depth++
	}
	// The other keys, in a fixed order, against the keytype => type entries.
	var rest []any
	for k := range m {
		if u, ok := k.(uint64); ok && used[u] {
			continue
		}
		rest = append(rest, k)
	}
	slices.SortFunc(rest, func(a, b any) int { return strings.Compare(fmt.Sprintf("%T%020v", a, a), fmt.Sprintf("%T%020v", b, b)) })
	counts := make([]uint64, len(es))
	for _, k := range rest {
		matched := false
		for i, e := range es {
			if e.KeyType == nil || counts[i] == e.Max {
				continue
			}
			if s.matchType(e.KeyType, k, path) != nil || s.matchType(e.Value, m[k], fmt.Sprintf("%s/%v", path, k)) != nil {
				continue
			}
			counts[i]++
			matched = true
			break
		}
		if !matched {
			_, isUint := k.(uint64)
			return &Error{Path: path, Msg: fmt.Sprintf("key %s not allowed", keyString(k)), nonUintKey: !isUint, depth: depth}
		}
	}
	for i, e := range es {
		if e.KeyType != nil && counts[i] < e.Min {
			return &Error{Path: path, Msg: fmt.Sprintf("%d entries of a key type, want %s", counts[i], occ(e)), depth: depth}
		}
	}
	return nil
}

func keyString(k any) string {
	if s, ok := k.(string); ok {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%v (%s)", k, typeName(k))
}
