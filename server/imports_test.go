package server_test

import (
	"os/exec"
	"strings"
	"testing"
)

// The homeserver binary links no client code: nothing that seals or opens
// envelopes (spec/16-security.md).
func TestServerLinksNoClientCode(t *testing.T) {
	t.Parallel()
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	out, err := exec.Command(goCmd, "list", "-deps", "../cmd/xchatd").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/xchat-im/xchat/client") {
			t.Errorf("xchatd links %s", pkg)
		}
	}
	if !strings.Contains(string(out), "github.com/xchat-im/xchat/server\n") {
		t.Fatalf("go list output does not list the server package:\n%s", out)
	}
}
