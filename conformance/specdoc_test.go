package conformance

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"unicode"
)

// This file reads spec/*.md into sections and sentences, for the tests
// that tie the suite to the text of the specification (cite_test.go).

// specSentence is one sentence of the specification, markdown removed and
// white space normalised.
type specSentence struct {
	section string
	text    string
	// lead is the text that introduces the sentence's list item or table
	// row (the sentences ending with ":" above it, outermost first), of
	// which the item or row is the continuation; empty for a sentence of
	// a paragraph.
	lead string
	// leadIdx are the indexes, in the section's sentences, of those
	// introducing sentences.
	leadIdx []int
}

// full is the sentence with what introduces it: the text that carries its
// BCP 14 keyword.
func (s specSentence) full() string {
	if s.lead == "" {
		return s.text
	}
	return s.lead + " " + s.text
}

// specSection is a numbered section of the specification.
type specSection struct {
	number    string // "7.12"
	file      string
	sentences []specSentence
}

// specDoc is the specification: its numbered sections in order.
type specDoc struct {
	sections []*specSection
	byNumber map[string]*specSection
}

var headingRE = regexp.MustCompile(`^#{1,6}\s+(\d+(?:\.\d+)*)\.?\s`)

// loadSpec reads the sections 1 to 16 of the specification from
// ../spec/NN-*.md.
func loadSpec(t *testing.T) *specDoc {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "spec", "[0-9][0-9]-*.md"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no spec/NN-*.md files (%v)", err)
	}
	slices.Sort(files)
	doc := &specDoc{byNumber: map[string]*specSection{}}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range parseSpecFile(filepath.Base(f), string(b)) {
			if doc.byNumber[s.number] != nil {
				t.Fatalf("section %s appears twice", s.number)
			}
			doc.byNumber[s.number] = s
			doc.sections = append(doc.sections, s)
		}
	}
	return doc
}

// block is a paragraph, a list item (or a paragraph continuing one) or a
// table row.
type block struct {
	kind   byte // 'p' (paragraph), 'l' (list item), 'c' (indented paragraph continuing a list item), 't' (table row)
	indent int
	lines  []string
}

var listItemRE = regexp.MustCompile(`^(\s*)(?:[-*+]|\d+\.)\s+`)

// parseSpecFile splits a file into its numbered sections and their
// sentences. Fenced code blocks are left out.
func parseSpecFile(name, text string) []*specSection {
	var (
		out    []*specSection
		cur    *specSection
		b      *block
		inCode bool
		blocks []*block
	)
	flushSection := func() {
		if cur != nil {
			cur.sentences = sentencesOf(cur.number, blocks)
			out = append(out, cur)
		}
		blocks = nil
	}
	endBlock := func() {
		if b != nil {
			blocks = append(blocks, b)
			b = nil
		}
	}
	for _, line := range strings.Split(text, "\n") {
		trim := strings.TrimSpace(line)
		if strings.HasPrefix(trim, "```") {
			endBlock()
			inCode = !inCode
			continue
		}
		if inCode {
			continue
		}
		if m := headingRE.FindStringSubmatch(line); m != nil {
			endBlock()
			flushSection()
			cur = &specSection{number: m[1], file: name}
			continue
		}
		if strings.HasPrefix(trim, "#") {
			endBlock()
			continue
		}
		switch {
		case trim == "":
			endBlock()
		case strings.HasPrefix(trim, "|"):
			endBlock()
			if strings.Trim(trim, "|-: ") == "" { // the separator row
				continue
			}
			blocks = append(blocks, &block{kind: 't', lines: []string{tableRow(trim)}})
		case listItemRE.MatchString(line):
			endBlock()
			m := listItemRE.FindStringSubmatch(line)
			b = &block{kind: 'l', indent: len(m[1]), lines: []string{line[len(m[0]):]}}
		default:
			if b == nil {
				b = &block{kind: 'p', indent: len(line) - len(strings.TrimLeft(line, " "))}
				if b.indent > 0 {
					// a paragraph continuing a list item after a blank line
					b.kind = 'c'
				}
			}
			b.lines = append(b.lines, trim)
		}
	}
	endBlock()
	flushSection()
	return out
}

