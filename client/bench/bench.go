// Package bench is the load generator behind cmd/xchat-bench. It drives
// homeservers with many devices and measures throughput, send-to-delivery
// latency and the servers' CPU and memory, following every envelope from
// send to delivery.
//
// # Scenarios
//
// Three scenarios speak the raw wire protocol, with envelopes of random
// bytes of a sealed envelope's size:
//
//   - [Mailbox]: devices on one homeserver send to each other.
//   - [Federation]: devices on one homeserver send to devices on another;
//     every envelope is queued, relayed between the servers and pushed.
//   - [Connections]: many devices connect and stay idle, which gives the
//     memory per connected device, then each sends a burst.
//
// [Crash] kills the homeserver with SIGKILL at random moments under load,
// restarts it on the same store, and checks that no envelope acknowledged
// to its sender is lost and none is delivered after the server confirmed
// its acknowledgement.
//
// One runs the reference client (package client), with MLS and sealing:
//
//   - [Group]: the members of one MLS group send text messages to the
//     group; every message is followed to every other member.
//
// [Files] moves files up to and down from a homeserver and down across a
// federation link, with the reference client (or the blob requests
// themselves), next to a raw QUIC stream as the ceiling, and samples the
// servers' memory for each file size.
//
// [Calls] measures the media relays of calls: many one-to-one audio calls
// through one homeserver and between two federated ones, and a group call
// with video, next to a bare quic-go DATAGRAM relay as the baseline; its
// devices send media packets whose data is a send timestamp, since relays
// do not decrypt.
//
// Each starts its homeservers as child xchatd processes with temporary
// data directories (the embedded store, or fresh PostgreSQL schemas with
// Options.DB), or targets running ones (all but Files, which always
// starts its own two).
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
	// Devices is the number of devices connected to the homeserver; in the
	// federation scenario, the number of senders on the first homeserver
	// and of recipients on the second each; in the group scenario, the
	// number of members (one device each, 2 to 20).
	Devices  int
	Duration time.Duration // how long senders send (mailbox, federation, group)
	// Warmup is the first part of Duration whose envelopes are counted
	// (lost, duplicated, throughput) but left out of the latency figures.
	Warmup time.Duration
	// Rate is envelopes per second in total (group scenario: messages per
	// second); 0 sends as fast as the servers allow.
	Rate float64
	// Concurrency, Bucket, Payload and Batch shape the raw scenarios'
	// sending; the group scenario sends through the reference client
	// (each member one message at a time) and ignores them.
	Concurrency int // send requests in flight at most
	Bucket      int // padding bucket of the envelopes (power of two, 256 to 65536)
	// Payload, when not zero, is the plaintext size the envelopes stand
	// for: the bucket is then the smallest that holds it (wire.Bucket).
	Payload int
	Batch   int           // envelopes per send request (1 to 256)
	Drain   time.Duration // how long to wait for stragglers after the senders stop

	// Idle is how long the connections scenario keeps every device
	// connected and idle before the burst; Burst is how many envelopes
	// each device sends in the burst.
	Idle  time.Duration
	Burst int
	// ConnectConcurrency is how many devices register at once.
	ConnectConcurrency int

	// Xchatd is the xchatd binary to start. Empty: the xchatd next to the
	// running executable, else one built with go build.
	Xchatd string
	// DB, when set, is a PostgreSQL URL: each started homeserver stores in
	// a fresh schema of that database (dropped at the end) instead of the
	// embedded store.
	DB string
	// ServerArgs are extra arguments to every started xchatd serve.
	ServerArgs []string
	// PprofPort, when not zero, makes the started servers serve their
	// runtime profiles (xchatd serve --pprof) on 127.0.0.1:PprofPort, the
	// second server on the next port.
	PprofPort int

	// Server targets a running homeserver (HOST:PORT) of Domain instead
	// of starting one; CAFile is the PEM root it is trusted with (empty:
	// the system roots). ServerPID, when set, is the process whose CPU and
	// memory are reported. In the federation scenario Server holds the
	// senders and PeerServer (of PeerDomain) the recipients.
	Server    string
	Domain    string
	CAFile    string
	ServerPID int

	PeerServer    string
	PeerDomain    string
	PeerCAFile    string
	PeerServerPID int

	// Progress receives a line every second while the run lasts; nil
	// discards them.
	Progress io.Writer
}

