// Package bench is the load generator behind cmd/xchat-bench. It drives
// homeservers over the raw wire protocol with many devices and measures
// throughput, send-to-delivery latency and the servers' CPU and memory,
// counting every envelope from send to delivery.
package bench

import (
	"context"
	crand "crypto/rand"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// Options configure a run.
type Options struct {
	Devices     int           // devices connected to the homeserver
	Duration    time.Duration // how long senders send
	Rate        float64       // envelopes per second in total; 0 sends as fast as the server allows
	Concurrency int           // send requests in flight at most
	Bucket      int           // padding bucket of the envelopes (power of two, 256 to 65536)
	Batch       int           // envelopes per send request (1 to 256)
	Drain       time.Duration // how long to wait for stragglers after the senders stop

	// Xchatd is the xchatd binary to start. Empty: the xchatd next to the
	// running executable, else one built with go build.
	Xchatd string
	// Server targets a running homeserver (HOST:PORT) of Domain instead
	// of starting one; CAFile is the PEM root it is trusted with (empty:
	// the system roots). ServerPID, when set, is the process whose CPU and
	// memory are reported.
	Server    string
	Domain    string
	CAFile    string
	ServerPID int

	// Progress receives a line every second while the run lasts; nil
	// discards them.
	Progress io.Writer
}

// DefaultOptions returns the defaults of xchat-bench mailbox.
func DefaultOptions() Options {
	return Options{Devices: 50, Duration: 10 * time.Second, Concurrency: 16, Bucket: 256, Batch: 1, Drain: 10 * time.Second}
}

func (o *Options) validate() error {
	switch {
	case o.Devices < 1:
		return errors.New("--devices must be at least 1")
	case o.Duration <= 0:
		return errors.New("--duration must be positive")
	case o.Rate < 0:
		return errors.New("--rate must not be negative")
	case o.Concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case o.Bucket < wire.MinBucket || o.Bucket > wire.MaxBucket || o.Bucket&(o.Bucket-1) != 0:
		return fmt.Errorf("--bucket must be a power of two from %d to %d", wire.MinBucket, wire.MaxBucket)
	case o.Batch < 1 || o.Batch > wire.MaxEnvelopesPerSend:
		return fmt.Errorf("--batch must be 1 to %d", wire.MaxEnvelopesPerSend)
	case o.Drain < 0:
		return errors.New("--drain must not be negative")
	case o.Server != "" && o.Domain == "":
		return errors.New("--server needs --domain")
	}
	return nil
}

// Result is the outcome of a run. Latencies are in milliseconds.
type Result struct {
	Scenario      string  `json:"scenario"`
	Devices       int     `json:"devices"`
	Seconds       float64 `json:"seconds"` // how long the senders sent
	TargetRate    float64 `json:"target_rate"`
	Concurrency   int     `json:"concurrency"`
	Bucket        int     `json:"bucket"`
	Batch         int     `json:"batch"`
	EnvelopeBytes int     `json:"envelope_bytes"` // sealed bytes of one envelope

	Attempted          int64   `json:"attempted"` // envelopes in send requests
	Sent               int64   `json:"sent"`      // envelopes the server accepted
	Delivered          int64   `json:"delivered"` // sent envelopes pushed to their recipient
	Lost               int64   `json:"lost"`      // accepted but never delivered
	Duplicated         int64   `json:"duplicated"`
	SentPerSecond      float64 `json:"sent_per_second"`
	DeliveredPerSecond float64 `json:"delivered_per_second"`

	Latency Latency          `json:"latency_ms"`
	Errors  map[string]int64 `json:"errors"` // count by kind; empty when none

	Server *ServerStats `json:"server,omitempty"`
}

// Latency summarises send-to-delivery times, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// ServerStats are the homeserver process's figures.
type ServerStats struct {
	PID            int     `json:"pid"`
	CPUSeconds     float64 `json:"cpu_seconds"`       // from the start of the load to the end of the drain
	TotalCPU       float64 `json:"total_cpu_seconds"` // over the whole process life so far
	PeakRSSBytes   int64   `json:"peak_rss_bytes"`
	IdleRSSBytes   int64   `json:"idle_rss_bytes"`      // before the devices connected
	ConnectedRSS   int64   `json:"connected_rss_bytes"` // with every device connected, before the load
	BytesPerDevice int64   `json:"bytes_per_device"`    // (connected - idle) / devices
}

// Failed reports whether the run saw any error, lost or duplicated
// envelope.
func (r *Result) Failed() bool { return len(r.Errors) > 0 }

// errCounts counts errors by kind.
type errCounts struct {
	mu sync.Mutex
	m  map[string]int64
	n  atomic.Int64
}

func (e *errCounts) add(kind string, n int64) {
	if n == 0 {
		return
	}
	e.mu.Lock()
	if e.m == nil {
		e.m = make(map[string]int64)
	}
	e.m[kind] += n
	e.mu.Unlock()
	e.n.Add(n)
}

func (e *errCounts) snapshot() map[string]int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	m := make(map[string]int64, len(e.m))
	for k, v := range e.m {
		m[k] = v
	}
	return m
}

