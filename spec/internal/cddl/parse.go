// Package cddl reads the subset of CDDL (RFC 8610) that spec/xchat.cddl
// uses, and validates CBOR items against its rules. It exists for the tests
// that keep the specification and the code in step; it is not a general
// CDDL implementation.
//
// # Subset
//
// Rules are type rules (name = type) or group rules (name = ( entries )).
// Types are choices (a / b) of: the prelude types uint, nint, int, bstr,
// tstr, bool, true, false, nil, null and any; unsigned integer literals,
// decimal or 0x hexadecimal; ranges lo..hi of such literals; rule names;
// maps { entries }; arrays [ entry ]; a parenthesised type; and the
// controls .size (on bstr and tstr) and .ne (on integers). A map entry is
// an occurrence indicator (?, *, +, n*m) and then key: type with an
// unsigned integer key (with the implicit cut of RFC 8610 section 3.5.4),
// keytype => type, or the name of a group rule whose entries are inserted.
// An array has one entry: an occurrence indicator and a type. Comments run
// from ; to the end of the line.
package cddl

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// Spec is a parsed CDDL document.
type Spec struct {
	Rules  map[string]*Rule
	Order  []string // rule names in document order
	groups map[string][]*Entry
}

// Rule is one rule: a type, or, for a group rule, Group.
type Rule struct {
	Name  string
	Type  *Type    // type rule
	Group []*Entry // group rule
}

// Type is a choice between alternatives.
type Type struct {
	Alts []*Type1
}

// Type1 is one alternative: a base type and an optional control.
type Type1 struct {
	Base    *Type2
	Control string // "", ".size" or ".ne"
	Arg     *Type2 // the control's argument
}

// Kind says what a Type2 is.
type Kind int

// Kinds of Type2.
const (
	KindName  Kind = iota // a prelude type or a rule name: Name
	KindUint              // an unsigned literal: Lo
	KindRange             // Lo..Hi
	KindMap               // Entries
	KindArray             // Entries (one)
	KindParen             // Inner
	KindText              // a text literal: Name
)

// Type2 is a base type.
type Type2 struct {
	Kind    Kind
	Name    string
	Lo, Hi  uint64
	Entries []*Entry
	Inner   *Type
}

// Entry is one entry of a map or array.
type Entry struct {
	Min, Max uint64 // occurrence; Max is math.MaxUint64 for no bound
	HasKey   bool   // key: type (Key holds the key) or keytype => type (KeyType)
	Key      uint64 // key: type, with a cut
	Cut      bool
	KeyType  *Type // keytype => type
	Value    *Type
	GroupRef string // the name of a group rule whose entries stand here
}

// Optional reports whether the entry may be absent.
func (e *Entry) Optional() bool { return e.Min == 0 }

