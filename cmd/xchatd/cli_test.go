package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// buildBinaries builds xchatd and xchat as a user would, with go build.
func buildBinaries(t *testing.T) (xchatd, xchat string) {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binaries")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	bin := t.TempDir()
	cmd := exec.Command(goCmd, "build", "-o", bin+string(filepath.Separator), "../../cmd/xchatd", "../../cmd/xchat")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return filepath.Join(bin, "xchatd"), filepath.Join(bin, "xchat")
}

func freeUDPPort(t *testing.T) string {
	c, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	return c.LocalAddr().String()
}

type daemon struct {
	cmd    *exec.Cmd
	stderr *bytes.Buffer
}

// startServe starts xchatd serve and waits for its "serving" line.
func startServe(t *testing.T, xchatd, dir string, args ...string) *daemon {
	t.Helper()
	cmd := exec.Command(xchatd, append([]string{"serve"}, args...)...)
	cmd.Dir = dir
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	d := &daemon{cmd: cmd, stderr: &bytes.Buffer{}}
	cmd.Stderr = d.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	ready := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "serving") {
				ready <- true
				io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- false
	}()
	select {
	case ok := <-ready:
		if !ok {
			t.Fatalf("xchatd exited before serving: %s", d.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("xchatd did not start in 30 s")
	}
	return d
}

// stop sends SIGTERM and requires a clean exit.
func (d *daemon) stop(t *testing.T) {
	t.Helper()
	d.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- d.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("xchatd exited with %v after SIGTERM: %s", err, d.stderr)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("xchatd did not stop in 30 s after SIGTERM")
	}
}

// run runs a command in dir and returns stdout, stderr and the exit code.
func runCmd(t *testing.T, dir, name string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func mustRun(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	out, errOut, code := runCmd(t, dir, name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d: %s", filepath.Base(name), strings.Join(args, " "), code, errOut)
	}
	return out
}

type recvLine struct {
	ID         string `json:"id"`
	From       string `json:"from"`
	FromDevice uint32 `json:"from_device"`
	To         string `json:"to"`
	Text       string `json:"text"`
	SentAt     string `json:"sent_at"`
	Group      string `json:"group"`
	GroupName  string `json:"group_name"`
}

func parseRecv(t *testing.T, out string) []recvLine {
	t.Helper()
	var lines []recvLine
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var r recvLine
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatalf("recv --json line %q: %v", l, err)
		}
		lines = append(lines, r)
	}
	return lines
}

// The README's worked example, typed as a new user would, with a restart of
// the homeserver by SIGTERM in the middle. The errors of each command are
// tested by the scripts in ../xchat/testdata/script.
func TestNewUserSequence(t *testing.T) {
	t.Parallel()
	xchatd, xchat := buildBinaries(t)
	dir := t.TempDir()
	addr := freeUDPPort(t)

	mustRun(t, dir, xchatd, "dev-ca", "--out", "CA", "a.test")
	for _, f := range []string{"CA/ca.pem", "CA/a.test.pem", "CA/a.test.key"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	serveArgs := []string{"--domain", "a.test", "--listen", addr, "--data", "DATA",
		"--tls-cert", "CA/a.test.pem", "--tls-key", "CA/a.test.key"}
	d := startServe(t, xchatd, dir, serveArgs...)

	alice, bob := []string{"--profile", "alice"}, []string{"--profile", "bob"}
	mustRun(t, dir, xchat, append(alice, "register", "alice@a.test", "--server", addr, "--ca", "CA/ca.pem")...)
	mustRun(t, dir, xchat, append(bob, "register", "bob@a.test", "--server", addr, "--ca", "CA/ca.pem")...)
	if out := mustRun(t, dir, xchat, append(alice, "whoami")...); !strings.Contains(out, "alice@a.test") {
		t.Fatalf("whoami: %q", out)
	}
	mustRun(t, dir, xchat, append(alice, "send", "bob@a.test", "hello bob")...)
	got := parseRecv(t, mustRun(t, dir, xchat, append(bob, "recv", "--json", "--wait", "5s")...))
	if len(got) != 1 || got[0].From != "alice@a.test" || got[0].To != "bob@a.test" || got[0].Text != "hello bob" ||
		got[0].ID == "" || got[0].SentAt == "" {
		t.Fatalf("bob received %+v", got)
	}

	// Offline delivery across a restart by SIGTERM.
	mustRun(t, dir, xchat, append(alice, "send", "bob@a.test", "after the restart")...)
	d.stop(t)
	startServe(t, xchatd, dir, serveArgs...)
	got = parseRecv(t, mustRun(t, dir, xchat, append(bob, "recv", "--json", "--wait", "500ms")...))
	if len(got) != 1 || got[0].Text != "after the restart" {
		t.Fatalf("after restart bob received %+v", got)
	}
	if got = parseRecv(t, mustRun(t, dir, xchat, append(bob, "recv", "--json", "--wait", "500ms")...)); len(got) != 0 {
		t.Fatalf("delivered again after ack: %+v", got)
	}

	// Profile files are private.
	err := filepath.Walk(filepath.Join(dir, "bob"), func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() && fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", p, fi.Mode().Perm())
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

// startFederation starts one homeserver per domain, with certificates from
// one development CA in dir/CA and --peer flags for each other, and
// returns their addresses.
func startFederation(t *testing.T, xchatd, dir string, domains ...string) map[string]string {
	t.Helper()
	addrs := map[string]string{}
	for _, d := range domains {
		addrs[d] = freeUDPPort(t)
	}
	mustRun(t, dir, xchatd, append([]string{"dev-ca", "--out", "CA"}, domains...)...)
	for _, d := range domains {
		args := []string{"--domain", d, "--listen", addrs[d], "--data", "data-" + d,
			"--tls-cert", "CA/" + d + ".pem", "--tls-key", "CA/" + d + ".key", "--trust-ca", "CA/ca.pem"}
		for _, p := range domains {
			if p != d {
				args = append(args, "--peer", p+"="+addrs[p])
			}
		}
		startServe(t, xchatd, dir, args...)
	}
	return addrs
}

// The README's federation walk-through: three homeservers from one
// development CA with --peer flags, three users, messages across domains.
func TestFederationWalkthrough(t *testing.T) {
	t.Parallel()
	xchatd, xchat := buildBinaries(t)
	dir := t.TempDir()
	addrs := startFederation(t, xchatd, dir, "a.test", "b.test", "c.test")
	users := map[string]string{"alice": "a.test", "bob": "b.test", "carol": "c.test"}
	for u, d := range users {
		mustRun(t, dir, xchat, "--profile", u, "register", u+"@"+d, "--server", addrs[d], "--ca", "CA/ca.pem")
	}
	mustRun(t, dir, xchat, "--profile", "alice", "send", "bob@b.test", "hello bob, from a.test")
	mustRun(t, dir, xchat, "--profile", "bob", "send", "carol@c.test", "hello carol, from b.test")
	mustRun(t, dir, xchat, "--profile", "carol", "send", "alice@a.test", "hello alice, from c.test")
	for u, from := range map[string]string{"bob": "alice@a.test", "carol": "bob@b.test", "alice": "carol@c.test"} {
		got := parseRecv(t, mustRun(t, dir, xchat, "--profile", u, "recv", "--json", "--wait", "3s"))
		if len(got) != 1 || got[0].From != from || !strings.HasPrefix(got[0].Text, "hello "+u) {
			t.Errorf("%s received %+v, want one message from %s", u, got, from)
		}
	}
}
