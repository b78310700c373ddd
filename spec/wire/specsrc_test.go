package wire_test

// Helpers of the spec/code tests: a reader of the Markdown tables of
// spec/*.md, and an evaluator of the Go constants of the module, read from
// source so that a test in spec/wire can check a limit that lives in the
// server, the federation or the client without importing them.

import (
	"fmt"
	"go/ast"
	"go/constant"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// moduleRoot is the repository root, relative to spec/wire.
const moduleRoot = "../.."

// mdTable returns the rows of the first Markdown table after the heading
// line that starts with heading, each row as its trimmed cells; the header
// and separator rows are left out.
func mdTable(t *testing.T, file, heading string) (header []string, rows [][]string) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", file))
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(string(data), "\n")
	i := 0
	for ; i < len(lines) && !strings.HasPrefix(lines[i], heading); i++ {
	}
	if i == len(lines) {
		t.Fatalf("%s: no heading %q", file, heading)
	}
	for ; i < len(lines) && !strings.HasPrefix(lines[i], "|"); i++ {
	}
	for ; i < len(lines) && strings.HasPrefix(lines[i], "|"); i++ {
		cells := strings.Split(strings.Trim(strings.TrimSpace(lines[i]), "|"), "|")
		for j := range cells {
			cells[j] = strings.TrimSpace(cells[j])
		}
		switch {
		case header == nil:
			header = cells
		case strings.Trim(strings.Join(cells, ""), "-: ") == "":
			// separator
		default:
			if len(cells) != len(header) {
				t.Fatalf("%s: row %q has %d cells, the header %d", file, lines[i], len(cells), len(header))
			}
			rows = append(rows, cells)
		}
	}
	if len(rows) == 0 {
		t.Fatalf("%s: no table after %q", file, heading)
	}
	return header, rows
}

// goConst is one constant declaration of the module.
type goConst struct {
	dir  string // package directory, relative to the module root
	pkg  string // package name
	expr ast.Expr
}

// constIndex holds the constants of every non-test Go file of the module,
// by package directory and name.
type constIndex struct {
	byDir  map[string]map[string]goConst // dir → name → const
	byPkg  map[string][]string           // package name → dirs
	mu     sync.Mutex
	values map[string]constant.Value // memo, by dir + "." + name
}

var (
	indexOnce sync.Once
	index     *constIndex
	indexErr  error
)

func moduleConsts(t *testing.T) *constIndex {
	t.Helper()
	indexOnce.Do(func() { index, indexErr = loadConsts() })
	if indexErr != nil {
		t.Fatal(indexErr)
	}
	return index
}

func loadConsts() (*constIndex, error) {
	ix := &constIndex{byDir: map[string]map[string]goConst{}, byPkg: map[string][]string{}, values: map[string]constant.Value{}}
	fset := token.NewFileSet()
	err := filepath.WalkDir(moduleRoot, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); n != ".." && (strings.HasPrefix(n, ".") || n == "testdata" || n == "vendor") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		dir, _ := filepath.Rel(moduleRoot, filepath.Dir(path))
		dir = filepath.ToSlash(dir)
		if ix.byDir[dir] == nil {
			ix.byDir[dir] = map[string]goConst{}
			ix.byPkg[f.Name.Name] = append(ix.byPkg[f.Name.Name], dir)
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if len(vs.Values) != len(vs.Names) {
					continue // iota repetition: not used for limits
				}
				for i, n := range vs.Names {
					ix.byDir[dir][n.Name] = goConst{dir: dir, pkg: f.Name.Name, expr: vs.Values[i]}
				}
			}
		}
		return nil
	})
	return ix, err
}

// lookup finds the constant name of the package named pkg (any directory
// of that name, which must be unique). When no package of that name
// declares it, a declaration of the name anywhere in the module is taken
// if there is exactly one, so that moving a constant to another package
// does not break the tables of the tests.
func (ix *constIndex) lookup(pkg, name string) (goConst, error) {
	var found []goConst
	for _, dir := range ix.byPkg[pkg] {
		if c, ok := ix.byDir[dir][name]; ok {
			found = append(found, c)
		}
	}
	if len(found) == 0 {
		for _, consts := range ix.byDir {
			if c, ok := consts[name]; ok {
				found = append(found, c)
			}
		}
	}
	switch len(found) {
	case 0:
		return goConst{}, fmt.Errorf("no constant %s.%s in the module (renamed or removed? update the table of this test)", pkg, name)
	case 1:
		return found[0], nil
	}
	return goConst{}, fmt.Errorf("constant %s.%s declared in %d packages", pkg, name, len(found))
}

