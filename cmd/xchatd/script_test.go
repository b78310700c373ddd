package main

import (
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/xchat-im/xchat/cmd/internal/clitest"
)

// TestMain lets the test binary act as the xchatd command of the scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){"xchatd": main})
}

// The scripts in testdata/script run xchatd, as this test binary; every
// script gets a homeserver for a.test ($SERVER) started by the same binary
// (see clitest.Params).
func TestScripts(t *testing.T) {
	t.Parallel()
	xchatd, err := exec.LookPath("xchatd") // installed on PATH by testscript.Main
	if err != nil {
		t.Fatal(err)
	}
	p := clitest.Params(func() string { return xchatd })
	p.Dir = filepath.Join("testdata", "script")
	testscript.Run(t, p)
}