// DefaultOptions returns the defaults of xchat-bench (the mailbox
// scenario's; the command starts other scenarios with more devices for
// connections and fewer for group).
func DefaultOptions() Options {
	return Options{Devices: 50, Duration: 10 * time.Second, Warmup: time.Second, Concurrency: 16, Bucket: 256, Batch: 1,
		Drain: 10 * time.Second, Idle: 5 * time.Second, Burst: 1, ConnectConcurrency: 16}
}

func (o *Options) validate(scenario string) error {
	switch {
	case o.Devices < 1:
		return errors.New("--devices must be at least 1")
	case o.Duration <= 0:
		return errors.New("--duration must be positive")
	case o.Rate < 0:
		return errors.New("--rate must not be negative")
	case o.Concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case o.ConnectConcurrency < 1:
		return errors.New("--connect-concurrency must be at least 1")
	case o.Payload < 0 || o.Payload >= wire.MaxBucket:
		return fmt.Errorf("--payload must be 0 to %d", wire.MaxBucket-1)
	case o.Payload == 0 && (o.Bucket < wire.MinBucket || o.Bucket > wire.MaxBucket || o.Bucket&(o.Bucket-1) != 0):
		return fmt.Errorf("--bucket must be a power of two from %d to %d", wire.MinBucket, wire.MaxBucket)
	case o.Batch < 1 || o.Batch > wire.MaxEnvelopesPerSend:
		return fmt.Errorf("--batch must be 1 to %d", wire.MaxEnvelopesPerSend)
	case o.Drain < 0 || o.Idle < 0:
		return errors.New("--drain and --idle must not be negative")
	case o.Warmup < 0 || (o.Warmup >= o.Duration && scenario != "connections"):
		return errors.New("--warmup must be shorter than --duration")
	case o.Burst < 1:
		return errors.New("--burst must be at least 1")
	case o.Server != "" && o.Domain == "":
		return errors.New("--server needs --domain")
	case scenario == "federation" && o.Server != "" && (o.PeerServer == "" || o.PeerDomain == ""):
		return errors.New("federation with --server needs --peer-server and --peer-domain")
	case scenario == "federation" && o.Server == "" && o.PeerServer != "":
		return errors.New("--peer-server needs --server")
	}
	if o.Payload > 0 {
		o.Bucket = wire.Bucket(o.Payload + 1)
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
	Payload       int     `json:"payload,omitempty"`
	Batch         int     `json:"batch"`
	EnvelopeBytes int     `json:"envelope_bytes"` // sealed bytes of one envelope
	Store         string  `json:"store,omitempty"`

	// ConnectSeconds is the time to register and connect every device
	// (and, in the group scenario, to create the group).
	ConnectSeconds float64 `json:"connect_seconds"`
	// ConnectRetries counts the handshakes or registrations that failed
	// and were tried again (raw scenarios).
	ConnectRetries int64 `json:"connect_retries"`

	// Messages and MessagesPerSecond count group messages (group
	// scenario): each is one envelope per other member.
	Messages          int64   `json:"messages,omitempty"`
	MessagesPerSecond float64 `json:"messages_per_second,omitempty"`

	Attempted          int64   `json:"attempted"` // envelopes in send requests
	Sent               int64   `json:"sent"`      // envelopes the server accepted
	Delivered          int64   `json:"delivered"` // sent envelopes pushed to their recipient
	Lost               int64   `json:"lost"`      // accepted but never delivered
	Duplicated         int64   `json:"duplicated"`
	SentPerSecond      float64 `json:"sent_per_second"`
	DeliveredPerSecond float64 `json:"delivered_per_second"`

	Latency Latency          `json:"latency_ms"` // of envelopes sent after the warm-up
	Warmup  float64          `json:"warmup_seconds"`
	Errors  map[string]int64 `json:"errors"` // count by kind; empty when none

	Servers []ServerStats `json:"servers,omitempty"`
	// ServerCPUPerEnvelope is the servers' CPU time (load and drain, all
	// servers) per delivered envelope, in microseconds.
	ServerCPUPerEnvelope float64 `json:"server_cpu_us_per_envelope,omitempty"`
	// LoadAverage is the machine's 1-minute load average (/proc/loadavg)
	// when the load started and when it ended: other work on the machine
	// takes CPU from the run.
	LoadAverage [2]float64 `json:"load_average"`
	// LoadGenerator is this process's own cost: it shares the machine
	// with the servers.
	LoadGenerator LoadStats `json:"load_generator"`
}

// Latency summarises send-to-delivery times, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// ServerStats are one homeserver process's figures.
type ServerStats struct {
	Domain         string  `json:"domain"`
	PID            int     `json:"pid"`
	Devices        int     `json:"devices"`           // connected to it (group scenario: connections, two a member)
	CPUSeconds     float64 `json:"cpu_seconds"`       // from the start of the load to the end of the drain
	TotalCPU       float64 `json:"total_cpu_seconds"` // over the whole process life so far
	PeakRSSBytes   int64   `json:"peak_rss_bytes"`
	IdleRSSBytes   int64   `json:"idle_rss_bytes"`      // before the devices connected
	ConnectedRSS   int64   `json:"connected_rss_bytes"` // with every device connected, before the load
	BytesPerDevice int64   `json:"bytes_per_device"`    // (connected - idle) / devices
}

// LoadStats are the load generator's own figures.
type LoadStats struct {
	CPUSeconds   float64 `json:"cpu_seconds"` // from the start of the load to the end of the drain
	PeakRSSBytes int64   `json:"peak_rss_bytes"`
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
	return execute(ctx, "mailbox", o)
}

// Federation runs the federation scenario: Devices senders on one
// homeserver send envelopes to Devices recipients on another for Duration;
// each envelope is queued durably by the first, relayed, stored durably by
// the second and pushed.
func Federation(ctx context.Context, o Options) (*Result, error) {
	return execute(ctx, "federation", o)
}

// Connections runs the connections scenario: Devices devices connect to
// one homeserver and stay idle for Idle (the server's memory per connected
// device is measured then), then each sends Burst envelopes to others, as
// fast as the server allows or at Rate.
func Connections(ctx context.Context, o Options) (*Result, error) {
	return execute(ctx, "connections", o)
}

// target is a homeserver the run uses.
type target struct {
	addr, domain, ca string
	pid              int
	devices          int
	idle, connected  procStats
}

func execute(ctx context.Context, scenario string, o Options) (*Result, error) {
	if err := o.validate(scenario); err != nil {
		return nil, err
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	var targets []*target
	storeName := ""
	if o.Server != "" {
		targets = append(targets, &target{addr: o.Server, domain: o.Domain, ca: o.CAFile, pid: o.ServerPID})
		if scenario == "federation" {
			targets = append(targets, &target{addr: o.PeerServer, domain: o.PeerDomain, ca: o.PeerCAFile, pid: o.PeerServerPID})
		}
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
		domains := []string{"bench.test"}
		if o.Domain != "" {
			domains[0] = o.Domain
		}
		if scenario == "federation" {
			domains = []string{"a.bench.test", "b.bench.test"}
			if o.Domain != "" {
				domains[0] = o.Domain
			}
			if o.PeerDomain != "" {
				domains[1] = o.PeerDomain
			}
		}
		set, err := startServers(ctx, xchatd, dir, o.DB, domains, o.ServerArgs, o.PprofPort)
		if err != nil {
			return nil, err
		}
		defer set.stop()
		for _, s := range set.servers {
			targets = append(targets, &target{addr: s.addr, domain: s.domain, ca: s.caFile, pid: s.cmd.Process.Pid})
			fmt.Fprintf(progress, "xchat-bench: xchatd (pid %d) serving %s on %s, %s in %s\n", s.cmd.Process.Pid, s.domain, s.addr, s.store, dir)
			storeName = s.store
		}
		if o.DB != "" {
			storeName = "PostgreSQL"
		}
	}

	r := &run{o: o, progress: progress, done: make(chan struct{})}
	defer r.close()
	res := &Result{Scenario: scenario, Devices: o.Devices, TargetRate: o.Rate, Concurrency: o.Concurrency,
		Bucket: o.Bucket, Payload: o.Payload, Batch: o.Batch, EnvelopeBytes: wire.XWingEncLen + o.Bucket + wire.AEADTagLen, Store: storeName}
	readAll := func(get func(t *target) *procStats) {
		for _, t := range targets {
			if t.pid != 0 {
				*get(t), _ = readProc(t.pid)
			}
		}
	}
	readAll(func(t *target) *procStats { return &t.idle })

	r.token = make([]byte, 32)
	crand.Read(r.token)
	var runID [3]byte
	crand.Read(runID[:])
	prefix := fmt.Sprintf("bench-%x", runID)
	connectStart := time.Now()
	stopProgress := r.startConnectProgress(len(targets) * o.Devices)
	var err error
	switch scenario {
	case "federation":
		fmt.Fprintf(progress, "xchat-bench: connecting %d senders to %s and %d recipients to %s\n", o.Devices, targets[0].domain, o.Devices, targets[1].domain)
		if r.from, err = r.connect(ctx, targets[0].addr, targets[0].domain, targets[0].ca, prefix+"-s", o.Devices); err == nil {
			r.to, err = r.connect(ctx, targets[1].addr, targets[1].domain, targets[1].ca, prefix+"-r", o.Devices)
		}
		targets[0].devices, targets[1].devices = o.Devices, o.Devices
	default:
		fmt.Fprintf(progress, "xchat-bench: connecting %d devices\n", o.Devices)
		r.from, err = r.connect(ctx, targets[0].addr, targets[0].domain, targets[0].ca, prefix, o.Devices)
		r.to = r.from
		targets[0].devices = o.Devices
	}
	stopProgress()
	if err != nil {
		return nil, err
	}
	res.ConnectSeconds = time.Since(connectStart).Seconds()
	res.ConnectRetries = r.connectRetries.Load()
	fmt.Fprintf(progress, "xchat-bench: %d devices connected in %.1fs\n", len(r.devs), res.ConnectSeconds)
	if scenario == "connections" && o.Idle > 0 {
		fmt.Fprintf(progress, "xchat-bench: idle for %s\n", o.Idle)
		r.idle(ctx, o.Idle, targets[0].pid)
	}
	readAll(func(t *target) *procStats { return &t.connected })
	self, _ := readProc(os.Getpid())
	res.LoadAverage[0] = loadAverage()

	if scenario == "connections" {
		r.burst(ctx, o.Devices*o.Burst)
	} else {
		r.load(ctx)
	}
	r.drain(ctx)
	selfEnd, _ := readProc(os.Getpid())
	res.LoadAverage[1] = loadAverage()
	res.LoadGenerator = LoadStats{CPUSeconds: (selfEnd.CPU - self.CPU).Seconds(), PeakRSSBytes: selfEnd.Peak}
	for _, t := range targets {
		if t.pid == 0 {
			continue
		}
		end, err := readProc(t.pid)
		if err != nil || end.Peak == 0 {
			r.errs.add("server: process gone", 1)
			continue
		}
		res.Servers = append(res.Servers, ServerStats{Domain: t.domain, PID: t.pid, Devices: t.devices,
			CPUSeconds: (end.CPU - t.connected.CPU).Seconds(), TotalCPU: end.CPU.Seconds(),
			PeakRSSBytes: end.Peak, IdleRSSBytes: t.idle.RSS, ConnectedRSS: t.connected.RSS,
			BytesPerDevice: max(t.connected.RSS-t.idle.RSS, 0) / int64(max(t.devices, 1))})
	}
	r.finish(res)
	var cpu float64
	for _, s := range res.Servers {
		cpu += s.CPUSeconds
	}
	if res.Delivered > 0 {
		res.ServerCPUPerEnvelope = cpu / float64(res.Delivered) * 1e6
	}
	return res, nil
}

// run is the state of one run.
type run struct {
	o        Options
	progress io.Writer

	devs     []*device // every device, indexed by device.idx
	from, to []*device // senders and recipients (the same in one domain)
	closer   []io.Closer
	token    []byte
	sealed   []byte
	closed   atomic.Bool
	done     chan struct{} // closed by close: ackers stop
	devMu    sync.Mutex    // guards devs while devices connect

	tr   tracker
	errs errCounts

	connected      atomic.Int64
	connectRetries atomic.Int64 // failed attempts to connect that were tried again
	attempted      atomic.Int64
	accepted       atomic.Int64
	start          time.Time
	sendSecs       float64
	acksOut        atomic.Int64 // ids waiting for or in an ack request
}

// newSealed makes the run's envelope body: random bytes of a sealed
// envelope's length for the bucket.
func (r *run) newSealed() {
	r.sealed = make([]byte, wire.XWingEncLen+r.o.Bucket+wire.AEADTagLen)
	crand.Read(r.sealed)
}

// load sends for the run's duration and returns when every send request
// has its answer.
func (r *run) load(ctx context.Context) {
	o := r.o
	r.newSealed()
	sendCtx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	fmt.Fprintf(r.progress, "xchat-bench: sending for %s\n", o.Duration)
	r.start = time.Now()
	r.tr.start = r.start
	r.tr.latencyFrom = r.start.Add(o.Warmup)
	stopProgress := r.startProgress()
	defer stopProgress()
	var jobs chan struct{}
	if o.Rate > 0 {
		jobs = make(chan struct{}, o.Concurrency)
		go r.pace(sendCtx, jobs, -1)
	}
	var wg sync.WaitGroup
	for w := range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := newRand()
			for k := 0; ; k++ {
				if jobs != nil {
					if _, ok := <-jobs; !ok {
						return
					}
				} else if sendCtx.Err() != nil {
					return
				}
				r.send(rng, (w+k*o.Concurrency)%len(r.from), r.o.Batch)
			}
		}()
	}
	<-sendCtx.Done()
	r.sendSecs = time.Since(r.start).Seconds()
	wg.Wait()
}

