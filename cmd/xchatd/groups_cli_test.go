package main

import (
	"bufio"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"
)

// recvUntil runs 'xchat recv --json' until n messages arrived or 30 s
// passed (federation relays asynchronously).
func recvUntil(t *testing.T, dir, xchat, profile string, n int) []recvLine {
	t.Helper()
	var got []recvLine
	for deadline := time.Now().Add(30 * time.Second); len(got) < n && time.Now().Before(deadline); {
		got = append(got, parseRecv(t, mustRun(t, dir, xchat, "--profile", profile, "recv", "--json", "--wait", "500ms"))...)
	}
	return got
}

func texts(ls []recvLine) []string {
	var out []string
	for _, l := range ls {
		out = append(out, l.From+": "+l.Text)
	}
	return out
}

// Groups and linked devices with the binaries, across three domains: a
// group is created, used, changed and listed; a second device of alice
// is linked with a code and receives what is sent after, nothing before.
func TestGroupsAndDevicesWalkthrough(t *testing.T) {
	t.Parallel()
	xchatd, xchat := buildBinaries(t)
	dir := t.TempDir()
	addrs := startFederation(t, xchatd, dir, "a.test", "b.test", "c.test")
	for u, d := range map[string]string{"alice": "a.test", "bob": "b.test", "carol": "c.test"} {
		mustRun(t, dir, xchat, "--profile", u, "register", u+"@"+d, "--server", addrs[d], "--ca", "CA/ca.pem")
	}
	id := strings.TrimSpace(mustRun(t, dir, xchat, "--profile", "alice", "group", "create", "trio", "bob@b.test", "carol@c.test"))
	if len(id) != 32 {
		t.Fatalf("group create printed %q, want a group ID", id)
	}
	mustRun(t, dir, xchat, "--profile", "alice", "send", "--group", id, "hello trio")
	for _, u := range []string{"bob", "carol"} {
		got := recvUntil(t, dir, xchat, u, 1)
		if len(got) != 1 || got[0].Text != "hello trio" || got[0].From != "alice@a.test" || got[0].Group != id || got[0].GroupName != "trio" {
			t.Fatalf("%s received %+v", u, got)
		}
	}
	if out := mustRun(t, dir, xchat, "--profile", "bob", "group", "list"); !strings.Contains(out, id) || !strings.Contains(out, `"trio"`) ||
		!strings.Contains(out, "alice@a.test") || !strings.Contains(out, "carol@c.test") {
		t.Fatalf("bob's group list: %q", out)
	}
	mustRun(t, dir, xchat, "--profile", "alice", "group", "remove", id, "carol@c.test")
	mustRun(t, dir, xchat, "--profile", "alice", "send", "--group", id, "just us")
	if got := recvUntil(t, dir, xchat, "bob", 1); len(got) != 1 || got[0].Text != "just us" {
		t.Fatalf("bob received %+v", got)
	}
	// Carol's device learns of her removal and can no longer send.
	for deadline := time.Now().Add(30 * time.Second); ; {
		mustRun(t, dir, xchat, "--profile", "carol", "recv", "--wait", "500ms")
		if strings.Contains(mustRun(t, dir, xchat, "--profile", "carol", "group", "list"), "(left)") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("carol's device did not process her removal")
		}
	}
	if _, errOut, code := runCmd(t, dir, xchat, "--profile", "carol", "send", "--group", id, "still here?"); code == 0 ||
		!strings.Contains(errOut, "no longer a member") {
		t.Fatalf("a removed member sent: exit %d, %q", code, errOut)
	}
	mustRun(t, dir, xchat, "--profile", "alice", "group", "add", id, "carol@c.test")
	mustRun(t, dir, xchat, "--profile", "alice", "send", "--group", id, "welcome back")
	if got := recvUntil(t, dir, xchat, "carol", 1); !slices.Equal(texts(got), []string{"alice@a.test: welcome back"}) {
		t.Fatalf("carol received %q after being added again", texts(got))
	}

	// Linking: alice shows a code and waits; her new profile registers
	// with it.
	mustRun(t, dir, xchat, "--profile", "bob", "send", "alice@a.test", "before the link")
	link := exec.Command(xchat, "--profile", "alice", "device", "link", "--wait", "60s")
	link.Dir = dir
	stdout, err := link.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := link.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { link.Process.Kill(); link.Wait() })
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() {
		t.Fatal("device link printed no code")
	}
	code := lines.Text()
	if out := mustRun(t, dir, xchat, "--profile", "alice2", "register", "--link", code, "--server", addrs["a.test"], "--ca", "CA/ca.pem"); !strings.Contains(out, "alice@a.test (device 2)") {
		t.Fatalf("register --link printed %q", out)
	}
	if !lines.Scan() || lines.Text() != "linked device 2" {
		t.Fatalf("device link printed %q after the new device registered", lines.Text())
	}
	if err := link.Wait(); err != nil {
		t.Fatalf("device link: %v", err)
	}
	// Bob's device processes alice's commit that added her new device
	// before he sends (a member that is behind sends to the devices of
	// the epoch it is in).
	for deadline := time.Now().Add(30 * time.Second); ; {
		mustRun(t, dir, xchat, "--profile", "bob", "recv", "--wait", "500ms")
		if strings.Contains(mustRun(t, dir, xchat, "--profile", "bob", "group", "list"), "direct with alice@a.test epoch 2, 3 devices") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("bob's device did not process the commit adding alice's new device")
		}
	}
	mustRun(t, dir, xchat, "--profile", "bob", "send", "alice@a.test", "after the link")
	got := recvUntil(t, dir, xchat, "alice2", 1)
	if !slices.Equal(texts(got), []string{"bob@b.test: after the link"}) {
		t.Fatalf("the new device received %q, want only what was sent after it was linked", texts(got))
	}
	mustRun(t, dir, xchat, "--profile", "alice", "send", "bob@b.test", "from device 1")
	if got := recvUntil(t, dir, xchat, "alice2", 1); len(got) != 1 || got[0].Text != "from device 1" || got[0].FromDevice != 1 {
		t.Fatalf("alice's other device received %+v", got)
	}
}
