package main

import (
	"os/exec"
	"path/filepath"
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
	testscript.Run(t, p)
}

// prependPath wraps setup to put dir first on the scripts' PATH, so that
// scripts run the xchatd built there.
func prependPath(setup func(*testscript.Env) error, dir string) func(*testscript.Env) error {
	return func(env *testscript.Env) error {
		env.Setenv("PATH", dir+string(filepath.ListSeparator)+env.Getenv("PATH"))
		return setup(env)
	}
}
