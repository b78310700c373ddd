package conformance

import (
	"fmt"
	"os"
	"strings"
	"testing"
)

// TestCites checks that every test's cite quotes the section its id names
// and that the quoted sentence carries a BCP 14 keyword of the test's
// level.
func TestCites(t *testing.T) {
	t.Parallel()
	spec := loadSpec(t)
	for _, x := range registry {
		sec := spec.byNumber[x.Section]
		if sec == nil {
			t.Errorf("%s: spec/ has no section %s", x.ID, x.Section)
			continue
		}
		m, ok := sec.find(x.Cite)
		if !ok {
			t.Errorf("%s: the cite is not in section %s: %q", x.ID, x.Section, x.Cite)
			continue
		}
		keyword := false
		var quoted []string
		for _, i := range m.sentences {
			s := sec.sentences[i]
			keyword = keyword || hasKeyword(s.full(), x.Level)
			quoted = append(quoted, s.full())
		}
		if !keyword {
			t.Errorf("%s: the cited sentence has no %s keyword: %q", x.ID, x.Level, strings.Join(quoted, " "))
		}
	}
}

// untestedRow is a row of UNTESTED.md.
type untestedRow struct {
	line     int
	section  string
	fragment string
	reason   string
}

// loadUntested reads the table of UNTESTED.md: the rows under the header
// "| Section | Requirement | Why it is not tested |".
func loadUntested(t *testing.T) []untestedRow {
	t.Helper()
	b, err := os.ReadFile("UNTESTED.md")
	if err != nil {
		t.Fatal(err)
	}
	var rows []untestedRow
	inTable := false
	for i, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "|") {
			inTable = false
			continue
		}
		if strings.HasPrefix(line, "| Section |") {
			inTable = true
			continue
		}
		if !inTable || strings.Trim(line, "|-: ") == "" {
			continue
		}
		cells := strings.Split(strings.Trim(strings.TrimSpace(line), "|"), "|")
		if len(cells) != 3 {
			t.Errorf("UNTESTED.md:%d: %d cells, want 3", i+1, len(cells))
			continue
		}
		frag := strings.TrimSpace(cells[1])
		frag = strings.TrimSuffix(strings.TrimPrefix(frag, "“"), "”")
		frag = strings.Trim(frag, `"`)
		rows = append(rows, untestedRow{line: i + 1, section: strings.TrimSpace(cells[0]), fragment: frag, reason: strings.TrimSpace(cells[2])})
	}
	return rows
}

// TestRequirementsCovered checks that every sentence of sections 1 to 16
// of the specification that states an absolute requirement (MUST, MUST
// NOT, REQUIRED, SHALL, SHALL NOT) is cited by a test or listed, with the
// reason, in UNTESTED.md; and that every row of UNTESTED.md names such a
// sentence that no test cites.
func TestRequirementsCovered(t *testing.T) {
	t.Parallel()
	spec := loadSpec(t)
	type key struct {
		section string
		i       int
	}
	cited := map[key][]string{}
	for _, x := range registry {
		sec := spec.byNumber[x.Section]
		if sec == nil {
			continue
		}
		m, ok := sec.find(x.Cite)
		if !ok {
			continue // TestCites reports it
		}
		for _, i := range m.sentences {
			cited[key{sec.number, i}] = append(cited[key{sec.number, i}], x.ID)
			for _, j := range sec.sentences[i].leadIdx {
				cited[key{sec.number, j}] = append(cited[key{sec.number, j}], x.ID)
			}
		}
	}
	listed := map[key]bool{}
	for _, r := range loadUntested(t) {
		sec := spec.byNumber[r.section]
		if sec == nil {
			t.Errorf("UNTESTED.md:%d: spec/ has no section %q", r.line, r.section)
			continue
		}
		if r.reason == "" {
			t.Errorf("UNTESTED.md:%d: no reason", r.line)
		}
		n := 0
		for i, s := range sec.sentences {
			if !isRequirement(s.text) || !strings.Contains(fold(s.text), fold(r.fragment)) {
				continue
			}
			n++
			k := key{sec.number, i}
			if ids := cited[k]; len(ids) > 0 {
				t.Errorf("UNTESTED.md:%d: %s %q is cited by test %s: remove the row", r.line, r.section, r.fragment, strings.Join(ids, ", "))
			}
			listed[k] = true
		}
		if n == 0 {
			t.Errorf("UNTESTED.md:%d: no MUST sentence of section %s contains %q", r.line, r.section, r.fragment)
		}
	}
	total, covered, untested := 0, 0, 0
	var missing []string
	for _, sec := range spec.sections {
		if !inSections1to16(sec.number) {
			continue
		}
		for i, s := range sec.sentences {
			if !isRequirement(s.text) {
				continue
			}
			total++
			k := key{sec.number, i}
			switch {
			case len(cited[k]) > 0:
				covered++
			case listed[k]:
				untested++
			default:
				missing = append(missing, fmt.Sprintf("| %s | %s | ? |", sec.number, s.text))
			}
		}
	}
	t.Logf("%d MUST sentences: %d cited by tests, %d listed in UNTESTED.md, %d neither", total, covered, untested, len(missing))
	if len(missing) > 0 {
		t.Errorf("%d MUST sentences are neither cited by a test nor listed in UNTESTED.md; cite them or add rows (shorten each sentence to a distinctive fragment and give the reason):\n%s",
			len(missing), strings.Join(missing, "\n"))
	}
}

func inSections1to16(number string) bool {
	top, _, _ := strings.Cut(number, ".")
	for n := 1; n <= 16; n++ {
		if top == fmt.Sprint(n) {
			return true
		}
	}
	return false
}
