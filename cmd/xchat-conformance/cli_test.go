package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/xchat-im/xchat/conformance"
)

func TestList(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"list"}, &out, &errOut); code != 0 {
		t.Fatalf("exit %d: %s", code, errOut.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(conformance.Tests())+1 {
		t.Fatalf("%d lines for %d tests", len(lines), len(conformance.Tests()))
	}
	if len(conformance.Tests()) < 80 {
		t.Errorf("%d tests, want at least 80", len(conformance.Tests()))
	}
	for _, tt := range conformance.Tests() {
		if tt.Cite == "" || tt.Summary == "" || (tt.Level != conformance.MUST && tt.Level != conformance.SHOULD) {
			t.Errorf("%s: level %q, summary %q, cite %q", tt.ID, tt.Level, tt.Summary, tt.Cite)
		}
		if !strings.HasPrefix(tt.ID, tt.Section+"/") {
			t.Errorf("%s is not in section %s", tt.ID, tt.Section)
		}
	}
	out.Reset()
	if code := run(context.Background(), []string{"list", "7.12"}, &out, &errOut); code != 0 || !strings.Contains(out.String(), "7.12/1 ") || strings.Contains(out.String(), "7.11/") {
		t.Fatalf("list 7.12: exit %d\n%s", code, out.String())
	}
}

func TestUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"run", "--domain", "a.test"},
		{"run", "--server", "127.0.0.1:1", "--domain", "a.test", "99.9/1"},
		{"run", "--server", "127.0.0.1:1", "--domain", "a.test", "--peer-domain", "p.test"},
		{"list", "99"},
	} {
		var out, errOut bytes.Buffer
		if code := run(context.Background(), args, &out, &errOut); code != 2 || !strings.HasPrefix(errOut.String(), "xchat-conformance: ") {
			t.Errorf("%q: exit %d, stderr %q", args, code, errOut.String())
		}
	}
}