// burst sends total envelopes, Batch per request, from every device in
// turn, as fast as the server allows or paced at Rate, and returns when
// every send request has its answer.
func (r *run) burst(ctx context.Context, total int) {
	o := r.o
	r.newSealed()
	fmt.Fprintf(r.progress, "xchat-bench: burst of %d envelopes\n", total)
	r.start = time.Now()
	r.tr.start = r.start
	stopProgress := r.startProgress()
	defer stopProgress()
	requests := (total + o.Batch - 1) / o.Batch
	var jobs chan struct{}
	if o.Rate > 0 {
		jobs = make(chan struct{}, o.Concurrency)
		go r.pace(ctx, jobs, requests)
	}
	var next atomic.Int64
	var wg sync.WaitGroup
	for range o.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := newRand()
			for ctx.Err() == nil {
				if jobs != nil {
					if _, ok := <-jobs; !ok {
						return
					}
				}
				k := int(next.Add(1) - 1)
				if k >= requests {
					return
				}
				n := min(o.Batch, total-k*o.Batch)
				r.send(rng, k%len(r.from), n)
			}
		}()
	}
	wg.Wait()
	r.sendSecs = time.Since(r.start).Seconds()
}

func newRand() *rand.Rand {
	var seed [32]byte
	crand.Read(seed[:])
	return rand.New(rand.NewChaCha8(seed))
}

