package federation_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/servertest"
)

// Messages travel between every pair of three real homeservers.
func TestMessagesBetweenThreeDomains(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test", "c.test")
	alice := register(t, fed["a.test"], "alice@a.test")
	bob := register(t, fed["b.test"], "bob@b.test")
	carol := register(t, fed["c.test"], "carol@c.test")

	alice.send("bob@b.test", "hello bob")
	got := bob.receiveUntil(1, 30*time.Second)
	if len(got) != 1 || got[0].From != "alice@a.test" || got[0].Text != "hello bob" || !got[0].RequestLane {
		t.Fatalf("bob got %+v", got)
	}
	bob.send("alice@a.test", "hi alice")
	got = alice.receiveUntil(1, 30*time.Second)
	if len(got) != 1 || got[0].From != "bob@b.test" || got[0].Text != "hi alice" || got[0].RequestLane {
		t.Fatalf("alice got %+v", got)
	}

	pairs := []struct {
		from, to *user
	}{{alice, carol}, {carol, alice}, {bob, carol}, {carol, bob}}
	for _, p := range pairs {
		p.from.send(p.to.address, "from "+p.from.address)
	}
	want := map[string][]string{
		carol.address: {"from alice@a.test", "from bob@b.test"},
		alice.address: {"from carol@c.test"},
		bob.address:   {"from carol@c.test"},
	}
	for _, u := range []*user{carol, alice, bob} {
		got := u.receiveUntil(len(want[u.address]), 30*time.Second)
		texts := map[string]string{}
		for _, m := range got {
			texts[m.Text] = m.From
		}
		if len(got) != len(want[u.address]) {
			t.Errorf("%s got %d messages, want %d: %+v", u.address, len(got), len(want[u.address]), got)
		}
		for _, w := range want[u.address] {
			if from, ok := texts[w]; !ok || "from "+from != w {
				t.Errorf("%s did not get %q from its sender (got %v)", u.address, w, texts)
			}
		}
	}
}

// Before bob fetches it, nothing that b.test wrote names alice: no file of
// its data directory (the database, its WAL, keys) and no log line.
func TestDestinationNeverLearnsSender(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	a, b := fed["a.test"], fed["b.test"]
	alice := register(t, a, "alice@a.test")
	register(t, b, "bob@b.test")
	alice.send("bob@b.test", "sealed across domains")

	// Wait until b.test has stored the envelope: its database or WAL grows
	// by at least a sealed envelope's worth of bytes.
	needle := []byte("alice")
	deadline := time.Now().Add(30 * time.Second)
	for !storedAt(t, b.Data) {
		if time.Now().After(deadline) {
			t.Fatal("b.test did not store the relayed envelope in 30 s")
		}
		time.Sleep(20 * time.Millisecond) // polling the files with a deadline
	}
	err := filepath.Walk(b.Data, func(path string, fi os.FileInfo, err error) error {
		if err != nil || fi.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.Contains(data, needle) {
			t.Errorf("%s holds %q", path, needle)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range bytes.Split(b.Logs(), []byte("\n")) {
		if bytes.Contains(line, needle) {
			t.Errorf("b.test logged %q: %s", needle, line)
		}
	}
}

// storedAt reports whether the homeserver with data directory dir holds an
// envelope in a mailbox.
func storedAt(t *testing.T, dir string) bool {
	t.Helper()
	return servertest.MailboxCount(t, filepath.Join(dir, "xchatd.db")) > 0
}
