package federation

import (
	"maps"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

// TestPermanentCodesMatchSpec compares the per-envelope codes that the
// origin treats as permanent with the "permanent" row of the table of
// spec/08-federation.md section 8.9.1, both ways, and checks that the
// "temporary" row names no code the origin treats as permanent.
func TestPermanentCodesMatchSpec(t *testing.T) {
	t.Parallel()
	src, err := os.ReadFile("../spec/08-federation.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(src)
	start := strings.Index(text, "### 8.9.1")
	if start < 0 {
		t.Fatal("08-federation.md has no section 8.9.1")
	}
	text = text[start:]
	if end := strings.Index(text[1:], "\n### "); end > 0 {
		text = text[:end+1]
	}
	code := regexp.MustCompile("`([a-z_]+)` \\((\\d+)\\)")
	rows := map[string][]wire.Code{}
	for line := range strings.SplitSeq(text, "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 5 {
			continue
		}
		class := strings.TrimSpace(cells[2])
		for _, m := range code.FindAllStringSubmatch(cells[1], -1) {
			n, _ := strconv.Atoi(m[2])
			c := wire.Code(n)
			if c.String() != m[1] {
				t.Errorf("8.9.1: code %d is %q in the spec, %q in spec/wire", n, m[1], c.String())
			}
			rows[class] = append(rows[class], c)
		}
	}
	if len(rows["permanent"]) == 0 || len(rows["temporary"]) == 0 {
		t.Fatalf("8.9.1: found no permanent or temporary row: %v", rows)
	}
	spec := slices.Sorted(slices.Values(rows["permanent"]))
	code2 := slices.Sorted(maps.Keys(permanent))
	if !slices.Equal(spec, code2) {
		t.Errorf("8.9.1 lists the permanent codes %v, federation treats %v as permanent", spec, code2)
	}
	for _, c := range rows["temporary"] {
		if permanent[c] {
			t.Errorf("8.9.1 lists %v as temporary, federation treats it as permanent", c)
		}
	}
}