// pace hands out one job per send request at the target rate until ctx
// ends or limit jobs (when not negative) were handed out, then closes
// jobs.
func (r *run) pace(ctx context.Context, jobs chan<- struct{}, limit int) {
	defer close(jobs)
	perSec := r.o.Rate / float64(r.o.Batch)
	var issued int64
	for {
		due := int64(time.Since(r.start).Seconds() * perSec)
		if limit >= 0 {
			due = min(due, int64(limit))
		}
		for ; issued < due; issued++ {
			select {
			case jobs <- struct{}{}:
			case <-ctx.Done():
				return
			}
		}
		if limit >= 0 && issued >= int64(limit) {
			return
		}
		next := r.start.Add(time.Duration(float64(issued+1) / perSec * float64(time.Second)))
		select {
		case <-time.After(time.Until(next)):
		case <-ctx.Done():
			return
		}
	}
}

// send sends one request of n envelopes from sender from to random
// recipients other than itself.
func (r *run) send(rng *rand.Rand, from, n int) {
	sender := r.from[from]
	envs := make([]wire.Envelope, n)
	ids := make([][16]byte, n)
	now := time.Now()
	for i := range envs {
		to := r.to[rng.IntN(len(r.to))]
		if to == sender && len(r.to) > 1 {
			to = r.to[(from+1+rng.IntN(len(r.to)-1))%len(r.to)]
		}
		binaryRandom(rng, ids[i][:])
		r.tr.sent(ids[i], to.idx, now)
		envs[i] = wire.Envelope{ID: ids[i][:], To: to.mb, Token: r.token, Sealed: r.sealed}
	}
	r.attempted.Add(int64(n))
	ctx, cancel := context.WithTimeout(context.Background(), wire.RequestDeadline)
	defer cancel()
	var ok wire.SendOK
	err := wire.RoundTrip(ctx, sender.qc, &wire.Send{Envelopes: envs}, &ok)
	if err == nil && len(ok.Results) != n {
		err = fmt.Errorf("%d results for %d envelopes", len(ok.Results), n)
	}
	if err != nil {
		r.errs.add(errKind("send", err), int64(n))
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

// idle waits for d while every device stays connected, printing the
// server's memory every second.
func (r *run) idle(ctx context.Context, d time.Duration, pid int) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	end := time.After(d)
	start := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-end:
			return
		case <-t.C:
		}
		line := fmt.Sprintf("xchat-bench: idle %5.0fs  %d devices connected", time.Since(start).Seconds(), len(r.devs))
		if pid != 0 {
			if st, err := readProc(pid); err == nil {
				line += "  server RSS " + fmtBytes(st.RSS)
			}
		}
		fmt.Fprintf(r.progress, "%s  errors %d\n", line, r.errs.n.Load())
	}
}

