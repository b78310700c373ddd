package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var (
	buildOnce   sync.Once
	builtXchatd string
	buildErr    error
	buildDir    string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if buildDir != "" {
		os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// xchatdBinary builds xchatd once for the package's tests.
func xchatdBinary(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds xchatd and runs a load")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	buildOnce.Do(func() {
		if buildDir, buildErr = os.MkdirTemp("", "xchat-bench-test-"); buildErr != nil {
			return
		}
		builtXchatd = filepath.Join(buildDir, "xchatd")
		if out, err := exec.Command(goCmd, "build", "-o", builtXchatd, xchatdPackage).CombinedOutput(); err != nil {
			buildErr = err
			builtXchatd = string(out)
		}
	})
	if buildErr != nil {
		t.Fatalf("go build: %v\n%s", buildErr, builtXchatd)
	}
	return builtXchatd
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// checkClean fails t unless every attempted envelope was accepted and
// delivered exactly once, with sane latencies and server figures.
func checkClean(t *testing.T, res *Result, servers int) {
	t.Helper()
	var table bytes.Buffer
	res.WriteTable(&table)
	t.Logf("\n%s", table.String())
	if res.Sent == 0 || res.SentPerSecond <= 0 || res.DeliveredPerSecond <= 0 {
		t.Errorf("nothing sent: %+v", res)
	}
	if res.Delivered != res.Sent || res.Attempted != res.Sent {
		t.Errorf("attempted %d, sent %d, delivered %d", res.Attempted, res.Sent, res.Delivered)
	}
	if res.Lost != 0 || res.Duplicated != 0 || len(res.Errors) != 0 || res.Failed() {
		t.Errorf("lost %d, duplicated %d, errors %v", res.Lost, res.Duplicated, res.Errors)
	}
	if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("latency %+v", res.Latency)
	}
	if len(res.Servers) != servers {
		t.Fatalf("%d servers reported, want %d", len(res.Servers), servers)
	}
	for _, s := range res.Servers {
		if s.CPUSeconds <= 0 || s.PeakRSSBytes <= 0 || s.ConnectedRSS <= 0 || s.Devices != res.Devices {
			t.Errorf("server stats %+v", s)
		}
	}
	if res.LoadGenerator.CPUSeconds <= 0 || res.LoadGenerator.PeakRSSBytes <= 0 {
		t.Errorf("load generator stats %+v", res.LoadGenerator)
	}
}

func TestMailbox(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Devices, o.Duration, o.Warmup, o.Xchatd = 6, time.Second, 200*time.Millisecond, xchatdBinary(t)
	var progress syncBuffer
	o.Progress = &progress
	res, err := Mailbox(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, res, 1)
	if res.Scenario != "mailbox" || res.Store != "embedded SQLite" {
		t.Errorf("scenario %q, store %q", res.Scenario, res.Store)
	}
	if !strings.Contains(progress.String(), "delivered") {
		t.Errorf("no progress line: %s", progress.String())
	}
}

func TestMailboxRate(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Devices, o.Duration, o.Warmup, o.Xchatd, o.Rate, o.Batch, o.Payload = 3, time.Second, 0, xchatdBinary(t), 200, 2, 700
	res, err := Mailbox(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	// Paced: about 200 envelopes in the second, never far more.
	if res.Sent < 100 || res.Sent > 260 || res.Delivered != res.Sent || len(res.Errors) != 0 {
		t.Errorf("sent %d, delivered %d, errors %v", res.Sent, res.Delivered, res.Errors)
	}
	if res.Bucket != 1024 || res.EnvelopeBytes != 1120+1024+16 {
		t.Errorf("payload 700: bucket %d, envelope bytes %d", res.Bucket, res.EnvelopeBytes)
	}
}

func TestFederation(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Devices, o.Duration, o.Warmup, o.Xchatd, o.Batch = 3, time.Second, 200*time.Millisecond, xchatdBinary(t), 4
	res, err := Federation(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, res, 2)
	if res.Servers[0].Domain != "a.bench.test" || res.Servers[1].Domain != "b.bench.test" {
		t.Errorf("servers %+v", res.Servers)
	}
}

func TestConnections(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Devices, o.Idle, o.Burst, o.Xchatd = 40, 100*time.Millisecond, 2, xchatdBinary(t)
	res, err := Connections(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, res, 1)
	if res.Attempted != 80 {
		t.Errorf("burst of %d envelopes, want 80", res.Attempted)
	}
	if s := res.Servers[0]; s.BytesPerDevice <= 0 || s.ConnectedRSS <= s.IdleRSSBytes {
		t.Errorf("memory per device: %+v", s)
	}
}

func TestPostgres(t *testing.T) {
	t.Parallel()
	db := os.Getenv("TEST_DATABASE_URL")
	if db == "" {
		if os.Getenv("CI") == "true" {
			t.Fatal("CI=true and TEST_DATABASE_URL is unset")
		}
		t.Skip("TEST_DATABASE_URL is unset")
	}
	o := DefaultOptions()
	o.Devices, o.Duration, o.Warmup, o.Xchatd, o.DB = 3, 500*time.Millisecond, 100*time.Millisecond, xchatdBinary(t), db
	res, err := Federation(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	checkClean(t, res, 2)
	if res.Store != "PostgreSQL" {
		t.Errorf("store %q", res.Store)
	}
}

func TestOptionsValidate(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		scenario string
		mod      func(*Options)
	}{
		{"mailbox", func(o *Options) { o.Devices = 0 }},
		{"mailbox", func(o *Options) { o.Bucket = 300 }},
		{"mailbox", func(o *Options) { o.Bucket = 128 }},
		{"mailbox", func(o *Options) { o.Payload = 65536 }},
		{"mailbox", func(o *Options) { o.Batch = 257 }},
		{"mailbox", func(o *Options) { o.Rate = -1 }},
		{"mailbox", func(o *Options) { o.Server = "127.0.0.1:1" }},
		{"connections", func(o *Options) { o.Burst = 0 }},
		{"mailbox", func(o *Options) { o.Warmup = o.Duration }},
		{"federation", func(o *Options) { o.Server, o.Domain = "127.0.0.1:1", "a.test" }},
		{"federation", func(o *Options) { o.PeerServer = "127.0.0.1:1" }},
	} {
		o := DefaultOptions()
		c.mod(&o)
		if _, err := execute(context.Background(), c.scenario, o); err == nil {
			t.Errorf("%s %+v: no error", c.scenario, o)
		}
	}
	o := DefaultOptions()
	o.Payload = 256 // with its 0x80 byte, 257 bytes: the 512 bucket
	if err := o.validate("mailbox"); err != nil || o.Bucket != 512 {
		t.Errorf("payload 256: bucket %d, %v", o.Bucket, err)
	}
}

func TestHistogram(t *testing.T) {
	t.Parallel()
	var h histogram
	if h.quantile(0.5) != 0 {
		t.Fatal("empty histogram")
	}
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Millisecond}, {0.9, 900 * time.Millisecond}, {0.99, 990 * time.Millisecond}, {1, time.Second}} {
		got := h.quantile(c.q)
		if d := got - c.want; d < -c.want/256 || d > c.want/256 {
			t.Errorf("q%v = %v, want %v", c.q, got, c.want)
		}
	}
	if h.maxDuration() != time.Second {
		t.Errorf("max %v", h.maxDuration())
	}
	for us := uint64(0); us < 1<<22; us += 7 {
		i := histIndex(us)
		if lo, hi := histLow(i), histLow(i+1); us < lo || us >= hi {
			t.Fatalf("%d µs in bucket %d [%d, %d)", us, i, lo, hi)
		}
	}
}

