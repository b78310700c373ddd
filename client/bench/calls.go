package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/xchat-im/xchat/server/devca"
	"github.com/xchat-im/xchat/spec/wire"
)

// Paths of the calls scenario.
const (
	// CallsRelay is one-to-one audio calls through the bare relay.
	CallsRelay = "relay"
	// CallsServer is one-to-one audio calls through one homeserver.
	CallsServer = "server"
	// CallsFederation is one-to-one audio calls between the devices of
	// two federated homeservers.
	CallsFederation = "federation"
	// CallsGroupRelay is one group call with video through the bare relay.
	CallsGroupRelay = "group-relay"
	// CallsGroupServer is one group call with video through one homeserver.
	CallsGroupServer = "group-server"
)

// callsPaths are the paths in the order they run: the bare relay first,
// since the others are compared with it.
var callsPaths = []string{CallsRelay, CallsServer, CallsFederation, CallsGroupRelay, CallsGroupServer}

// CallsOptions configure the calls scenario.
type CallsOptions struct {
	// Paths are the paths to measure, of CallsRelay, CallsServer,
	// CallsFederation, CallsGroupRelay and CallsGroupServer.
	Paths []string
	// Streams is how many devices send in the one-to-one paths, two to a
	// call (so an even number); each also receives its peer's stream.
	Streams int
	// Duration is how long the figures are taken over, after Warmup.
	Duration time.Duration
	Warmup   time.Duration
	// Drain is how long to wait at most for packets in flight after the
	// senders stop.
	Drain time.Duration
	// FrameRate is audio frames a second per sending device (one packet
	// each); AudioBytes the bytes after each audio packet's 14-byte header.
	FrameRate  int
	AudioBytes int
	// GroupSize is the group call's participants, all sending audio;
	// VideoSenders of them (negative: all) also send video of the test
	// pattern (spec/12-calls.md section 12.8.2) at VideoWidth by
	// VideoHeight, VideoFPS frames a second.
	GroupSize    int
	VideoSenders int
	VideoWidth   int
	VideoHeight  int
	VideoFPS     int

	// Search, when set, finds for each one-to-one path the largest
	// stream count with no loss (and, with SearchP99, a p99 at most that):
	// from SearchStart, doubling up to SearchMax, then halving the gap,
	// each step SearchDuration long after the warm-up.
	Search         bool
	SearchStart    int
	SearchMax      int
	SearchDuration time.Duration
	SearchP99      time.Duration

	// ConnectConcurrency is how many devices connect at once.
	ConnectConcurrency int

	// Xchatd is the xchatd binary to start (as in Options); ServerArgs
	// are extra arguments to each xchatd serve.
	Xchatd     string
	ServerArgs []string
	// Relay is the command line of the bare relay (xchat-bench
	// calls-relay), to which --listen, --cert and --key are added; empty:
	// the relay runs in this process, and its CPU is this process's.
	Relay []string

	// Progress receives a line per step; nil discards them.
	Progress io.Writer
}

// DefaultCallsOptions returns the defaults of xchat-bench calls.
func DefaultCallsOptions() CallsOptions {
	return CallsOptions{
		Paths: callsPaths, Streams: 1000, Duration: 10 * time.Second, Warmup: 2 * time.Second, Drain: 3 * time.Second,
		FrameRate: 50, AudioBytes: 160,
		GroupSize: wire.MaxCallMembers, VideoSenders: -1, VideoWidth: 320, VideoHeight: 180, VideoFPS: 15,
		SearchStart: 100, SearchMax: 4000, SearchDuration: 5 * time.Second,
		ConnectConcurrency: 32,
	}
}