// startConnectProgress prints a line every second while devices connect,
// until the returned function is called.
func (r *run) startConnectProgress(total int) func() {
	return r.every(func(elapsed time.Duration) {
		fmt.Fprintf(r.progress, "xchat-bench: %5.0fs  connected %d of %d devices  errors %d\n",
			elapsed.Seconds(), r.connected.Load(), total, r.errs.n.Load())
	})
}

// startProgress prints a progress line every second until the returned
// function is called.
func (r *run) startProgress() func() {
	lastSent, lastDelivered := r.accepted.Load(), r.tr.delivered.Load()
	return r.every(func(time.Duration) {
		sent, delivered := r.accepted.Load(), r.tr.delivered.Load()
		fmt.Fprintf(r.progress, "xchat-bench: %5.0fs  sent %7d/s  delivered %7d/s  waiting %6d  p99 %7s  errors %d\n",
			time.Since(r.start).Seconds(), sent-lastSent, delivered-lastDelivered, r.tr.outstanding.Load(),
			fmtDur(r.tr.hist.quantile(0.99)), r.errs.n.Load())
		lastSent, lastDelivered = sent, delivered
	})
}

// every calls fn every second, from one goroutine, until the returned
// function is called.
func (r *run) every(fn func(elapsed time.Duration)) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	start := time.Now()
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				fn(time.Since(start))
			}
		}
	}()
	return func() { close(done); <-stopped }
}

