package wire_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
	"unicode"

	"github.com/xchat-im/xchat/spec/wire"
)

// snake turns a Go name such as LinkInvalid into link_invalid (OK into
// ok).
func snake(s string) string {
	var b strings.Builder
	prevLower := false
	for _, r := range s {
		if unicode.IsUpper(r) {
			if prevLower {
				b.WriteByte('_')
			}
			r = unicode.ToLower(r)
			prevLower = false
		} else {
			prevLower = true
		}
		b.WriteRune(r)
	}
	return b.String()
}

// errorsGo returns the Code constants of errors.go (name without the Code
// prefix → value) and the names of its Err sentinels (without Err → the
// Code constant they hold).
func errorsGo(t *testing.T) (codes map[string]int, sentinels map[string]string) {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	codes, sentinels = map[string]int{}, map[string]string{}
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok {
			continue
		}
		for _, spec := range gd.Specs {
			vs, ok := spec.(*ast.ValueSpec)
			if !ok || len(vs.Values) != len(vs.Names) {
				continue
			}
			for i, n := range vs.Names {
				switch {
				case gd.Tok == token.CONST && strings.HasPrefix(n.Name, "Code"):
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok {
						t.Fatalf("errors.go: %s is not a literal", n.Name)
					}
					v, _ := strconv.Atoi(lit.Value)
					codes[strings.TrimPrefix(n.Name, "Code")] = v
				case gd.Tok == token.VAR && strings.HasPrefix(n.Name, "Err"):
					// &Error{Code: CodeX}
					if u, ok := vs.Values[i].(*ast.UnaryExpr); ok {
						if cl, ok := u.X.(*ast.CompositeLit); ok && len(cl.Elts) == 1 {
							if kv, ok := cl.Elts[0].(*ast.KeyValueExpr); ok {
								if id, ok := kv.Value.(*ast.Ident); ok {
									sentinels[strings.TrimPrefix(n.Name, "Err")] = strings.TrimPrefix(id.Name, "Code")
								}
							}
						}
					}
				}
			}
		}
	}
	return codes, sentinels
}

// TestErrorTable compares the table of spec/14-errors.md section 14.2
// with the Code constants, their names (Code.String) and the sentinel
// errors of errors.go, both ways.
func TestErrorTable(t *testing.T) {
	header, rows := mdTable(t, "14-errors.md", "## 14.2")
	cCode, cName := column(t, header, "Code"), column(t, header, "Name")
	codes, sentinels := errorsGo(t)
	byValue := map[int]string{}
	for name, v := range codes {
		if other, dup := byValue[v]; dup {
			t.Errorf("errors.go: Code%s and Code%s are both %d", name, other, v)
		}
		byValue[v] = name
	}
	inTable := map[int]bool{}
	maxCode := 0
	for _, row := range rows {
		n, err := strconv.Atoi(row[cCode])
		if err != nil {
			t.Errorf("14-errors.md: code %q is not a number", row[cCode])
			continue
		}
		if inTable[n] {
			t.Errorf("14-errors.md: code %d has two rows", n)
		}
		inTable[n] = true
		maxCode = max(maxCode, n)
		name := strings.Trim(row[cName], "`")
		if got := wire.Code(n).String(); got != name {
			t.Errorf("14-errors.md: code %d is %q, wire.Code(%d).String() is %q", n, name, n, got)
		}
		goName, ok := byValue[n]
		if !ok {
			t.Errorf("14-errors.md: code %d %q has no Code constant in errors.go", n, name)
			continue
		}
		if snake(goName) != name {
			t.Errorf("14-errors.md: code %d is %q, errors.go names it Code%s", n, name, goName)
		}
		if n != 0 && sentinels[goName] != goName {
			t.Errorf("errors.go: no sentinel Err%s = &Error{Code: Code%s} for code %d %q", goName, goName, n, name)
		}
	}
	for v, name := range byValue {
		if !inTable[v] {
			t.Errorf("errors.go: Code%s = %d has no row in 14-errors.md section 14.2", name, v)
		}
	}
	for s, c := range sentinels {
		if _, ok := codes[c]; !ok || s != c {
			t.Errorf("errors.go: Err%s holds Code%s", s, c)
		}
	}
	// The names stop where the table stops.
	if got := wire.Code(maxCode + 1).String(); !strings.HasPrefix(got, "code_") {
		t.Errorf("wire.Code(%d).String() is %q, but 14-errors.md has no such code", maxCode+1, got)
	}
}
