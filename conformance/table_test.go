package conformance

import (
	"reflect"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

var idRE = regexp.MustCompile(`^([1-9][0-9]*(?:\.[1-9][0-9]*)*)/([1-9][0-9]*)$`)

// funcName is the name of f without its package path.
func funcName(f func(*T)) string {
	name := runtime.FuncForPC(reflect.ValueOf(f).Pointer()).Name()
	return name[strings.LastIndex(name, ".")+1:]
}

// TestTable checks the tables of the tests_*.go files: ids are unique and
// well formed, name a section of the specification and sort in the order
// of their files; every row has a level, a summary, a cite and a runner,
// named after its id (test<section and number, "." and "/" as "_">_<Name>)
// or the data-driven runner testRaw with its data.
func TestTable(t *testing.T) {
	t.Parallel()
	spec := loadSpec(t)
	seen := map[string]bool{}
	for _, x := range registry {
		m := idRE.FindStringSubmatch(x.ID)
		if m == nil {
			t.Errorf("%q: an id is <section>/<n>", x.ID)
			continue
		}
		if seen[x.ID] {
			t.Errorf("%s: duplicate id", x.ID)
		}
		seen[x.ID] = true
		if x.Section != m[1] {
			t.Errorf("%s: section %q", x.ID, x.Section)
		}
		if spec.byNumber[m[1]] == nil {
			t.Errorf("%s: spec/ has no section %s", x.ID, m[1])
		}
		if x.Level != MUST && x.Level != SHOULD {
			t.Errorf("%s: level %q", x.ID, x.Level)
		}
		if x.Summary == "" || x.Cite == "" {
			t.Errorf("%s: no summary or no cite", x.ID)
		}
		if x.run == nil {
			t.Errorf("%s: no runner", x.ID)
			continue
		}
		name := funcName(x.run)
		switch {
		case name == "testRaw":
			if x.raw == nil {
				t.Errorf("%s: testRaw without its data", x.ID)
			}
		case x.raw != nil:
			t.Errorf("%s: data for testRaw, but the runner is %s", x.ID, name)
		default:
			prefix := "test" + strings.NewReplacer(".", "_", "/", "_").Replace(x.ID) + "_"
			if !strings.HasPrefix(name, prefix) || len(name) == len(prefix) {
				t.Errorf("%s: runner %s, want %s<Name>", x.ID, name, prefix)
			}
		}
	}
	if len(registry) != len(Tests()) {
		t.Errorf("registry of %d, Tests() of %d", len(registry), len(Tests()))
	}
	t.Logf("%d tests", len(registry))
}
