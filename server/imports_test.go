package server_test

import (
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/xchat-im/xchat"

// goList returns the packages that match patterns, run from the
// directory of this test, with their direct and transitive imports (test
// files excluded).
func goList(t *testing.T, patterns ...string) map[string]listedPackage {
	t.Helper()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	cmd := exec.Command(goCmd, append([]string{"list", "-json=ImportPath,Imports,Deps"}, patterns...)...)
	out, err := cmd.Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("go list: %v\n%s", err, ee.Stderr)
		}
		t.Fatalf("go list: %v", err)
	}
	pkgs := map[string]listedPackage{}
	dec := json.NewDecoder(strings.NewReader(string(out)))
	for {
		var p listedPackage
		if err := dec.Decode(&p); err == io.EOF {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		pkgs[p.ImportPath] = p
	}
	return pkgs
}

type listedPackage struct {
	ImportPath string
	Imports    []string // direct
	Deps       []string // transitive
}

// in reports whether package path is dir of the module or below it.
func in(path, dir string) bool {
	return path == module+"/"+dir || strings.HasPrefix(path, module+"/"+dir+"/")
}

// The homeserver binary links no client code: nothing that seals or opens
// envelopes (spec/16-security.md).
func TestServerLinksNoClientCode(t *testing.T) {
	t.Parallel()
	pkgs := goList(t, "../cmd/xchatd", "../...")
	xchatd, ok := pkgs[module+"/cmd/xchatd"]
	if !ok || !slices.Contains(xchatd.Deps, module+"/server") {
		t.Fatalf("go list does not show xchatd linking the server package: %+v", xchatd)
	}
	for path, p := range pkgs {
		if path != xchatd.ImportPath && !in(path, "server") && !in(path, "federation") {
			continue
		}
		for _, d := range p.Deps {
			if in(d, "client") {
				t.Errorf("%s links %s", path, d)
			}
		}
	}
}

// Imports between the homeserver and federation run one way. Both build on
// the shared leaves server/store (the store contract, the outbound queue
// included) and server/ratelimit; federation imports nothing else of
// server/, server imports nothing of federation, and server/daemon is the
// one package of server/ that imports federation and wires the two
// together. (Tests may import anything.)
func TestServerAndFederationImportsRunOneWay(t *testing.T) {
	t.Parallel()
	pkgs := goList(t, "../...")
	for _, want := range []string{"server", "federation", "server/daemon", "server/store", "server/ratelimit"} {
		if _, ok := pkgs[module+"/"+want]; !ok {
			t.Fatalf("go list does not list %s", want)
		}
	}
	leaves := []string{module + "/server/store", module + "/server/ratelimit"}
	// Importers of federation besides server/daemon: xchatd takes the
	// defaults of its relay flags from it.
	importers := []string{module + "/server/daemon", module + "/cmd/xchatd"}
	for path, p := range pkgs {
		if path == module+"/federation" {
			for _, d := range p.Deps {
				if strings.HasPrefix(d, module+"/") && !in(d, "spec") && !slices.Contains(leaves, d) {
					t.Errorf("federation depends on %s; of the module it may use spec/, server/store and server/ratelimit only", d)
				}
			}
		}
		if slices.Contains(leaves, path) {
			for _, d := range p.Deps {
				if strings.HasPrefix(d, module+"/") && !in(d, "spec") {
					t.Errorf("%s, shared by server and federation, depends on %s", path, d)
				}
			}
		}
		if slices.Contains(p.Imports, module+"/federation") && !slices.Contains(importers, path) {
			t.Errorf("%s imports federation; only server/daemon wires it", path)
		}
		if in(path, "server") && path != module+"/server/daemon" && path != module+"/server/servertest" &&
			slices.Contains(p.Deps, module+"/federation") {
			t.Errorf("%s depends on federation", path)
		}
	}
}
