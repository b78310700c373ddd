package cddl

import (
	"errors"
	"os"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

const testSpec = `
; a comment
ext = ( * uint => any )
msg = a / b
a = { 0: 1, 1: tstr .size (1..3), ? 2: [1*2 id], * (uint .ne 5) => any }
b = { 0: 1, 5: bstr .size 2, * (uint .ne 1) => any }
id = 0x10..0x20
closed = { 1: bool }
open = { 1: kem, ext }
kem = 0x647a
arr = [* nil]
`

func enc(t *testing.T, v any) []byte {
	t.Helper()
	b, err := cbor.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type m = map[any]any

func TestValidate(t *testing.T) {
	t.Parallel()
	s, err := Parse(testSpec)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, rule string
		item       any
		ok         bool
	}{
		{"first alternative", "msg", m{0: 1, 1: "ab"}, true},
		{"first alternative with an array", "msg", m{0: 1, 1: "ab", 2: []any{16, 32}}, true},
		{"array too long", "msg", m{0: 1, 1: "ab", 2: []any{16, 17, 18}}, false},
		{"array empty", "msg", m{0: 1, 1: "ab", 2: []any{}}, false},
		{"element out of range", "msg", m{0: 1, 1: "ab", 2: []any{33}}, false},
		{"size too large", "msg", m{0: 1, 1: "abcd"}, false},
		{"second alternative", "msg", m{0: 1, 5: []byte{1, 2}}, true},
		{"keys of both alternatives", "msg", m{0: 1, 1: "ab", 5: []byte{1, 2}}, false},
		{"unknown key", "msg", m{0: 1, 1: "ab", 9: nil}, true},
		{"defined key of the wrong type is cut", "msg", m{0: 1, 1: 7}, false},
		{"required key missing", "msg", m{0: 1}, false},
		{"closed map", "closed", m{1: true, 2: 0}, false},
		{"closed map, defined keys only", "closed", m{1: false}, true},
		{"group reference", "open", m{1: 0x647a, 3: "x"}, true},
		{"hexadecimal literal", "open", m{1: 0x20}, false},
		{"nil elements", "arr", []any{nil, nil}, true},
		{"not nil", "arr", []any{0}, false},
	}
	for _, c := range cases {
		err := s.Validate(c.rule, enc(t, c.item))
		if (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

func TestValidateNonUintKey(t *testing.T) {
	t.Parallel()
	s, err := Parse(testSpec)
	if err != nil {
		t.Fatal(err)
	}
	err = s.Validate("open", enc(t, m{1: 0x647a, "x": 1}))
	if !errors.Is(err, ErrNonUintKey) {
		t.Fatalf("text key: %v, want ErrNonUintKey", err)
	}
	if err := s.Validate("open", enc(t, m{1: 0x647a, -1: 1})); !errors.Is(err, ErrNonUintKey) {
		t.Fatalf("negative key: %v, want ErrNonUintKey", err)
	}
	if err := s.Validate("closed", enc(t, m{1: true, 2: 1})); err == nil || errors.Is(err, ErrNonUintKey) {
		t.Fatalf("unsigned key not allowed: %v", err)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		"a = b",                  // undefined name
		"a = uint\na = tstr",     // defined twice
		"a = { uint }",           // map entry without key
		"a = { 1: uint",          // unclosed
		"a = tstr .regexp \"x\"", // control outside the subset
		"a = { x: uint }",        // text key
		"a = [1: uint]",          // keyed array entry
		"a = 3..1",               // empty range
		"= uint",                 // no name
	} {
		if _, err := Parse(src); err == nil {
			t.Errorf("Parse(%q) succeeded", src)
		}
	}
}

// The specification's own file parses.
func TestParseSpec(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../../xchat.cddl")
	if err != nil {
		t.Fatal(err)
	}
	s, err := Parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Order) < 50 {
		t.Fatalf("%d rules", len(s.Order))
	}
}
