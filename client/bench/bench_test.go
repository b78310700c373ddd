package bench

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestMailbox(t *testing.T) {
	if testing.Short() {
		t.Skip("builds xchatd and runs a load for 2 s")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	xchatd := filepath.Join(t.TempDir(), "xchatd")
	if out, err := exec.Command(goCmd, "build", "-o", xchatd, xchatdPackage).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	o := DefaultOptions()
	o.Devices, o.Duration, o.Xchatd = 10, 2*time.Second, xchatd
	var progress bytes.Buffer
	o.Progress = &progress
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := Mailbox(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	var table bytes.Buffer
	res.WriteTable(&table)
	t.Logf("\n%s", table.String())
	if res.Sent == 0 || res.SentPerSecond <= 0 || res.DeliveredPerSecond <= 0 {
		t.Errorf("nothing sent: %+v", res)
	}
	if res.Delivered != res.Sent || res.Attempted != res.Sent {
		t.Errorf("attempted %d, sent %d, delivered %d", res.Attempted, res.Sent, res.Delivered)
	}
	if res.Lost != 0 || res.Duplicated != 0 || len(res.Errors) != 0 {
		t.Errorf("lost %d, duplicated %d, errors %v", res.Lost, res.Duplicated, res.Errors)
	}
	if res.Latency.P50 <= 0 || res.Latency.P50 > res.Latency.P99 || res.Latency.P99 > res.Latency.Max {
		t.Errorf("latency %+v", res.Latency)
	}
	if s := res.Server; s == nil || s.CPUSeconds <= 0 || s.PeakRSSBytes <= 0 {
		t.Errorf("server stats %+v", s)
	}
	if !strings.Contains(progress.String(), "delivered") {
		t.Errorf("no progress line: %s", progress.String())
	}
}

func TestMailboxRate(t *testing.T) {
	if testing.Short() {
		t.Skip("builds xchatd and runs a load")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command on PATH")
	}
	xchatd := filepath.Join(t.TempDir(), "xchatd")
	if out, err := exec.Command(goCmd, "build", "-o", xchatd, xchatdPackage).CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	o := DefaultOptions()
	o.Devices, o.Duration, o.Xchatd, o.Rate, o.Batch, o.Bucket = 3, time.Second, xchatd, 200, 2, 1024
	res, err := Mailbox(context.Background(), o)
	if err != nil {
		t.Fatal(err)
	}
	// Paced: about 200 envelopes in the second, never far more.
	if res.Sent < 100 || res.Sent > 260 || res.Delivered != res.Sent || len(res.Errors) != 0 {
		t.Errorf("sent %d, delivered %d, errors %v", res.Sent, res.Delivered, res.Errors)
	}
	if res.EnvelopeBytes != 1120+1024+16 {
		t.Errorf("envelope bytes %d", res.EnvelopeBytes)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, mod := range []func(*Options){
		func(o *Options) { o.Devices = 0 },
		func(o *Options) { o.Bucket = 300 },
		func(o *Options) { o.Bucket = 128 },
		func(o *Options) { o.Batch = 257 },
		func(o *Options) { o.Rate = -1 },
		func(o *Options) { o.Server = "127.0.0.1:1" },
	} {
		o := DefaultOptions()
		mod(&o)
		if _, err := Mailbox(context.Background(), o); err == nil {
			t.Errorf("%+v: no error", o)
		}
	}
}

func TestHistogram(t *testing.T) {
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
