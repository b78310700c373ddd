package bench

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// TestCrash kills xchatd three times under load, on each store and on the
// sending side of a federation, and checks that no envelope acknowledged
// to its sender is lost and none is delivered again after the server
// confirmed the recipient's acknowledgement (with federation: none that a
// kill with a relay in flight does not explain).
func TestCrash(t *testing.T) {
	xchatd := xchatdBinary(t)
	cases := []struct {
		name       string
		db         string
		federation bool
	}{
		{name: "sqlite"},
		{name: "postgres", db: os.Getenv("TEST_DATABASE_URL")},
		{name: "federation", federation: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			if c.name == "postgres" && c.db == "" {
				t.Skip("TEST_DATABASE_URL not set")
			}
			o := DefaultCrashOptions()
			o.Xchatd, o.DB, o.Federation = xchatd, c.db, c.federation
			o.Duration, o.Kills, o.Devices, o.Concurrency = 6*time.Second, 3, 4, 4
			o.Drain = 30 * time.Second
			res, err := Crash(testCtx(t), o)
			if err != nil {
				t.Fatal(err)
			}
			var table bytes.Buffer
			res.WriteTable(&table)
			t.Logf("\n%s", table.String())
			if res.Kills != 3 || res.RestartP50 <= 0 || res.RestartMax < res.RestartP50 || res.Reconnects == 0 {
				t.Errorf("kills %d, restart p50 %v ms, max %v ms, reconnects %d", res.Kills, res.RestartP50, res.RestartMax, res.Reconnects)
			}
			if res.Acknowledged == 0 || res.Received != res.Acknowledged || res.Lost != 0 {
				t.Errorf("acknowledged %d, received %d, lost %d", res.Acknowledged, res.Received, res.Lost)
			}
			if res.DeliveredAfterAck != res.ReRelayedAfterAck || (!c.federation && res.DeliveredAfterAck != 0) {
				t.Errorf("delivered after ack %d (relayed again %d)", res.DeliveredAfterAck, res.ReRelayedAfterAck)
			}
			if res.Failed() {
				t.Errorf("errors: %v", res.Errors)
			}
		})
	}
}

// TestAfterAckNearKill checks how deliveries after an acknowledgement are
// related to the kills.
func TestAfterAckNearKill(t *testing.T) {
	r := &crashRun{}
	if g := r.afterAckNearKill([]int64{1}); g != nil {
		t.Fatalf("no deliveries after ack: %+v", g)
	}
	s := int64(time.Second)
	r.tr.afterAckFirst = []int64{10 * s, 12 * s, 30 * s}
	g := r.afterAckNearKill([]int64{11 * s, 20 * s})
	// 10 s and 12 s are a second from the kill at 11 s; 30 s is 10 s
	// after the kill at 20 s.
	if g.Envelopes != 3 || g.Near != 2 || g.Kills != 1 || g.MinMS != -10000 || g.MaxMS != 1000 {
		t.Errorf("%+v", g)
	}
}

func TestCrashOptions(t *testing.T) {
	o := DefaultCrashOptions()
	o.Duration, o.Kills = 10*time.Second, 4
	if err := o.validate(); err != nil {
		t.Fatal(err)
	}
	if o.KillMin != time.Second || o.KillMax != 3*time.Second || o.KillSide != "" {
		t.Errorf("kill window [%s, %s], side %q", o.KillMin, o.KillMax, o.KillSide)
	}
	for _, bad := range []func(*CrashOptions){
		func(o *CrashOptions) { o.Kills = -1 },
		func(o *CrashOptions) { o.KillMin, o.KillMax = 2*time.Second, time.Second },
		func(o *CrashOptions) { o.Federation, o.KillSide = true, "nobody" },
		func(o *CrashOptions) { o.Batch = 0 },
	} {
		o := DefaultCrashOptions()
		bad(&o)
		if err := o.validate(); err == nil {
			t.Errorf("accepted %+v", o)
		}
	}
	var b bytes.Buffer
	(&CrashResult{Store: "embedded SQLite", Federation: true, KillSide: "sender", Kills: 2,
		Errors: map[string]int64{"lost": 1}}).WriteTable(&b)
	for _, want := range []string{"sender side's killed", "relayed again after ack", "error: lost"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, b.String())
		}
	}
}

// TestDeliveredAfterAck checks which deliveries after an acknowledgement
// count as violations.
func TestDeliveredAfterAck(t *testing.T) {
	var tr crashTracker
	a, b, c := [16]byte{1}, [16]byte{2}, [16]byte{3}
	for _, id := range [][16]byte{a, b, c} {
		tr.sent(id, 0)
		tr.answered(id, crAcknowledged)
		tr.deliver(id, 0, 1)
	}
	tr.deliver(a, 0, 2) // connection 2, before its ack: legal
	tr.acked(a, 2)
	tr.acked(b, 1)
	tr.deliver(a, 0, 2) // read after the ack's answer on the same connection: legal
	tr.deliver(b, 0, 2) // a later connection than its ack's: the violation
	tr.acked(c, 1)
	tr.with(c, func(rec *crashRecord, _ bool) { rec.ackAt -= int64(2 * raceWindow) })
	tr.deliver(c, 0, 1) // the same connection, long after the answer: the violation
	if got := [4]int64{tr.received.Load(), tr.beforeAck.Load(), tr.raced.Load(), tr.afterAck.Load()}; got != [4]int64{3, 1, 1, 2} {
		t.Errorf("received, before ack, pushed while acked, after ack: %v, want [3 1 1 2]", got)
	}
	if lost, received, _ := tr.audit(); lost != 0 || received != 3 {
		t.Errorf("lost %d, received %d", lost, received)
	}
}