// finish fills in res from the run's counts.
func (r *run) finish(res *Result) {
	lost, stranded, lateAfterReject := r.tr.audit(func(dev int) bool { return r.devs[dev].failed.Load() })
	r.errs.add("lost", lost)
	r.errs.add("not delivered: the recipient's connection failed", stranded)
	r.errs.add("delivered after rejection", lateAfterReject)
	r.errs.add("duplicated", r.tr.duplicated.Load())
	r.errs.add("delivered to the wrong device", r.tr.misdelivered.Load())
	r.errs.add("unknown envelope delivered", r.tr.unknown.Load())
	res.Seconds = r.sendSecs
	if !r.tr.latencyFrom.IsZero() {
		res.Warmup = r.tr.latencyFrom.Sub(r.tr.start).Seconds()
	}
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
	devices := fmt.Sprintf("%d devices", r.Devices)
	switch r.Scenario {
	case "federation":
		devices = fmt.Sprintf("%d senders and %d recipients", r.Devices, r.Devices)
	case "group":
		devices = fmt.Sprintf("one MLS group of %d members (suite 0xF031), each sending", r.Devices)
		rate = "as fast as the members can"
		if r.TargetRate > 0 {
			rate = fmt.Sprintf("%.0f messages/s", r.TargetRate)
		}
	}
	payload := ""
	if r.Payload > 0 {
		payload = fmt.Sprintf("%d-byte payload, ", r.Payload)
	}
	store := ""
	if r.Store != "" {
		store = ", " + r.Store
	}
	if r.Scenario == "group" {
		fmt.Fprintf(w, "%s: %s, %.1fs, rate %s%s\n\n", r.Scenario, devices, r.Seconds, rate, store)
	} else {
		fmt.Fprintf(w, "%s: %s, %.1fs, rate %s, %d requests in flight, %sbucket %d (%d-byte envelopes), %d per send%s\n\n",
			r.Scenario, devices, r.Seconds, rate, r.Concurrency, payload, r.Bucket, r.EnvelopeBytes, r.Batch, store)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	ms := func(v float64) string { return fmtDur(time.Duration(v * float64(time.Millisecond))) }
	fmt.Fprintf(tw, "devices connected in\t%.1f s\t%d connected again after a failed attempt\n", r.ConnectSeconds, r.ConnectRetries)
	if r.Scenario == "group" {
		fmt.Fprintf(tw, "group messages sent\t%d\t%.1f/s (each sealed for %d devices)\n", r.Messages, r.MessagesPerSecond, r.Devices-1)
	}
	fmt.Fprintf(tw, "envelopes sent (accepted)\t%d\t%.0f/s\n", r.Sent, r.SentPerSecond)
	fmt.Fprintf(tw, "envelopes delivered\t%d\t%.0f/s\n", r.Delivered, r.DeliveredPerSecond)
	if r.Attempted != r.Sent {
		fmt.Fprintf(tw, "envelopes not accepted\t%d\t\n", r.Attempted-r.Sent)
	}
	fmt.Fprintf(tw, "lost\t%d\t\n", r.Lost)
	fmt.Fprintf(tw, "duplicated\t%d\t\n", r.Duplicated)
	warm := ""
	if r.Warmup > 0 {
		warm = fmt.Sprintf(" (sent after the first %.1fs)", r.Warmup)
	}
	fmt.Fprintf(tw, "latency send→delivery%s\tp50 %s\tp90 %s  p99 %s  max %s\n", warm, ms(r.Latency.P50), ms(r.Latency.P90), ms(r.Latency.P99), ms(r.Latency.Max))
	cores := func(cpu float64) float64 {
		if r.Seconds > 0 {
			return cpu / r.Seconds
		}
		return 0
	}
	for _, s := range r.Servers {
		name := "server"
		if len(r.Servers) > 1 {
			name = "server " + s.Domain
		}
		fmt.Fprintf(tw, "%s CPU (load and drain)\t%.2f s\t%.2f cores over the send time; %.2f s in all\n", name, s.CPUSeconds, cores(s.CPUSeconds), s.TotalCPU)
		fmt.Fprintf(tw, "%s peak RSS\t%s\t\n", name, fmtBytes(s.PeakRSSBytes))
		fmt.Fprintf(tw, "%s memory per device\t%s\tRSS %s idle, %s with %d devices connected\n",
			name, fmtBytes(s.BytesPerDevice), fmtBytes(s.IdleRSSBytes), fmtBytes(s.ConnectedRSS), s.Devices)
	}
	if r.ServerCPUPerEnvelope > 0 {
		fmt.Fprintf(tw, "server CPU per envelope\t%.0f µs\t\n", r.ServerCPUPerEnvelope)
	}
	fmt.Fprintf(tw, "load generator CPU\t%.2f s\t%.2f cores; peak RSS %s\n", r.LoadGenerator.CPUSeconds, cores(r.LoadGenerator.CPUSeconds), fmtBytes(r.LoadGenerator.PeakRSSBytes))
	fmt.Fprintf(tw, "machine load average\t%.2f\tat the start of the load; %.2f at the end (other work shares the CPUs)\n", r.LoadAverage[0], r.LoadAverage[1])
	writeErrors(tw, r.Errors)
	return tw.Flush()
}

// writeErrors writes the rows of a result's errors by kind, sorted, or one
// row saying there were none.
func writeErrors(tw io.Writer, errs map[string]int64) {
	if len(errs) == 0 {
		fmt.Fprintf(tw, "errors\tnone\t\n")
		return
	}
	kinds := make([]string, 0, len(errs))
	for k := range errs {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		fmt.Fprintf(tw, "error: %s\t%d\t\n", k, errs[k])
	}
}