var timeUnits = map[string]int64{"Nanosecond": 1, "Microsecond": 1e3, "Millisecond": 1e6, "Second": 1e9, "Minute": 60e9, "Hour": 3600e9}

// eval evaluates a Go constant expression written in the tables of the
// tests: unqualified names are constants of spec/wire, pkg.Name a constant
// of the package named pkg, time.Second and the like durations in
// nanoseconds, and log2(x) the binary logarithm of a power of two.
func (ix *constIndex) eval(t *testing.T, src string) int64 {
	t.Helper()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	e, err := parser.ParseExpr(src)
	if err != nil {
		t.Fatalf("expression %q: %v", src, err)
	}
	v, err := ix.value("spec/wire", e, 0)
	if err != nil {
		t.Fatalf("expression %q: %v", src, err)
	}
	n, ok := constant.Int64Val(constant.ToInt(v))
	if !ok {
		t.Fatalf("expression %q: %v is not an integer", src, v)
	}
	return n
}

func (ix *constIndex) value(dir string, e ast.Expr, depth int) (constant.Value, error) {
	if depth > 32 {
		return nil, fmt.Errorf("constants nested too deeply")
	}
	switch e := e.(type) {
	case *ast.BasicLit:
		return constant.MakeFromLiteral(e.Value, e.Kind, 0), nil
	case *ast.ParenExpr:
		return ix.value(dir, e.X, depth)
	case *ast.Ident:
		c, ok := ix.byDir[dir][e.Name]
		if !ok {
			return nil, fmt.Errorf("no constant %s in %s", e.Name, dir)
		}
		return ix.constValue(c, e.Name, depth)
	case *ast.SelectorExpr:
		x, ok := e.X.(*ast.Ident)
		if !ok {
			return nil, fmt.Errorf("unsupported selector %T", e.X)
		}
		if x.Name == "time" {
			if ns, ok := timeUnits[e.Sel.Name]; ok {
				return constant.MakeInt64(ns), nil
			}
		}
		c, err := ix.lookup(x.Name, e.Sel.Name)
		if err != nil {
			return nil, err
		}
		return ix.constValue(c, e.Sel.Name, depth)
	case *ast.UnaryExpr:
		x, err := ix.value(dir, e.X, depth+1)
		if err != nil {
			return nil, err
		}
		return constant.UnaryOp(e.Op, x, 0), nil
	case *ast.BinaryExpr:
		x, err := ix.value(dir, e.X, depth+1)
		if err != nil {
			return nil, err
		}
		y, err := ix.value(dir, e.Y, depth+1)
		if err != nil {
			return nil, err
		}
		switch e.Op {
		case token.SHL, token.SHR:
			s, _ := constant.Uint64Val(y)
			return constant.Shift(x, e.Op, uint(s)), nil
		case token.QUO:
			if x.Kind() == constant.Int && y.Kind() == constant.Int {
				return constant.BinaryOp(x, token.QUO_ASSIGN, y), nil
			}
		}
		return constant.BinaryOp(x, e.Op, y), nil
	case *ast.CallExpr:
		if len(e.Args) != 1 {
			return nil, fmt.Errorf("unsupported call")
		}
		x, err := ix.value(dir, e.Args[0], depth+1)
		if err != nil {
			return nil, err
		}
		if id, ok := e.Fun.(*ast.Ident); ok && id.Name == "log2" {
			n, _ := constant.Uint64Val(x)
			if n == 0 || n&(n-1) != 0 {
				return nil, fmt.Errorf("log2 of %d, not a power of two", n)
			}
			k := 0
			for ; n > 1; n >>= 1 {
				k++
			}
			return constant.MakeInt64(int64(k)), nil
		}
		return x, nil // a conversion
	}
	return nil, fmt.Errorf("unsupported expression %T", e)
}

func (ix *constIndex) constValue(c goConst, name string, depth int) (constant.Value, error) {
	key := c.dir + "." + name
	if v, ok := ix.values[key]; ok {
		return v, nil
	}
	v, err := ix.value(c.dir, c.expr, depth+1)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", key, err)
	}
	ix.values[key] = v
	return v, nil
}

// declaredConsts returns the names of the constants declared in the const
// blocks of a spec/wire file whose doc comment contains marker.
func declaredConsts(t *testing.T, file, marker string) []string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), file, nil, parser.ParseComments|parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST || gd.Doc == nil || !strings.Contains(gd.Doc.Text(), marker) {
			continue
		}
		for _, spec := range gd.Specs {
			for _, n := range spec.(*ast.ValueSpec).Names {
				if n.IsExported() {
					names = append(names, n.Name)
				}
			}
		}
	}
	if len(names) == 0 {
		t.Fatalf("%s: no const block marked %q", file, marker)
	}
	return names
}