// errKind names an error for the error table.
func errKind(prefix string, err error) string {
	var pe *wire.Error
	switch {
	case errors.As(err, &pe):
		return prefix + ": " + pe.Code.String()
	case errors.Is(err, context.DeadlineExceeded):
		return prefix + ": timeout"
	}
	return prefix + ": failed"
}

// Mailbox runs the mailbox scenario: Devices devices on one homeserver
// send envelopes to each other for Duration and every delivery is matched
// with its send.
func Mailbox(ctx context.Context, o Options) (*Result, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	var target struct {
		addr, domain, ca string
		pid              int
	}
	if o.Server != "" {
		target.addr, target.domain, target.ca, target.pid = o.Server, o.Domain, o.CAFile, o.ServerPID
	} else {
		dir, err := os.MkdirTemp("", "xchat-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		xchatd, err := findXchatd(ctx, o.Xchatd, dir, progress)
		if err != nil {
			return nil, err
		}
		domain := o.Domain
		if domain == "" {
			domain = "bench.test"
		}
		srv, err := startServer(ctx, xchatd, dir, domain)
		if err != nil {
			return nil, err
		}
		defer srv.stop()
		target.addr, target.domain, target.ca, target.pid = srv.addr, srv.domain, srv.caFile, srv.cmd.Process.Pid
		fmt.Fprintf(progress, "xchat-bench: xchatd (pid %d) serving %s on %s, embedded store in %s\n", target.pid, domain, srv.addr, dir)
	}

	r := &run{o: o, progress: progress}
	res := &Result{Scenario: "mailbox", Devices: o.Devices, TargetRate: o.Rate, Concurrency: o.Concurrency,
		Bucket: o.Bucket, Batch: o.Batch, EnvelopeBytes: wire.XWingEncLen + o.Bucket + wire.AEADTagLen}
	var idle procStats
	if target.pid != 0 {
		idle, _ = readProc(target.pid)
	}

	fmt.Fprintf(progress, "xchat-bench: connecting %d devices\n", o.Devices)
	if err := r.connect(ctx, target.addr, target.domain, target.ca); err != nil {
		r.close()
		return nil, err
	}
	defer r.close()
	var connected procStats
	if target.pid != 0 {
		connected, _ = readProc(target.pid)
	}

	r.load(ctx)
	r.drain(ctx)
	var end procStats
	if target.pid != 0 {
		var err error
		if end, err = readProc(target.pid); err != nil {
			r.errs.add("server: process gone", 1)
		}
	}
	r.finish(res)
	if target.pid != 0 && end.Peak > 0 {
		res.Server = &ServerStats{PID: target.pid,
			CPUSeconds: (end.CPU - connected.CPU).Seconds(), TotalCPU: end.CPU.Seconds(),
			PeakRSSBytes: end.Peak, IdleRSSBytes: idle.RSS, ConnectedRSS: connected.RSS,
			BytesPerDevice: max(connected.RSS-idle.RSS, 0) / int64(o.Devices)}
	}
	return res, nil
}

// run is the state of one mailbox run.
type run struct {
	o        Options
	progress io.Writer

	devs   []*device
	closer []io.Closer
	token  []byte
	sealed []byte
	closed atomic.Bool
	done   chan struct{} // closed by close: ackers stop

	tr   tracker
	errs errCounts

	attempted atomic.Int64
	accepted  atomic.Int64
	start     time.Time
	sendSecs  float64
	acksOut   atomic.Int64 // ids waiting for or in an ack request
}

// load sends for the run's duration and returns when every send request
// has its answer.
func (r *run) load(ctx context.Context) {
	o := r.o
	r.sealed = make([]byte, wire.XWingEncLen+o.Bucket+wire.AEADTagLen)
	crand.Read(r.sealed)
	sendCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	fmt.Fprintf(r.progress, "xchat-bench: sending for %s\n", o.Duration)
	r.start = time.Now()
	r.tr.start = r.start
	stopProgress := r.startProgress()
	defer stopProgress()
	var jobs chan struct{}
	if o.Rate > 0 {
		jobs = make(chan struct{}, o.Concurrency)
		go r.pace(sendCtx, jobs)
	}
	var wg sync.WaitGroup
	for w := range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var seed [32]byte
			crand.Read(seed[:])
			rng := rand.New(rand.NewChaCha8(seed))
			for k := 0; ; k++ {
				if jobs != nil {
					if _, ok := <-jobs; !ok {
						return
					}
				} else if sendCtx.Err() != nil {
					return
				}
				r.send(rng, (w+k*o.Concurrency)%len(r.devs))
			}
		}()
	}
	<-sendCtx.Done()
	r.sendSecs = time.Since(r.start).Seconds()
	wg.Wait()
}

