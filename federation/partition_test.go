package federation_test

import (
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/servertest"
)

// With c.test down, alice's message to carol is accepted (queued at a.test),
// survives a restart of a.test, and reaches carol exactly once when c.test
// is back.
func TestPartitionQueuesAndDeliversOnce(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "c.test")
	a, c := fed["a.test"], fed["c.test"]
	alice := register(t, a, "alice@a.test")
	carol := register(t, c, "carol@c.test")
	// They have talked before: alice knows carol's devices.
	alice.send("carol@c.test", "before")
	if got := carol.receiveUntil(1, 30*time.Second); len(got) != 1 {
		t.Fatalf("carol got %+v before the partition", got)
	}

	c.Stop()
	if err := alice.trySend("carol@c.test", "during the partition"); err != nil {
		t.Fatalf("send while c.test is down: %v", err)
	}
	a.Restart()
	c.Restart()

	got := carol.receiveUntil(1, 30*time.Second)
	if len(got) != 1 || got[0].Text != "during the partition" || got[0].From != "alice@a.test" {
		t.Fatalf("carol got %+v after the partition", got)
	}
	// Exactly once: nothing more arrives.
	if more := carol.receiveAll(); len(more) != 0 {
		t.Fatalf("carol got duplicates: %+v", more)
	}
}