// tableRow is a table row as its cells joined by " | ".
func tableRow(line string) string {
	line = strings.TrimSpace(line)
	line = strings.TrimPrefix(line, "|")
	line = strings.TrimSuffix(line, "|")
	cells := strings.Split(line, "|")
	for i := range cells {
		cells[i] = strings.TrimSpace(cells[i])
	}
	return strings.Join(cells, " | ")
}

// sentencesOf splits the blocks of a section into sentences and gives
// list items and table rows the sentences ending with ":" that introduce
// them.
func sentencesOf(section string, blocks []*block) []specSentence {
	var out []specSentence
	type item struct {
		indent int
		last   int   // index of the item's last sentence in out, or -1
		lead   []int // what introduces the item
	}
	var stack []item
	lastPara := -1 // last sentence of the latest paragraph
	colon := func(i int) bool { return i >= 0 && strings.HasSuffix(out[i].text, ":") }
	for _, b := range blocks {
		kind := b.kind
		if kind == 'c' {
			for len(stack) > 0 && stack[len(stack)-1].indent >= b.indent {
				stack = stack[:len(stack)-1]
			}
			if len(stack) == 0 {
				kind = 'p'
			}
		}
		var lead []int
		switch kind {
		case 'p':
			stack = stack[:0]
		case 'l':
			for len(stack) > 0 && stack[len(stack)-1].indent >= b.indent {
				stack = stack[:len(stack)-1]
			}
			if len(stack) == 0 {
				if colon(lastPara) {
					lead = append(lead, lastPara)
				}
			} else {
				top := stack[len(stack)-1]
				lead = append(slices.Clone(top.lead), top.last)
				if !colon(top.last) {
					lead = lead[:len(lead)-1]
				}
			}
		case 'c':
			lead = stack[len(stack)-1].lead
		case 't':
			stack = stack[:0]
			if colon(lastPara) {
				lead = append(lead, lastPara)
			}
		}
		var leadText []string
		for _, i := range lead {
			leadText = append(leadText, out[i].text)
		}
		first := len(out)
		for _, s := range splitSentences(normalize(strings.Join(b.lines, " "))) {
			out = append(out, specSentence{section: section, text: s, leadIdx: lead, lead: strings.Join(leadText, " ")})
		}
		last := len(out) - 1
		if last < first {
			last = -1
		}
		switch kind {
		case 'p':
			lastPara = last
		case 'l':
			stack = append(stack, item{indent: b.indent, last: last, lead: lead})
		case 'c':
			if last >= 0 {
				stack[len(stack)-1].last = last
			}
		}
	}
	return out
}

var (
	linkRE  = regexp.MustCompile(`\[([^\]]*)\]\([^)]*\)`)
	spaceRE = regexp.MustCompile(`\s+`)
)

// normalize removes markdown (code spans, emphasis, links) and folds
// white space, dashes and quotes.
func normalize(s string) string {
	s = linkRE.ReplaceAllString(s, "$1")
	s = strings.NewReplacer("`", "", "**", "", "\\|", "|", "\\*", "*",
		"–", "-", "—", "-", "‘", "'", "’", "'", "“", `"`, "”", `"`, "\u00a0", " ").Replace(s)
	s = strings.ReplaceAll(s, "*", "")
	return strings.TrimSpace(spaceRE.ReplaceAllString(s, " "))
}

// splitSentences splits normalised text into sentences. A sentence ends
// with ".", "?" or "!" (possibly followed by a closing parenthesis or
// quote) followed by a space and an upper-case letter or an opening
// parenthesis, unless the full stop ends an abbreviation.
func splitSentences(s string) []string {
	var out []string
	start := 0
	r := []rune(s)
	for i := 0; i < len(r); i++ {
		if r[i] != '.' && r[i] != '?' && r[i] != '!' {
			continue
		}
		j := i + 1
		for j < len(r) && (r[j] == ')' || r[j] == '"' || r[j] == '\'') {
			j++
		}
		if j >= len(r) || r[j] != ' ' || j+1 >= len(r) {
			continue
		}
		next := r[j+1]
		if !(unicode.IsUpper(next) || next == '(') {
			continue
		}
		if isAbbreviation(r[start:i]) {
			continue
		}
		out = append(out, strings.TrimSpace(string(r[start:j])))
		start = j + 1
	}
	if rest := strings.TrimSpace(string(r[start:])); rest != "" {
		out = append(out, rest)
	}
	return out
}

