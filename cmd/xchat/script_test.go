package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/xchat-im/xchat/cmd/internal/clitest"
)

// TestMain lets the test binary act as the xchat command of the scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"xchat": main})
}

// The scripts in testdata/script run xchat, as this test binary, against
// a real xchatd built from ../xchatd: every script gets its own homeserver
// for a.test ($SERVER, trusted with --ca $CA; see clitest.Params).
func TestScripts(t *testing.T) {
	t.Parallel()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH to build xchatd")
	}
	bin := t.TempDir()
	if out, err := exec.Command(goCmd, "build", "-o", bin, "../xchatd").CombinedOutput(); err != nil {
		t.Fatalf("go build xchatd: %v\n%s", err, out)
	}
	xchatd := filepath.Join(bin, "xchatd")
	p := clitest.Params(func() string { return xchatd })
	p.Dir = filepath.Join("testdata", "script")
	p.Setup = prependPath(p.Setup, bin)
	p.Cmds["setmatch"] = cmdSetmatch
	p.Cmds["sparsefile"] = cmdSparsefile
	testscript.Run(t, p)
}

// cmdSetmatch is "setmatch NAME REGEXP": $NAME becomes the first
// submatch of REGEXP in the previous command's stdout (an ID in a JSON
// line).
func cmdSetmatch(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: setmatch NAME REGEXP")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("no match for %s in stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}

// cmdSparsefile is "sparsefile NAME SIZE": it makes a file of SIZE bytes
// that takes no space on disk (a file above the largest a user may send).
func cmdSparsefile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: sparsefile NAME SIZE")
	}
	size, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	f, err := os.Create(ts.MkAbs(args[0]))
	ts.Check(err)
	ts.Check(f.Truncate(size))
	ts.Check(f.Close())
}

// prependPath wraps setup to put dir first on the scripts' PATH, so that
// scripts run the xchatd built there.
func prependPath(setup func(*testscript.Env) error, dir string) func(*testscript.Env) error {
	return func(env *testscript.Env) error {
		env.Setenv("PATH", dir+string(filepath.ListSeparator)+env.Getenv("PATH"))
		return setup(env)
	}
}