func (o *CallsOptions) validate() error {
	switch {
	case len(o.Paths) == 0:
		return errors.New("--paths: at least one path")
	case o.Streams < 2 || o.Streams%2 != 0:
		return errors.New("--streams must be an even number, at least 2")
	case o.Duration <= 0 || o.Warmup < 0 || o.Drain < 0:
		return errors.New("--duration must be positive, --warmup and --drain not negative")
	case o.FrameRate < 1 || o.FrameRate > 1000:
		return errors.New("--frame-rate must be 1 to 1000")
	case o.AudioBytes < callPayloadHeader || o.AudioBytes > wire.MaxPacketData:
		return fmt.Errorf("--audio-bytes must be %d to %d", callPayloadHeader, wire.MaxPacketData)
	case o.GroupSize < 2:
		return errors.New("--group-size must be at least 2")
	case o.VideoSenders > o.GroupSize:
		return errors.New("--video-senders must be at most --group-size")
	case o.VideoSenders != 0 && (o.VideoWidth < 1 || o.VideoHeight < 1 || o.VideoFPS < 1 || o.VideoFPS > 120 ||
		videoFrameBytes(o.VideoWidth, o.VideoHeight, true) > wire.MaxCallFrame):
		return fmt.Errorf("--video: a size whose key frame fits %d bytes, 1 to 120 frames/s", wire.MaxCallFrame)
	case o.ConnectConcurrency < 1:
		return errors.New("--connect-concurrency must be at least 1")
	case o.Search && (o.SearchStart < 2 || o.SearchStart%2 != 0 || o.SearchMax < o.SearchStart || o.SearchDuration <= 0 || o.SearchP99 < 0):
		return errors.New("--search-start must be even and at least 2, --search-max at least that, --search-duration positive")
	}
	for _, p := range o.Paths {
		if !slices.Contains(callsPaths, p) {
			return fmt.Errorf("--paths: %q: want %s", p, strings.Join(callsPaths, ", "))
		}
	}
	return nil
}

// ParseCallsPaths parses a comma-separated list of paths.
func ParseCallsPaths(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" && !slices.Contains(out, p) {
			out = append(out, p)
		}
	}
	return out
}

// CallsResult is the outcome of the calls scenario.
type CallsResult struct {
	Scenario string `json:"scenario"` // "calls"
	// Packets says what a packet carries: the bench's devices send media
	// packets of spec/12-calls.md section 12.5 whose data is a
	// timestamp and filler, not SFrame ciphertext, since relays do not
	// decrypt.
	Packets    string `json:"packets"`
	FrameRate  int    `json:"frame_rate"`
	AudioBytes int    `json:"audio_bytes"` // data bytes of an audio packet (datagram: 14 more)
	Video      string `json:"video"`       // the group call's video
	// Relay says where the bare relay ran; CPU how CPU was measured.
	Relay string `json:"relay"`
	CPU   string `json:"cpu"`
	// Runs are every measurement, search steps included, in order.
	Runs []CallRun `json:"runs"`
	// Max is, with a search, the largest stream count each one-to-one
	// path held without loss (and with a p99 of at most SearchP99 ms,
	// when that is not 0).
	Max         []CallMax        `json:"max,omitempty"`
	SearchP99   float64          `json:"search_p99_ms,omitempty"`
	LoadAverage [2]float64       `json:"load_average"`
	Errors      map[string]int64 `json:"errors"`
}

// CallRun is one measurement of one path at one stream count.
type CallRun struct {
	Path         string  `json:"path"`
	Search       bool    `json:"search_step,omitempty"`
	Streams      int     `json:"streams"` // sending devices (one-to-one: two a call)
	Calls        int     `json:"calls"`
	Participants int     `json:"participants"` // devices in each call
	Seconds      float64 `json:"seconds"`      // of the measured part
	// SentPerSecond is packets sent a second; ForwardedPerSecond packets
	// that reached a receiver a second (a packet to a group reaches
	// every other participant).
	SentPerSecond      float64 `json:"sent_per_second"`
	ForwardedPerSecond float64 `json:"forwarded_per_second"`
	Expected           int64   `json:"expected"` // deliveries of the packets sent in the measured part
	Received           int64   `json:"received"`
	Lost               int64   `json:"lost"`
	Loss               float64 `json:"loss"` // Lost / Expected
	// Latency is sender to receiver, in milliseconds, of the packets sent
	// in the measured part; VideoLatency of the video packets alone.
	Latency      Latency  `json:"latency_ms"`
	VideoLatency *Latency `json:"video_latency_ms,omitempty"`
	// RelayCPUSeconds is the CPU time of the relaying processes (both
	// servers on the federation path) over the measured part; RelayCores
	// that over its length; CPUPerStream the cores over the streams, in
	// percent of one core; CPUPerPacket the CPU time per forwarded packet,
	// in microseconds.
	RelayCPUSeconds float64 `json:"relay_cpu_seconds"`
	RelayCores      float64 `json:"relay_cores"`
	CPUPerStream    float64 `json:"cpu_per_stream_percent"`
	CPUPerPacket    float64 `json:"cpu_us_per_packet"`
	RelayRSSBytes   int64   `json:"relay_rss_bytes,omitempty"`
	// GeneratorCores is this process's CPU over the measured part (all the
	// devices; with the relay in this process, it too).
	GeneratorCores float64 `json:"generator_cores"`
	// LateSends counts frames the load generator sent more than 5 ms
	// after their time: many mean it, not the relay, was the limit.
	LateSends int64 `json:"late_sends"`
	// OfBare compares with the bare relay's run at the same stream count
	// (same kind of call): this run's figure over the bare relay's.
	OfBare *CallRatio `json:"of_bare,omitempty"`
	// Errors counts what went wrong in this run (send errors, packets of
	// the wrong room).
	Errors map[string]int64 `json:"errors,omitempty"`
}