// isAbbreviation reports whether text ends with an abbreviation whose full
// stop does not end a sentence.
func isAbbreviation(text []rune) bool {
	s := string(text)
	for _, a := range []string{"e.g", "i.e", "etc", "cf", "vs", "Fig", "No"} {
		if strings.HasSuffix(s, " "+a) || s == a || strings.HasSuffix(s, "("+a) {
			return true
		}
	}
	return false
}

// fold is the form in which cites and fragments are looked up: normalised
// and lower case.
func fold(s string) string { return strings.ToLower(normalize(s)) }

// match is where a cite was found in a section: the indexes of the
// sentences it spans.
type match struct {
	sentences []int
}

// find looks for cite in the sentences of sec. A cite is a quotation of
// the specification in which "..." marks an elision: its pieces must occur
// in order, the first and the last within at most four consecutive
// sentences.
func (sec *specSection) find(cite string) (match, bool) {
	var pieces []string
	for _, p := range ellipsisRE.Split(cite, -1) {
		if p = strings.TrimSpace(fold(p)); p != "" {
			pieces = append(pieces, strings.Trim(p, " ;,"))
		}
	}
	if len(pieces) == 0 {
		return match{}, false
	}
	// The section's text, sentence after sentence, with each sentence's
	// offset.
	var all strings.Builder
	var offs []int
	for _, s := range sec.sentences {
		offs = append(offs, all.Len())
		all.WriteString(fold(s.text))
		all.WriteString(" ")
	}
	text := all.String()
	sentenceAt := func(off int) int {
		i, _ := slices.BinarySearch(offs, off+1)
		return i - 1
	}
	for from := 0; ; {
		i := strings.Index(text[from:], pieces[0])
		if i < 0 {
			return match{}, false
		}
		start := from + i
		end := start + len(pieces[0])
		ok := true
		for _, p := range pieces[1:] {
			j := strings.Index(text[end:], p)
			if j < 0 {
				ok = false
				break
			}
			end += j + len(p)
		}
		if ok {
			a, b := sentenceAt(start), sentenceAt(end-1)
			if b-a < 4 {
				var m match
				for k := a; k <= b; k++ {
					m.sentences = append(m.sentences, k)
				}
				return m, true
			}
		}
		from = start + 1
	}
}

// keywords are the BCP 14 keywords a sentence must carry for a test of
// each level.
var keywords = map[Level][]string{
	MUST:   {"MUST", "MUST NOT", "REQUIRED", "SHALL", "SHALL NOT"},
	SHOULD: {"SHOULD", "SHOULD NOT", "RECOMMENDED", "NOT RECOMMENDED"},
}

var (
	requirementRE = regexp.MustCompile(`\b(MUST|REQUIRED|SHALL)\b`)
	ellipsisRE    = regexp.MustCompile(`\.\.\.|…`)
	// keywordRE matches the keywords of each level.
	keywordRE = func() map[Level]*regexp.Regexp {
		m := map[Level]*regexp.Regexp{}
		for level, ks := range keywords {
			m[level] = regexp.MustCompile(`\b(` + strings.Join(ks, "|") + `)\b`)
		}
		return m
	}()
)

// hasKeyword reports whether s carries one of the keywords of level, as
// words in upper case.
func hasKeyword(s string, level Level) bool { return keywordRE[level].MatchString(s) }

// isRequirement reports whether a sentence's own text states an absolute
// requirement (MUST, MUST NOT, REQUIRED, SHALL, SHALL NOT).
func isRequirement(s string) bool { return requirementRE.MatchString(s) }

func (s specSentence) String() string { return fmt.Sprintf("%s: %q", s.section, s.text) }