func TestReadProc(t *testing.T) {
	t.Parallel()
	if _, err := os.Stat("/proc/self/stat"); err != nil {
		t.Skip("no /proc")
	}
	st, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if st.RSS <= 0 || st.Peak < st.RSS {
		t.Errorf("%+v", st)
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestTrackerAudit(t *testing.T) {
	t.Parallel()
	var tr tracker
	tr.start = time.Now()
	ids := [][16]byte{{1}, {2}, {3}, {4}, {5}}
	for i, id := range ids {
		tr.sent(id, i%2, tr.start)
	}
	tr.answered(ids[0], stAccepted) // delivered twice
	tr.answered(ids[1], stAccepted) // never delivered, to device 1 (connection failed)
	tr.answered(ids[2], stAccepted) // never delivered, to device 0: lost
	tr.answered(ids[3], stRejected) // delivered all the same
	tr.answered(ids[4], stAccepted) // delivered to the wrong device
	tr.deliver(ids[0], 0, time.Now())
	tr.deliver(ids[0], 0, time.Now())
	tr.deliver(ids[3], 1, time.Now())
	tr.deliver(ids[4], 1, time.Now())
	tr.deliver([16]byte{9}, 0, time.Now())
	lost, stranded, rejected := tr.audit(func(dev int) bool { return dev == 1 })
	if lost != 1 || stranded != 1 || rejected != 1 {
		t.Errorf("lost %d, stranded %d, delivered after rejection %d", lost, stranded, rejected)
	}
	if tr.duplicated.Load() != 1 || tr.misdelivered.Load() != 1 || tr.unknown.Load() != 1 || tr.deliveredAccepted.Load() != 2 {
		t.Errorf("duplicated %d, misdelivered %d, unknown %d, delivered %d",
			tr.duplicated.Load(), tr.misdelivered.Load(), tr.unknown.Load(), tr.deliveredAccepted.Load())
	}
}

func TestGroup(t *testing.T) {
	t.Parallel()
	o := DefaultOptions()
	o.Devices, o.Duration, o.Warmup, o.Xchatd, o.Rate = 3, time.Second, 0, xchatdBinary(t), 20
	var progress syncBuffer
	o.Progress = &progress
	res, err := Group(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	if res.Scenario != "group" || res.Messages == 0 || res.Sent != res.Messages*2 || res.Delivered != res.Sent || len(res.Errors) != 0 {
		t.Fatalf("group: %d messages, %d envelopes sent, %d delivered, errors %v", res.Messages, res.Sent, res.Delivered, res.Errors)
	}
	// Paced at 20 messages/s in total: about 20 in the second.
	if res.Messages > 30 {
		t.Errorf("%d messages at 20/s for a second", res.Messages)
	}
	var table strings.Builder
	if err := res.WriteTable(&table); err != nil || !strings.Contains(table.String(), "group messages sent") {
		t.Errorf("table: %v\n%s", err, table.String())
	}
	o.Devices = 21
	if _, err := Group(testCtx(t), o); err == nil {
		t.Error("21 members accepted")
	}
}