// CallRatio is a run's figures over the bare relay's.
type CallRatio struct {
	ForwardedPerSecond float64 `json:"forwarded_per_second"`
	P99                float64 `json:"p99"`
	CPUPerStream       float64 `json:"cpu_per_stream"`
}

// CallMax is the outcome of a search on one path.
type CallMax struct {
	Path string `json:"path"`
	// Streams is the largest count held without loss, and within the
	// search's p99 bound when it has one (0: not even the first step);
	// FirstFailed the smallest that was not (0: none up to the search's
	// maximum).
	Streams      int     `json:"streams"`
	FirstFailed  int     `json:"first_failed"`
	P99          float64 `json:"p99_ms"` // at Streams
	CPUPerStream float64 `json:"cpu_per_stream_percent"`
	// OfBare is Streams over the bare relay's.
	OfBare float64 `json:"of_bare,omitempty"`
}

// Failed reports whether the run had errors (loss is a figure, not an
// error).
func (r *CallsResult) Failed() bool { return len(r.Errors) > 0 }

// Calls runs the calls scenario: for each path, Streams devices in
// one-to-one calls (or GroupSize in one group call) send media packets at
// the pace of real calls for Duration, and every packet is followed from
// sender to receiver. The homeservers are child xchatd processes; the
// bare relay is a child process too when Relay is set.
func Calls(ctx context.Context, o CallsOptions) (*CallsResult, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	has := func(p ...string) bool {
		for _, x := range p {
			if slices.Contains(o.Paths, x) {
				return true
			}
		}
		return false
	}
	dir, err := os.MkdirTemp("", "xchat-bench-calls-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	caDir := filepath.Join(dir, "ca")
	domains := []string{"a.bench.test", "b.bench.test"}
	r := newCallsRun(o, progress)
	defer r.close()
	res := &CallsResult{Scenario: "calls", FrameRate: o.FrameRate, AudioBytes: o.AudioBytes,
		Packets: "media packets (spec 12.5) whose data is a send timestamp and filler, not SFrame ciphertext: relays do not decrypt",
		Video:   "none"}
	if o.VideoSenders != 0 {
		senders := o.VideoSenders
		if senders < 0 {
			senders = o.GroupSize
		}
		res.Video = fmt.Sprintf("%d of %d participants send the test pattern at %dx%d, %d frames/s (%d-byte frames, key frames %d)",
			senders, o.GroupSize, o.VideoWidth, o.VideoHeight, o.VideoFPS,
			videoFrameBytes(o.VideoWidth, o.VideoHeight, false), videoFrameBytes(o.VideoWidth, o.VideoHeight, true))
	}
	var cpuNotes []string
	if has(CallsServer, CallsFederation, CallsGroupServer) {
		xchatd, err := findXchatd(ctx, o.Xchatd, dir, progress)
		if err != nil {
			return nil, err
		}
		n := 1
		if has(CallsFederation) {
			n = 2
		}
		set, err := startServers(ctx, xchatd, dir, "", domains[:n], o.ServerArgs, 0)
		if err != nil {
			return nil, err
		}
		defer set.stop()
		for _, s := range set.servers {
			fmt.Fprintf(progress, "xchat-bench: xchatd (pid %d) serving %s on %s\n", s.cmd.Process.Pid, s.domain, s.addr)
		}
		r.servers = set.servers
		cpuNotes = append(cpuNotes, "servers: user and system time of each child xchatd from /proc/PID/stat")
	} else {
		ca, err := devca.LoadOrCreate(caDir)
		if err != nil {
			return nil, err
		}
		if err := ca.Issue(caDir, domains[0]); err != nil {
			return nil, err
		}
	}
	r.caFile = devca.CertPath(caDir)
	if has(CallsRelay, CallsGroupRelay) {
		relay, err := startPeer(ctx, o.Relay, devca.DomainCertPath(caDir, domains[0]), devca.DomainKeyPath(caDir, domains[0]), ServeCallRelay)
		if err != nil {
			return nil, fmt.Errorf("bare relay: %w", err)
		}
		defer relay.close()
		r.relayAddr = relay.addr
		if relay.cmd != nil {
			r.relayPID = relay.cmd.Process.Pid
			res.Relay = "a child process"
			cpuNotes = append(cpuNotes, "bare relay: user and system time of the child process from /proc/PID/stat")
		} else {
			res.Relay = "this process"
			cpuNotes = append(cpuNotes, "bare relay: it runs in this process, so its CPU is the whole process's (relay and load generator)")
		}
		fmt.Fprintf(progress, "xchat-bench: bare relay in %s on %s\n", res.Relay, relay.addr)
	}
	res.CPU = strings.Join(cpuNotes, "; ")

	res.SearchP99 = float64(o.SearchP99.Microseconds()) / 1000
	res.LoadAverage[0] = loadAverage()
	for _, path := range callsPaths {
		if !has(path) {
			continue
		}
		if o.Search && !isGroupPath(path) {
			m, err := r.search(ctx, path, res)
			if err != nil {
				return nil, err
			}
			res.Max = append(res.Max, *m)
			continue
		}
		streams := o.Streams
		if isGroupPath(path) {
			streams = o.GroupSize
		}
		run, err := r.measure(ctx, path, streams, o.Duration, false)
		if err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, *run)
	}
	res.LoadAverage[1] = loadAverage()
	compareWithBare(res)
	for _, s := range r.servers {
		if _, err := readProc(s.cmd.Process.Pid); err != nil {
			r.errs.add("server: process gone", 1)
		}
	}
	res.Errors = r.errs.snapshot()
	return res, nil
}