// Parse reads a CDDL document of the subset.
func Parse(src string) (*Spec, error) {
	p := &parser{toks: tokenize(src)}
	s := &Spec{Rules: map[string]*Rule{}, groups: map[string][]*Entry{}}
	for !p.done() {
		name := p.next()
		if !isIdent(name.s) {
			return nil, p.errf(name, "rule name expected, got %q", name.s)
		}
		if eq := p.next(); eq.s != "=" {
			return nil, p.errf(eq, "= expected after %s, got %q", name.s, eq.s)
		}
		if _, dup := s.Rules[name.s]; dup {
			return nil, p.errf(name, "rule %s defined twice", name.s)
		}
		r := &Rule{Name: name.s}
		if p.peek().s == "(" && p.isGroup() {
			p.next()
			entries, err := p.entries(")")
			if err != nil {
				return nil, err
			}
			r.Group = entries
			s.groups[r.Name] = entries
		} else {
			t, err := p.typ()
			if err != nil {
				return nil, err
			}
			r.Type = t
		}
		s.Rules[r.Name] = r
		s.Order = append(s.Order, r.Name)
	}
	if err := s.resolveGroups(); err != nil {
		return nil, err
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

// resolveGroups turns the keyless entries of maps into references to group
// rules; a keyless map entry that names no group rule is an error.
func (s *Spec) resolveGroups() error {
	var errs []string
	var walkType func(rule string, t *Type)
	var walkMap func(rule string, es []*Entry, isMap bool)
	walkType = func(rule string, t *Type) {
		if t == nil {
			return
		}
		for _, a := range t.Alts {
			for _, b := range []*Type2{a.Base, a.Arg} {
				switch {
				case b == nil:
				case b.Kind == KindMap:
					walkMap(rule, b.Entries, true)
				case b.Kind == KindArray:
					walkMap(rule, b.Entries, false)
				case b.Kind == KindParen:
					walkType(rule, b.Inner)
				}
			}
		}
	}
	walkMap = func(rule string, es []*Entry, isMap bool) {
		for _, e := range es {
			if isMap && !e.HasKey && e.KeyType == nil {
				v := e.Value
				if len(v.Alts) == 1 && v.Alts[0].Control == "" && v.Alts[0].Base.Kind == KindName && s.groups[v.Alts[0].Base.Name] != nil {
					e.GroupRef, e.Value = v.Alts[0].Base.Name, nil
					continue
				}
				errs = append(errs, fmt.Sprintf("%s: a map entry without a key that names no group rule", rule))
				continue
			}
			walkType(rule, e.KeyType)
			walkType(rule, e.Value)
		}
	}
	for _, name := range s.Order {
		r := s.Rules[name]
		walkType(name, r.Type)
		walkMap(name, r.Group, true)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cddl: %s", strings.Join(errs, "; "))
	}
	return nil
}

// check reports a reference to an undefined rule.
func (s *Spec) check() error {
	var errs []string
	var walkType func(rule string, t *Type)
	var walkEntries func(rule string, es []*Entry)
	walk2 := func(rule string, t *Type2) {
		if t == nil {
			return
		}
		switch t.Kind {
		case KindName:
			if !prelude[t.Name] && s.Rules[t.Name] == nil {
				errs = append(errs, fmt.Sprintf("%s: undefined name %s", rule, t.Name))
			}
		case KindMap, KindArray:
			walkEntries(rule, t.Entries)
		case KindParen:
			walkType(rule, t.Inner)
		}
	}
	walkType = func(rule string, t *Type) {
		if t == nil {
			return
		}
		for _, a := range t.Alts {
			walk2(rule, a.Base)
			walk2(rule, a.Arg)
		}
	}
	walkEntries = func(rule string, es []*Entry) {
		for _, e := range es {
			if e.GroupRef != "" && s.groups[e.GroupRef] == nil {
				errs = append(errs, fmt.Sprintf("%s: %s is not a group rule", rule, e.GroupRef))
			}
			walkType(rule, e.KeyType)
			walkType(rule, e.Value)
		}
	}
	for _, name := range s.Order {
		r := s.Rules[name]
		walkType(name, r.Type)
		walkEntries(name, r.Group)
	}
	if len(errs) > 0 {
		return fmt.Errorf("cddl: %s", strings.Join(errs, "; "))
	}
	return nil
}

var prelude = map[string]bool{"uint": true, "nint": true, "int": true, "bstr": true, "bytes": true, "tstr": true,
	"text": true, "bool": true, "true": true, "false": true, "nil": true, "null": true, "any": true}

type token struct {
	s    string
	line int
}

func tokenize(src string) []token {
	var toks []token
	line := 1
	for i := 0; i < len(src); {
		c := src[i]
		switch {
		case c == '\n':
			line++
			i++
		case c == ' ' || c == '\t' || c == '\r':
			i++
		case c == ';':
			for i < len(src) && src[i] != '\n' {
				i++
			}
		case strings.HasPrefix(src[i:], "=>"), strings.HasPrefix(src[i:], ".."), strings.HasPrefix(src[i:], "//"):
			toks = append(toks, token{src[i : i+2], line})
			i += 2
		case c == '.' && i+1 < len(src) && unicode.IsLetter(rune(src[i+1])):
			j := i + 1
			for j < len(src) && (isIdentByte(src[j])) {
				j++
			}
			toks = append(toks, token{src[i:j], line})
			i = j
		case c == '"':
			j := i + 1
			for j < len(src) && src[j] != '"' {
				j++
			}
			toks = append(toks, token{src[i:min(j+1, len(src))], line})
			i = j + 1
		case isIdentByte(c):
			j := i
			for j < len(src) && isIdentByte(src[j]) {
				j++
			}
			toks = append(toks, token{src[i:j], line})
			i = j
		default:
			toks = append(toks, token{string(c), line})
			i++
		}
	}
	return toks
}

func isIdentByte(c byte) bool {
	return c == '-' || c == '_' || c == '$' || c == '@' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func isIdent(s string) bool {
	return s != "" && (unicode.IsLetter(rune(s[0])) || s[0] == '$' || s[0] == '_' || s[0] == '@')
}

type parser struct {
	toks []token
	pos  int
}

func (p *parser) done() bool { return p.pos >= len(p.toks) }

func (p *parser) peek() token {
	if p.done() {
		return token{"", -1}
	}
	return p.toks[p.pos]
}

func (p *parser) next() token {
	t := p.peek()
	p.pos++
	return t
}

func (p *parser) errf(t token, format string, args ...any) error {
	return fmt.Errorf("cddl: line %d: %s", t.line, fmt.Sprintf(format, args...))
}

// isGroup reports whether the parenthesis at p.pos opens a group (it holds
// a ":" or "=>" at its own level) rather than a type.
func (p *parser) isGroup() bool {
	depth := 0
	for i := p.pos; i < len(p.toks); i++ {
		switch p.toks[i].s {
		case "(", "{", "[":
			depth++
		case ")", "}", "]":
			depth--
			if depth == 0 {
				return false
			}
		case ":", "=>":
			if depth == 1 {
				return true
			}
		}
	}
	return false
}

func (p *parser) typ() (*Type, error) {
	t := &Type{}
	for {
		a, err := p.type1()
		if err != nil {
			return nil, err
		}
		t.Alts = append(t.Alts, a)
		if p.peek().s != "/" {
			return t, nil
		}
		p.next()
	}
}

func (p *parser) type1() (*Type1, error) {
	b, err := p.type2()
	if err != nil {
		return nil, err
	}
	t := &Type1{Base: b}
	if c := p.peek().s; c == ".size" || c == ".ne" {
		p.next()
		t.Control = c
		if t.Arg, err = p.type2(); err != nil {
			return nil, err
		}
	} else if strings.HasPrefix(c, ".") && c != ".." {
		return nil, p.errf(p.peek(), "control %s not in the subset", c)
	}
	return t, nil
}

func parseUint(s string) (uint64, bool) {
	if h, ok := strings.CutPrefix(s, "0x"); ok {
		n, err := strconv.ParseUint(h, 16, 64)
		return n, err == nil
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

func (p *parser) type2() (*Type2, error) {
	t := p.next()
	switch {
	case t.s == "{" || t.s == "[":
		closing := map[string]string{"{": "}", "[": "]"}[t.s]
		es, err := p.entries(closing)
		if err != nil {
			return nil, err
		}
		if t.s == "[" {
			if len(es) != 1 || es[0].HasKey || es[0].KeyType != nil {
				return nil, p.errf(t, "arrays of one entry only")
			}
			return &Type2{Kind: KindArray, Entries: es}, nil
		}
		return &Type2{Kind: KindMap, Entries: es}, nil
	case t.s == "(":
		in, err := p.typ()
		if err != nil {
			return nil, err
		}
		if c := p.next(); c.s != ")" {
			return nil, p.errf(c, ") expected, got %q", c.s)
		}
		return &Type2{Kind: KindParen, Inner: in}, nil
	case strings.HasPrefix(t.s, `"`):
		return &Type2{Kind: KindText, Name: strings.Trim(t.s, `"`)}, nil
	case t.s != "" && t.s[0] >= '0' && t.s[0] <= '9':
		lo, ok := parseUint(t.s)
		if !ok {
			return nil, p.errf(t, "bad number %q", t.s)
		}
		if p.peek().s != ".." {
			return &Type2{Kind: KindUint, Lo: lo, Hi: lo}, nil
		}
		p.next()
		h := p.next()
		hi, ok := parseUint(h.s)
		if !ok || hi < lo {
			return nil, p.errf(h, "bad range end %q", h.s)
		}
		return &Type2{Kind: KindRange, Lo: lo, Hi: hi}, nil
	case isIdent(t.s):
		return &Type2{Kind: KindName, Name: t.s}, nil
	}
	return nil, p.errf(t, "type expected, got %q", t.s)
}

// entries reads entries up to the closing token.
func (p *parser) entries(closing string) ([]*Entry, error) {
	var es []*Entry
	for {
		if p.peek().s == closing {
			p.next()
			return es, nil
		}
		if p.done() {
			return nil, fmt.Errorf("cddl: %s missing at the end", closing)
		}
		e, err := p.entry()
		if err != nil {
			return nil, err
		}
		es = append(es, e)
		if p.peek().s == "," {
			p.next()
		}
	}
}

func (p *parser) entry() (*Entry, error) {
	e := &Entry{Min: 1, Max: 1}
	switch t := p.peek(); {
	case t.s == "?":
		p.next()
		e.Min, e.Max = 0, 1
	case t.s == "+":
		p.next()
		e.Min, e.Max = 1, math.MaxUint64
	case t.s == "*":
		p.next()
		e.Min, e.Max = 0, math.MaxUint64
		if n, ok := parseUint(p.peek().s); ok && p.pos+1 < len(p.toks) && p.toks[p.pos+1].s != ":" {
			p.next()
			e.Max = n
		}
	default:
		if n, ok := parseUint(t.s); ok && p.pos+1 < len(p.toks) && p.toks[p.pos+1].s == "*" {
			p.next()
			p.next()
			e.Min, e.Max = n, math.MaxUint64
			if m, ok := parseUint(p.peek().s); ok {
				p.next()
				e.Max = m
			}
		}
	}
	start := p.peek()
	t, err := p.typ()
	if err != nil {
		return nil, err
	}
	switch p.peek().s {
	case ":":
		p.next()
		if len(t.Alts) != 1 || t.Alts[0].Control != "" || t.Alts[0].Base.Kind != KindUint {
			return nil, p.errf(start, "only unsigned integer keys before ':'")
		}
		e.HasKey, e.Key, e.Cut = true, t.Alts[0].Base.Lo, true
		e.Value, err = p.typ()
		return e, err
	case "=>":
		p.next()
		e.KeyType = t
		e.Value, err = p.typ()
		return e, err
	}
	e.Value = t // an array element, or a group reference in a map (resolved by Parse)
	return e, nil
}
