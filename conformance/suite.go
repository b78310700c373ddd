package conformance

import (
	"cmp"
	"context"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Level is how strongly the specification requires what a test checks.
type Level string

// Levels, as BCP 14 uses them.
const (
	MUST   Level = "MUST"
	SHOULD Level = "SHOULD"
)

// Need is something a test needs from the configuration.
type Need string

// Needs.
const (
	// NeedPeer: the federation peer (Config.Peer).
	NeedPeer Need = "peer"
	// NeedInvite: a registration policy of "invite" and a spare invite.
	NeedInvite Need = "invite"
	// NeedOpen: a registration policy of "open".
	NeedOpen Need = "open"
	// NeedClosed: a registration policy of "closed".
	NeedClosed Need = "closed"
	// NeedRegister: registering a fresh account (open policy, or invite
	// with a spare token).
	NeedRegister Need = "register"
)

// Test is one conformance test: a row of the table of its section (see
// the package documentation).
type Test struct {
	ID      string // "<section>/<n>", for example "7.12/3"
	Section string // "7.12", taken from ID
	Level   Level
	Summary string // one line: what the test checks
	Cite    string // the sentence of the specification it checks
	Needs   []Need
	// Slow marks a test that takes seconds by design (a deadline); the
	// runner starts slow tests first.
	Slow bool
	run  func(t *T)  // the test function, test<id>_<Name>, or testRaw
	raw  *rawRequest // the data of testRaw
}

// registry is every test: the rows of the tables of the tests_*.go files,
// one file per section of the specification.
var registry = gather(conventionsTests, transportTests, framingTests, addressingTests, accountsTests,
	keyDirectoryTests, envelopesTests, federationTests, filesTests, callsTests, limitsTests)

// gather joins tables and sets each test's section from its id.
func gather(tables ...[]*Test) []*Test {
	var out []*Test
	for _, table := range tables {
		for _, t := range table {
			t.Section, _, _ = strings.Cut(t.ID, "/")
			out = append(out, t)
		}
	}
	return out
}

// Tests returns every test, ordered by section and number.
func Tests() []*Test {
	out := slices.Clone(registry)
	slices.SortFunc(out, func(a, b *Test) int { return compareIDs(a.ID, b.ID) })
	return out
}

// compareIDs orders by section, then number: "7.9/10" before "7.12/3",
// "3.3/6" before "3.3.1/1".
func compareIDs(a, b string) int {
	sa, na, _ := strings.Cut(a, "/")
	sb, nb, _ := strings.Cut(b, "/")
	pa, pb := idParts(sa), idParts(sb)
	for i := 0; i < len(pa) && i < len(pb); i++ {
		if c := cmp.Compare(pa[i], pb[i]); c != 0 {
			return c
		}
	}
	if c := cmp.Compare(len(pa), len(pb)); c != 0 {
		return c
	}
	x, _ := strconv.Atoi(na)
	y, _ := strconv.Atoi(nb)
	return cmp.Compare(x, y)
}

func idParts(section string) []int {
	var out []int
	for _, f := range strings.Split(section, ".") {
		n, _ := strconv.Atoi(f)
		out = append(out, n)
	}
	return out
}

// Select returns the tests named by patterns: a test id ("7.12/3") or a
// section ("7.12", which also selects its subsections such as "7.12.1"; "7"
// selects the whole of section 7). No pattern selects every test. A pattern
// that selects nothing is an error.
func Select(patterns []string) ([]*Test, error) {
	all := Tests()
	if len(patterns) == 0 {
		return all, nil
	}
	var out []*Test
	for _, p := range patterns {
		n := 0
		for _, t := range all {
			if t.ID == p || t.Section == p || strings.HasPrefix(t.Section, p+".") {
				if !slices.Contains(out, t) {
					out = append(out, t)
				}
				n++
			}
		}
		if n == 0 {
			return nil, fmt.Errorf("conformance: no test or section %q", p)
		}
	}
	slices.SortFunc(out, func(a, b *Test) int { return compareIDs(a.ID, b.ID) })
	return out, nil
}

// T is the handle a running test gets.
type T struct {
	ctx  context.Context
	env  *env
	test *Test

	mu       sync.Mutex
	failed   bool
	skipped  bool
	msgs     []string
	cleanups []func()
}

// Context is the test's context, ended at its deadline.
func (t *T) Context() context.Context { return t.ctx }

// Errorf records a failure and continues.
func (t *T) Errorf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failed = true
	t.msgs = append(t.msgs, fmt.Sprintf(format, args...))
}

// Fatalf records a failure and ends the test.
func (t *T) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	runtime.Goexit()
}

// Skipf ends the test as skipped.
func (t *T) Skipf(format string, args ...any) {
	t.mu.Lock()
	t.skipped = true
	t.msgs = append(t.msgs, fmt.Sprintf(format, args...))
	t.mu.Unlock()
	runtime.Goexit()
}

// Cleanup registers f to run when the test ends, last registered first.
func (t *T) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

// must ends the test when err is not nil.
func (t *T) must(err error, what string) {
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// Status is the outcome of a test.
type Status string

// Outcomes.
const (
	Pass Status = "pass"
	Fail Status = "fail"
	Skip Status = "skip"
)

// Result is the outcome of one test.
type Result struct {
	ID       string        `json:"id"`
	Section  string        `json:"section"`
	Level    Level         `json:"level"`
	Summary  string        `json:"summary"`
	Cite     string        `json:"cite"`
	Status   Status        `json:"status"`
	Message  string        `json:"message,omitempty"`
	Duration time.Duration `json:"-"`
	Millis   int64         `json:"duration_ms"`
}

// runOne runs test t with a deadline and returns its result.
func runOne(ctx context.Context, e *env, test *Test, timeout time.Duration) Result {
	start := time.Now()
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	t := &T{ctx: ctx, env: e, test: test}
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				t.Errorf("panic: %v", r)
			}
		}()
		defer t.runCleanups()
		if reason := e.missing(test.Needs); reason != "" {
			t.Skipf("%s", reason)
		}
		test.run(t)
	}()
	select {
	case <-done:
	case <-time.After(timeout + 5*time.Second):
		t.Errorf("did not finish within %s", timeout)
	}
	r := Result{ID: test.ID, Section: test.Section, Level: test.Level, Summary: test.Summary, Cite: test.Cite,
		Status: Pass, Duration: time.Since(start)}
	r.Millis = r.Duration.Milliseconds()
	t.mu.Lock()
	defer t.mu.Unlock()
	switch {
	case t.failed:
		r.Status = Fail
	case t.skipped:
		r.Status = Skip
	}
	r.Message = strings.Join(t.msgs, "; ")
	return r
}

func (t *T) runCleanups() {
	t.mu.Lock()
	cs := t.cleanups
	t.cleanups = nil
	t.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
}