func isGroupPath(p string) bool { return p == CallsGroupRelay || p == CallsGroupServer }

// barePath returns the bare relay path that path is compared with.
func barePath(path string) string {
	if isGroupPath(path) {
		return CallsGroupRelay
	}
	return CallsRelay
}

// compareWithBare fills in OfBare of every run that has a bare relay run
// at the same stream count, and of every search maximum.
func compareWithBare(res *CallsResult) {
	ratio := func(a, b float64) float64 {
		if b == 0 {
			return 0
		}
		return a / b
	}
	for i := range res.Runs {
		x := &res.Runs[i]
		if x.Path == barePath(x.Path) {
			continue
		}
		for _, b := range res.Runs {
			if b.Path == barePath(x.Path) && b.Streams == x.Streams {
				x.OfBare = &CallRatio{
					ForwardedPerSecond: ratio(x.ForwardedPerSecond, b.ForwardedPerSecond),
					P99:                ratio(x.Latency.P99, b.Latency.P99),
					CPUPerStream:       ratio(x.CPUPerStream, b.CPUPerStream),
				}
			}
		}
	}
	for i := range res.Max {
		for _, b := range res.Max {
			if b.Path == CallsRelay && res.Max[i].Path != CallsRelay && b.Streams > 0 {
				res.Max[i].OfBare = float64(res.Max[i].Streams) / float64(b.Streams)
			}
		}
	}
}

