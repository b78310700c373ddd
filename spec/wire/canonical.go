package wire

import (
	"bytes"
	"encoding/binary"
	"unicode/utf8"
)

// CheckDeterministic reports whether b is exactly one CBOR data item in the
// deterministic encoding of spec/01-conventions.md, within the nesting and
// count limits. Structural problems (truncation, trailing bytes, tags,
// floats, undefined, duplicate map keys, invalid UTF-8, limits) are
// CodeMalformed; well-formed but non-deterministic encodings (non-shortest
// arguments, indefinite lengths, unsorted map keys) are CodeNoncanonical.
func CheckDeterministic(b []byte) error {
	c := checker{b: b}
	if err := c.item(1); err != nil {
		return err
	}
	if c.pos != len(b) {
		return Errorf(CodeMalformed, "%d trailing bytes after the CBOR item", len(b)-c.pos)
	}
	return nil
}

type checker struct {
	b   []byte
	pos int
}

// head reads an initial byte and its argument.
func (c *checker) head() (major byte, arg uint64, err error) {
	if c.pos >= len(c.b) {
		return 0, 0, Errorf(CodeMalformed, "truncated CBOR item")
	}
	ib := c.b[c.pos]
	c.pos++
	major, ai := ib>>5, ib&0x1f
	var n int
	switch {
	case ai < 24:
		return major, uint64(ai), nil
	case ai == 24:
		n = 1
	case ai == 25:
		n = 2
	case ai == 26:
		n = 4
	case ai == 27:
		n = 8
	case ai == 31:
		if major == 7 {
			return 0, 0, Errorf(CodeMalformed, "unexpected break")
		}
		return 0, 0, Errorf(CodeNoncanonical, "indefinite length")
	default:
		return 0, 0, Errorf(CodeMalformed, "reserved additional information %d", ai)
	}
	if len(c.b)-c.pos < n {
		return 0, 0, Errorf(CodeMalformed, "truncated CBOR argument")
	}
	p := c.b[c.pos : c.pos+n]
	c.pos += n
	if major == 7 {
		// Floats (ai 25..27) and one-byte simple values (ai 24) are not
		// allowed at all.
		return 0, 0, Errorf(CodeMalformed, "floating point or extended simple value")
	}
	var min uint64
	switch n {
	case 1:
		arg, min = uint64(p[0]), 24
	case 2:
		arg, min = uint64(binary.BigEndian.Uint16(p)), 1<<8
	case 4:
		arg, min = uint64(binary.BigEndian.Uint32(p)), 1<<16
	case 8:
		arg, min = binary.BigEndian.Uint64(p), 1<<32
	}
	if arg < min {
		return 0, 0, Errorf(CodeNoncanonical, "argument %d not in shortest form", arg)
	}
	return major, arg, nil
}

// item checks one data item. depth is the depth an array or map at this
// position would have: the outermost container is at depth 1, and scalars
// do not count (spec/01-conventions.md section 1.7).
func (c *checker) item(depth int) error {
	major, arg, err := c.head()
	if err != nil {
		return err
	}
	if (major == 4 || major == 5) && depth > MaxDepth {
		return Errorf(CodeMalformed, "arrays and maps nested deeper than %d", MaxDepth)
	}
	switch major {
	case 0, 1:
		return nil
	case 2, 3:
		if arg > uint64(len(c.b)-c.pos) {
			return Errorf(CodeMalformed, "truncated string")
		}
		s := c.b[c.pos : c.pos+int(arg)]
		c.pos += int(arg)
		if major == 3 && !utf8.Valid(s) {
			return Errorf(CodeMalformed, "text string is not valid UTF-8")
		}
		return nil
	case 4:
		if arg > MaxArray {
			return Errorf(CodeMalformed, "array of %d elements, limit %d", arg, MaxArray)
		}
		for i := uint64(0); i < arg; i++ {
			if err := c.item(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case 5:
		if arg > MaxMapPairs {
			return Errorf(CodeMalformed, "map of %d pairs, limit %d", arg, MaxMapPairs)
		}
		var prev []byte
		for i := uint64(0); i < arg; i++ {
			start := c.pos
			if err := c.item(depth + 1); err != nil {
				return err
			}
			key := c.b[start:c.pos]
			if i > 0 {
				switch bytes.Compare(prev, key) {
				case 0:
					return Errorf(CodeMalformed, "duplicate map key")
				case 1:
					return Errorf(CodeNoncanonical, "map keys not in deterministic order")
				}
			}
			prev = key
			if err := c.item(depth + 1); err != nil {
				return err
			}
		}
		return nil
	case 6:
		return Errorf(CodeMalformed, "CBOR tags are not allowed")
	default: // 7, ai < 24
		switch arg {
		case 20, 21, 22: // false, true, null
			return nil
		}
		return Errorf(CodeMalformed, "simple value %d is not allowed", arg)
	}
}