// pace hands out one job per send request at the target rate until ctx
// ends, then closes jobs.
func (r *run) pace(ctx context.Context, jobs chan<- struct{}) {
	defer close(jobs)
	perSec := r.o.Rate / float64(r.o.Batch)
	var issued int64
	for {
		due := int64(time.Since(r.start).Seconds() * perSec)
		for ; issued < due; issued++ {
			select {
			case jobs <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		next := r.start.Add(time.Duration(float64(issued+1) / perSec * float64(time.Second)))
		select {
		case <-time.After(time.Until(next)):
		case <-ctx.Done():
			return
		}
	}
}

// send sends one request of Batch envelopes from device from to random
// other devices.
func (r *run) send(rng *rand.Rand, from int) {
	n := len(r.devs)
	envs := make([]wire.Envelope, r.o.Batch)
	ids := make([][16]byte, len(envs))
	now := time.Now()
	for i := range envs {
		to := from
		if n > 1 {
			to = (from + 1 + rng.IntN(n-1)) % n
		}
		binaryRandom(rng, ids[i][:])
		r.tr.sent(ids[i], to, now)
		envs[i] = wire.Envelope{ID: ids[i][:], To: r.devs[to].mb, Token: r.token, Sealed: r.sealed}
	}
	r.attempted.Add(int64(len(envs)))
	ctx, cancel := context.WithTimeout(context.Background(), wire.RequestDeadline)
	defer cancel()
	var ok wire.SendOK
	err := wire.RoundTrip(ctx, r.devs[from].qc, &wire.Send{Envelopes: envs}, &ok)
	if err == nil && len(ok.Results) != len(envs) {
		err = fmt.Errorf("%d results for %d envelopes", len(ok.Results), len(envs))
	}
	if err != nil {
		r.errs.add(errKind("send", err), int64(len(envs)))
		for _, id := range ids {
			r.tr.answered(id, stUnknown)
		}
		return
	}
	for i, code := range ok.Results {
		if code != wire.CodeOK {
			r.errs.add("rejected: "+code.String(), 1)
			r.tr.answered(ids[i], stRejected)
			continue
		}
		r.accepted.Add(1)
		r.tr.answered(ids[i], stAccepted)
	}
}

func binaryRandom(rng *rand.Rand, b []byte) {
	for i := 0; i < len(b); i += 8 {
		v := rng.Uint64()
		for j := i; j < min(i+8, len(b)); j++ {
			b[j] = byte(v)
			v >>= 8
		}
	}
}

// drain waits, up to Drain, for the accepted envelopes not yet delivered
// and for the acknowledgements of the delivered ones.
func (r *run) drain(ctx context.Context) {
	stopProgress := r.startProgress()
	defer stopProgress()
	deadline := time.Now().Add(r.o.Drain)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if r.tr.outstanding.Load() == 0 && r.acksOut.Load() == 0 {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := r.acksOut.Load(); n > 0 {
		r.errs.add("ack: not sent by the end", n)
	}
}

// startProgress prints a progress line every second until the returned
// function is called.
func (r *run) startProgress() func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		lastSent, lastDelivered := r.accepted.Load(), r.tr.delivered.Load()
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			sent, delivered := r.accepted.Load(), r.tr.delivered.Load()
			fmt.Fprintf(r.progress, "xchat-bench: %5.0fs  sent %7d/s  delivered %7d/s  waiting %6d  p99 %7s  errors %d\n",
				time.Since(r.start).Seconds(), sent-lastSent, delivered-lastDelivered, r.tr.outstanding.Load(),
				fmtDur(r.tr.hist.quantile(0.99)), r.errs.n.Load())
			lastSent, lastDelivered = sent, delivered
		}
	}()
	return func() { close(done); <-stopped }
}