// search finds the largest stream count path holds with no loss (and a
// p99 within SearchP99 when set), and adds every step to res.Runs.
func (r *callsRun) search(ctx context.Context, path string, res *CallsResult) (*CallMax, error) {
	o := r.o
	m := &CallMax{Path: path}
	lo, hi := 0, 0
	n := o.SearchStart
	for range 24 {
		run, err := r.measure(ctx, path, n, o.SearchDuration, true)
		if err != nil {
			return nil, err
		}
		res.Runs = append(res.Runs, *run)
		ok := run.Lost == 0 && run.Expected > 0 && len(run.Errors) == 0 &&
			(o.SearchP99 == 0 || run.Latency.P99 <= float64(o.SearchP99.Microseconds())/1000)
		if ok {
			lo = n
			m.Streams, m.P99, m.CPUPerStream = n, run.Latency.P99, run.CPUPerStream
		} else {
			hi = n
			m.FirstFailed = n
		}
		switch {
		case ok && hi == 0 && n >= o.SearchMax:
			return m, nil
		case ok && hi == 0:
			n = min(2*n, o.SearchMax)
		case hi-lo <= max(2, lo/20):
			return m, nil
		default:
			n = max((lo+hi)/4*2, lo+2)
			if n >= hi {
				return m, nil
			}
		}
	}
	return m, nil
}

// WriteTable writes the result as a table.
func (r *CallsResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "calls: audio %d frames/s a stream, one packet of %d data bytes (%d-byte datagram) a frame\n",
		r.FrameRate, r.AudioBytes, r.AudioBytes+wire.CallPacketHeader)
	fmt.Fprintf(w, "packets: %s\ngroup video: %s\n", r.Packets, r.Video)
	if r.Relay != "" {
		fmt.Fprintf(w, "bare relay: in %s\n", r.Relay)
	}
	fmt.Fprintf(w, "latency: sender to receiver on loopback (both ends in this process); CPU per stream: relay CPU over the streams, %% of one core\n")
	fmt.Fprintf(w, "CPU: %s\n\n", r.CPU)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "path\tstreams\tcalls\tsent/s\tforwarded/s\tloss\tp50\tp99\tmax\trelay cores\tCPU/stream\tµs/packet\tgen cores\tlate\tvs bare: p99\tCPU\t\n")
	ms := func(v float64) string { return fmtDur(time.Duration(v * float64(time.Millisecond))) }
	for _, x := range r.Runs {
		path := x.Path
		if x.Search {
			path += " (search)"
		}
		p99, cpu := "", ""
		if x.OfBare != nil {
			p99, cpu = fmt.Sprintf("%.2fx", x.OfBare.P99), fmt.Sprintf("%.2fx", x.OfBare.CPUPerStream)
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.0f\t%.0f\t%.3f%%\t%s\t%s\t%s\t%.2f\t%.3f%%\t%.1f\t%.2f\t%d\t%s\t%s\t\n",
			path, x.Streams, x.Calls, x.SentPerSecond, x.ForwardedPerSecond, x.Loss*100, ms(x.Latency.P50), ms(x.Latency.P99), ms(x.Latency.Max),
			x.RelayCores, x.CPUPerStream, x.CPUPerPacket, x.GeneratorCores, x.LateSends, p99, cpu)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, x := range r.Runs {
		if x.VideoLatency != nil {
			fmt.Fprintf(w, "%s: video packets p50 %s, p99 %s, max %s\n", x.Path, ms(x.VideoLatency.P50), ms(x.VideoLatency.P99), ms(x.VideoLatency.Max))
		}
		for k, v := range x.Errors {
			fmt.Fprintf(w, "%s at %d streams: %s: %d\n", x.Path, x.Streams, k, v)
		}
	}
	if len(r.Max) > 0 {
		bound := ""
		if r.SearchP99 > 0 {
			bound = " and p99 ≤ " + ms(r.SearchP99)
		}
		fmt.Fprintf(w, "\nlargest stream count without loss%s\n\n", bound)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintf(tw, "path\tstreams\tfirst failing\tp99\tCPU/stream\tof bare relay\t\n")
		for _, m := range r.Max {
			failed, of := "none", "-"
			if m.FirstFailed > 0 {
				failed = fmt.Sprint(m.FirstFailed)
			}
			if m.OfBare > 0 {
				of = fmt.Sprintf("%.2f", m.OfBare)
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%.3f%%\t%s\t\n", m.Path, m.Streams, failed, ms(m.P99), m.CPUPerStream, of)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	fmt.Fprintf(w, "\nmachine load average %.2f at the start, %.2f at the end (other work shares the CPUs)\n", r.LoadAverage[0], r.LoadAverage[1])
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	writeErrors(tw, r.Errors)
	return tw.Flush()
}
