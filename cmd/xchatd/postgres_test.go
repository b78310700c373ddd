package main

import (
	"syscall"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/servertest"
)

// Two xchatd processes for one domain on one PostgreSQL database: users
// connected to different processes exchange messages, and envelopes queued
// for another domain by a process killed with SIGKILL are relayed by the
// other one.
func TestTwoProcessesOnePostgres(t *testing.T) {
	t.Parallel()
	db := servertest.PostgresURL(t)
	xchatd, xchat := buildBinaries(t)
	dir := t.TempDir()
	mustRun(t, dir, xchatd, "dev-ca", "--out", "CA", "a.test", "b.test")
	mustRun(t, dir, xchatd, "migrate", "--db", db)
	a1, a2, b := freeUDPPort(t), freeUDPPort(t), freeUDPPort(t)
	aArgs := func(listen string) []string {
		return []string{"--domain", "a.test", "--listen", listen, "--data", "data-a", "--db", db,
			"--tls-cert", "CA/a.test.pem", "--tls-key", "CA/a.test.key", "--trust-ca", "CA/ca.pem",
			"--peer", "b.test=" + b, "--relay-lease", "2s", "--queue-scan", "1s"}
	}
	bArgs := []string{"--domain", "b.test", "--listen", b, "--data", "data-b",
		"--tls-cert", "CA/b.test.pem", "--tls-key", "CA/b.test.key", "--trust-ca", "CA/ca.pem", "--peer", "a.test=" + a2}
	p1 := startServe(t, xchatd, dir, aArgs(a1)...)
	startServe(t, xchatd, dir, aArgs(a2)...)
	pb := startServe(t, xchatd, dir, bArgs...)

	mustRun(t, dir, xchat, "--profile", "alice", "register", "alice@a.test", "--server", a1, "--ca", "CA/ca.pem")
	mustRun(t, dir, xchat, "--profile", "bob", "register", "bob@a.test", "--server", a2, "--ca", "CA/ca.pem")
	mustRun(t, dir, xchat, "--profile", "carol", "register", "carol@b.test", "--server", b, "--ca", "CA/ca.pem")

	// alice on the first process, bob on the second.
	mustRun(t, dir, xchat, "--profile", "alice", "send", "bob@a.test", "hello bob")
	got := parseRecv(t, mustRun(t, dir, xchat, "--profile", "bob", "recv", "--json", "--wait", "1s"))
	if len(got) != 1 || got[0].From != "alice@a.test" || got[0].Text != "hello bob" {
		t.Fatalf("bob received %+v", got)
	}
	mustRun(t, dir, xchat, "--profile", "bob", "send", "alice@a.test", "hello alice")
	got = parseRecv(t, mustRun(t, dir, xchat, "--profile", "alice", "recv", "--json", "--wait", "1s"))
	if len(got) != 1 || got[0].From != "bob@a.test" || got[0].Text != "hello alice" {
		t.Fatalf("alice received %+v", got)
	}

	// alice knows carol; then b.test goes down and alice writes three
	// times through the first process, which is then killed.
	mustRun(t, dir, xchat, "--profile", "alice", "send", "carol@b.test", "first contact")
	if got := parseRecv(t, mustRun(t, dir, xchat, "--profile", "carol", "recv", "--json", "--wait", "2s")); len(got) != 1 {
		t.Fatalf("carol received %+v", got)
	}
	pb.stop(t)
	for _, text := range []string{"queued 1", "queued 2", "queued 3"} {
		mustRun(t, dir, xchat, "--profile", "alice", "send", "carol@b.test", text)
	}
	p1.cmd.Process.Signal(syscall.SIGKILL)
	p1.cmd.Wait()
	startServe(t, xchatd, dir, bArgs...)

	// The second process relays what the first one queued.
	deadline := time.Now().Add(60 * time.Second)
	var texts []string
	for len(texts) < 3 && time.Now().Before(deadline) {
		for _, m := range parseRecv(t, mustRun(t, dir, xchat, "--profile", "carol", "recv", "--json", "--wait", "2s")) {
			texts = append(texts, m.Text)
		}
	}
	if len(texts) != 3 {
		t.Errorf("carol received %q, want the three queued messages once each", texts)
	}
	seen := map[string]int{}
	for _, x := range texts {
		seen[x]++
	}
	for _, want := range []string{"queued 1", "queued 2", "queued 3"} {
		if seen[want] != 1 {
			t.Errorf("carol received %q %d times", want, seen[want])
		}
	}
}