// finish fills in res from the run's counts.
func (r *run) finish(res *Result) {
	lost, lateAfterReject := r.tr.audit()
	r.errs.add("lost", lost)
	r.errs.add("delivered after rejection", lateAfterReject)
	r.errs.add("duplicated", r.tr.duplicated.Load())
	r.errs.add("delivered to the wrong device", r.tr.misdelivered.Load())
	r.errs.add("unknown envelope delivered", r.tr.unknown.Load())
	res.Seconds = r.sendSecs
	res.Attempted = r.attempted.Load()
	res.Sent = r.accepted.Load()
	res.Delivered = r.tr.deliveredAccepted.Load()
	res.Lost = lost
	res.Duplicated = r.tr.duplicated.Load()
	if r.sendSecs > 0 {
		res.SentPerSecond = float64(res.Sent) / r.sendSecs
	}
	if last := time.Duration(r.tr.lastDelivery.Load()); last > 0 {
		res.DeliveredPerSecond = float64(r.tr.delivered.Load()) / last.Seconds()
	}
	h := &r.tr.hist
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res.Latency = Latency{P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)), Max: ms(h.maxDuration())}
	res.Errors = r.errs.snapshot()
}

func fmtDur(d time.Duration) string {
	switch {
	case d == 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d.Microseconds())/1000)
	case d < time.Second:
		return fmt.Sprintf("%.1fms", float64(d.Microseconds())/1000)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
	return fmt.Sprintf("%d B", n)
}

// WriteTable writes the result as a table.
func (r *Result) WriteTable(w io.Writer) error {
	rate := "as fast as the server allows"
	if r.TargetRate > 0 {
		rate = fmt.Sprintf("%.0f envelopes/s", r.TargetRate)
	}
	fmt.Fprintf(w, "%s: %d devices, %.1fs, rate %s, %d requests in flight, bucket %d (%d-byte envelopes), %d per send\n\n",
		r.Scenario, r.Devices, r.Seconds, rate, r.Concurrency, r.Bucket, r.EnvelopeBytes, r.Batch)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ms := func(v float64) string { return fmtDur(time.Duration(v * float64(time.Millisecond))) }
	fmt.Fprintf(tw, "envelopes sent (accepted)\t%d\t%.0f/s\n", r.Sent, r.SentPerSecond)
	fmt.Fprintf(tw, "envelopes delivered\t%d\t%.0f/s\n", r.Delivered, r.DeliveredPerSecond)
	if r.Attempted != r.Sent {
		fmt.Fprintf(tw, "envelopes not accepted\t%d\t\n", r.Attempted-r.Sent)
	}
	fmt.Fprintf(tw, "lost\t%d\t\n", r.Lost)
	fmt.Fprintf(tw, "duplicated\t%d\t\n", r.Duplicated)
	fmt.Fprintf(tw, "latency send→delivery\tp50 %s\tp90 %s  p99 %s  max %s\n", ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), ms(r.Latency.Max))
	if s := r.Server; s != nil {
		cores := 0.0
		if r.Seconds > 0 {
			cores = s.CPUSeconds / r.Seconds
		}
		fmt.Fprintf(tw, "server CPU (load and drain)\t%.2f s\t%.2f cores over the send time; %.2f s in all\n", s.CPUSeconds, cores, s.TotalCPU)
		fmt.Fprintf(tw, "server peak RSS\t%s\t\n", fmtBytes(s.PeakRSSBytes))
		fmt.Fprintf(tw, "server memory per device\t%s\tRSS %s idle, %s with %d devices connected\n",
			fmtBytes(s.BytesPerDevice), fmtBytes(s.IdleRSSBytes), fmtBytes(s.ConnectedRSS), r.Devices)
	}
	if len(r.Errors) == 0 {
		fmt.Fprintf(tw, "errors\tnone\t\n")
	} else {
		kinds := make([]string, 0, len(r.Errors))
		for k := range r.Errors {
			kinds = append(kinds, k)
		}
		sort.Strings(kinds)
		for _, k := range kinds {
			fmt.Fprintf(tw, "error: %s\t%d\t\n", k, r.Errors[k])
		}
	}
	return tw.Flush()
}
