package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// Files scenario paths: the raw QUIC ceiling, the first homeserver alone,
// and the second homeserver fetching from the first over federation.
const (
	pathRaw        = "raw QUIC"
	pathServer     = "one server"
	pathFederation = "federation"
)

// FilesOptions configure the files scenario.
type FilesOptions struct {
	// Sizes are the plaintext sizes of the files, in bytes.
	Sizes []int64
	// Client picks how files are moved: "library" (the reference client:
	// SendGroupFile and DownloadFile, with encryption) or "wire" (the
	// blob requests themselves, random blobs, Parallel part requests in
	// flight).
	Client string
	// Parallel is how many part requests the wire client keeps in flight
	// (upload and download); the client library keeps its own number.
	Parallel int
	// MinBytes is how many bytes each size moves at least per path and
	// direction: a small file is moved several times (at most 16) so
	// that its figure is not one short transfer.
	MinBytes int64
	// SampleEvery is how often memory is sampled.
	SampleEvery time.Duration

	// Xchatd is the xchatd binary to start (as in Options); DB, when set,
	// a PostgreSQL URL whose fresh schemas the servers store in.
	Xchatd     string
	DB         string
	ServerArgs []string
	// RawPeer is the command line of the raw QUIC peer (xchat-bench
	// raw-quic-peer), to which --listen, --cert and --key are added; empty:
	// the peer runs in this process.
	RawPeer []string

	// Progress receives a line per file moved; nil discards them.
	Progress io.Writer
}

// DefaultFilesOptions returns the defaults of xchat-bench files.
func DefaultFilesOptions() FilesOptions {
	return FilesOptions{Sizes: []int64{1 << 20, 64 << 20}, Client: "library", Parallel: 6, MinBytes: 16 << 20, SampleEvery: 100 * time.Millisecond}
}

func (o *FilesOptions) validate() error {
	switch {
	case len(o.Sizes) == 0:
		return errors.New("--sizes: at least one size")
	case o.Client != "library" && o.Client != "wire":
		return fmt.Errorf("--client %q: want library or wire", o.Client)
	case o.Parallel < 1 || o.Parallel > 64:
		return errors.New("--parallel must be 1 to 64")
	case o.SampleEvery <= 0:
		return errors.New("--sample-every must be positive")
	}
	for _, s := range o.Sizes {
		if s < 1 || s > wire.MaxFileSize {
			return fmt.Errorf("--sizes: %d bytes: want 1 to %d", s, int64(wire.MaxFileSize))
		}
	}
	return nil
}

// ParseSizes parses a comma-separated list of sizes: a number of bytes
// with an optional unit KiB, MiB or GiB (or k, M, G, the same).
func ParseSizes(s string) ([]int64, error) {
	var out []int64
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		num := strings.TrimRight(f, "KMGikBb")
		unit := f[len(num):]
		mult := int64(1)
		switch strings.ToLower(unit) {
		case "", "b":
		case "k", "kib":
			mult = 1 << 10
		case "m", "mib":
			mult = 1 << 20
		case "g", "gib":
			mult = 1 << 30
		default:
			return nil, fmt.Errorf("size %q: unit %q (want KiB, MiB or GiB)", f, unit)
		}
		n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
		if err != nil || n <= 0 {
			return nil, fmt.Errorf("size %q: want a positive number", f)
		}
		out = append(out, n*mult)
	}
	return out, nil
}

// FilesResult is the outcome of the files scenario.
type FilesResult struct {
	Scenario string `json:"scenario"` // "files"
	// Client says how the client side moved the files, and how many part
	// requests it kept in flight.
	Client string `json:"client"`
	Store  string `json:"store"`
	// RawPeer says where the raw QUIC peer ran ("a child process" or
	// "this process").
	RawPeer string `json:"raw_peer"`
	// Memory says how memory was measured.
	Memory      string           `json:"memory"`
	Sizes       []FileSizeResult `json:"sizes"`
	LoadAverage [2]float64       `json:"load_average"`
	Errors      map[string]int64 `json:"errors"`
}

// FileSizeResult is the figures of one file size.
type FileSizeResult struct {
	FileBytes int64 `json:"file_bytes"` // plaintext
	BlobBytes int64 `json:"blob_bytes"` // padded ciphertext: the bytes each transfer moves
	Repeats   int   `json:"repeats"`    // transfers per path and direction
	// Transfers are the paths and directions, the raw ceiling first.
	Transfers []FileTransfer `json:"transfers"`
	// RateLimited counts the part requests of this size answered
	// rate_limited (the fed-blob-get rate) and sent again after the
	// retry-after (wire client only).
	RateLimited int64 `json:"rate_limited,omitempty"`
	// Memory is each process's memory while this size was moved.
	Memory []MemPeak `json:"memory"`
}

// FileTransfer is one path and direction of one file size.
type FileTransfer struct {
	Path      string  `json:"path"`      // "raw QUIC", "one server", "federation"
	Direction string  `json:"direction"` // "upload" or "download"
	Count     int     `json:"count"`     // transfers that succeeded (failures are in Errors)
	Seconds   float64 `json:"seconds"`   // of those transfers
	// MBps is blob bytes (10^6 a MB) per second over those transfers.
	MBps float64 `json:"mb_per_second"`
	// OfRaw is MBps over the raw QUIC figure of the same direction.
	OfRaw float64 `json:"of_raw"`
}

// Failed reports whether a transfer failed.
func (r *FilesResult) Failed() bool { return len(r.Errors) > 0 }

// fileHandle is a file of a run: what prepare made, then what the
// upload made of it.
type fileHandle struct {
	size int64
	path string       // the plaintext file (client library)
	ref  wire.FileRef // the uploaded blob: Domain, BlobID, Hash, Size (and Key, Name with the client library)
}

// fileDriver moves files through the homeservers: uploads by a client of
// the first, downloads by a client of the first or of the second. Each
// transfer returns how long its timed part took: what it costs to set up
// a file before and to wait for its reference after are left out.
type fileDriver interface {
	prepare(ctx context.Context, size int64) (*fileHandle, error)
	upload(ctx context.Context, f *fileHandle) (time.Duration, error)
	download(ctx context.Context, f *fileHandle, federated bool) (time.Duration, error)
	// done removes what the file left on disk.
	done(f *fileHandle)
	// rateLimited returns how many requests were answered rate_limited
	// and sent again since the last call.
	rateLimited() int64
	describe() string
	close()
}

// filesEnv is what a driver gets to set itself up.
type filesEnv struct {
	dir      string
	servers  []*childServer // a.bench.test, b.bench.test
	parallel int
}

// Files runs the files scenario: for each size, a file is uploaded by a
// client of a.bench.test and downloaded by a client of a.bench.test (one
// server) and by a client of b.bench.test through its own server, which
// fetches the blob from a.bench.test over federation; the same byte
// counts move over one raw QUIC stream between this process and a peer
// process as the ceiling. The servers' memory is sampled throughout.
func Files(ctx context.Context, o FilesOptions) (*FilesResult, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	newDriver := newLibraryDriver
	if o.Client == "wire" {
		newDriver = newWireDriver
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "xchat-bench-files-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	xchatd, err := findXchatd(ctx, o.Xchatd, dir, progress)
	if err != nil {
		return nil, err
	}
	pprofBase, err := freeTCPPorts(2)
	if err != nil {
		return nil, err
	}
	domains := []string{"a.bench.test", "b.bench.test"}
	set, err := startServers(ctx, xchatd, dir, o.DB, domains, o.ServerArgs, pprofBase)
	if err != nil {
		return nil, err
	}
	defer set.stop()
	res := &FilesResult{Scenario: "files", Store: "embedded SQLite", RawPeer: "a child process"}
	if o.DB != "" {
		res.Store = "PostgreSQL"
	}
	var mw memWatch
	for i, s := range set.servers {
		fmt.Fprintf(progress, "xchat-bench: xchatd (pid %d) serving %s on %s, %s in %s, pprof on 127.0.0.1:%d\n", s.cmd.Process.Pid, s.domain, s.addr, s.store, dir, pprofBase+i)
		mw.add("server "+s.domain, s.cmd.Process.Pid, fmt.Sprintf("127.0.0.1:%d", pprofBase+i))
	}

	caDir := filepath.Join(dir, "ca")
	peer, err := startRawPeer(ctx, o.RawPeer, filepath.Join(caDir, domains[0]+".pem"), filepath.Join(caDir, domains[0]+".key"))
	if err != nil {
		return nil, err
	}
	defer peer.close()
	if peer.cmd == nil {
		res.RawPeer = "this process"
	} else {
		mw.add("raw QUIC peer", peer.cmd.Process.Pid, "")
	}
	rawTLS, err := clientTLS(domains[0], set.servers[0].caFile)
	if err != nil {
		return nil, err
	}
	rawConn, err := quic.DialAddr(ctx, peer.addr, rawTLS, &quic.Config{MaxIdleTimeout: wire.IdleTimeout, KeepAlivePeriod: wire.KeepAlive})
	if err != nil {
		return nil, fmt.Errorf("raw QUIC peer: %w", err)
	}
	defer rawConn.CloseWithError(0, "")

	env := &filesEnv{dir: dir, servers: set.servers, parallel: o.Parallel}
	drv, err := newDriver(ctx, env)
	if err != nil {
		return nil, err
	}
	defer drv.close()
	res.Client = drv.describe()
	mw.add("client (xchat-bench)", 0, "")
	res.Memory = fmt.Sprintf("each server is a child xchatd: RSS from /proc/PID/status every %s, Go HeapInuse from its pprof heap profile every %s; "+
		"the raw QUIC peer: RSS; the client is this process: RSS from /proc/self/status and heap in use from runtime/metrics every %s; CPU is user and system time from /proc/PID/stat", o.SampleEvery, heapEvery*o.SampleEvery, o.SampleEvery)
	wctx, stopWatch := context.WithCancel(ctx)
	watched := make(chan struct{})
	go func() { defer close(watched); mw.run(wctx, o.SampleEvery) }()
	defer func() { stopWatch(); <-watched }()

	fr := &filesRun{drv: drv, raw: rawConn, mw: &mw, progress: progress}
	res.LoadAverage[0] = loadAverage()
	for _, size := range o.Sizes {
		sr, err := fr.size(ctx, size, o.MinBytes)
		if err != nil {
			return nil, err
		}
		res.Sizes = append(res.Sizes, *sr)
		fmt.Fprintf(progress, "xchat-bench: %s done\n", fmtBytes(size))
	}
	res.LoadAverage[1] = loadAverage()
	for _, s := range set.servers {
		if _, err := readProc(s.cmd.Process.Pid); err != nil {
			fr.errs.add("server: process gone", 1)
		}
	}
	res.Errors = fr.errs.snapshot()
	return res, nil
}

// filesRun is what moves the files of a run.
type filesRun struct {
	drv      fileDriver
	raw      *quic.Conn // to the raw QUIC peer
	mw       *memWatch
	progress io.Writer
	errs     errCounts
}

// size moves a file of size bytes (several times when it is below
// minBytes) up and down each path, and the same byte count up and down
// the raw QUIC stream, and returns the figures. A failed transfer is
// counted in r.errs; a failure of the raw stream or of making the file
// ends the run.
func (r *filesRun) size(ctx context.Context, size, minBytes int64) (*FileSizeResult, error) {
	sr := &FileSizeResult{FileBytes: size, BlobBytes: int64(wire.PaddedBlobSize(wire.EncryptedFileSize(uint64(size))))}
	sr.Repeats = int(min(max(minBytes/size, 1), 16))
	start := r.mw.begin(ctx)
	type moved struct {
		d time.Duration
		n int
	}
	secs := map[[2]string]moved{}
	add := func(path, dir string, d time.Duration) {
		m := secs[[2]string{path, dir}]
		secs[[2]string{path, dir}] = moved{m.d + d, m.n + 1}
	}
	for rep := range sr.Repeats {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		for _, up := range []bool{true, false} {
			d, err := rawTransfer(ctx, r.raw, up, sr.BlobBytes)
			if err != nil {
				return nil, fmt.Errorf("raw QUIC: %w", err)
			}
			add(pathRaw, direction(up), d)
		}
		f, err := r.drv.prepare(ctx, size)
		if err != nil {
			return nil, fmt.Errorf("%s file: %w", fmtBytes(size), err)
		}
		d, err := r.drv.upload(ctx, f)
		if err != nil {
			r.errs.add(errKind("upload", err), 1)
			fmt.Fprintf(r.progress, "xchat-bench: upload of %s: %v\n", fmtBytes(size), err)
			r.drv.done(f)
			continue
		}
		add(pathServer, "upload", d)
		for _, fed := range []bool{false, true} {
			path := pathServer
			if fed {
				path = pathFederation
			}
			d, err := r.drv.download(ctx, f, fed)
			if err != nil {
				r.errs.add(errKind(path+" download", err), 1)
				fmt.Fprintf(r.progress, "xchat-bench: %s download of %s: %v\n", path, fmtBytes(size), err)
				continue
			}
			add(path, "download", d)
		}
		r.drv.done(f)
		fmt.Fprintf(r.progress, "xchat-bench: %s file %d of %d moved\n", fmtBytes(size), rep+1, sr.Repeats)
	}
	sr.Memory = r.mw.end(start)
	sr.RateLimited = r.drv.rateLimited()
	raw := map[string]float64{}
	for _, row := range [][2]string{{pathRaw, "upload"}, {pathRaw, "download"}, {pathServer, "upload"}, {pathServer, "download"}, {pathFederation, "download"}} {
		m := secs[row]
		t := FileTransfer{Path: row[0], Direction: row[1], Seconds: m.d.Seconds(), Count: m.n}
		if m.d > 0 {
			t.MBps = float64(sr.BlobBytes) * float64(m.n) / m.d.Seconds() / 1e6
		}
		if row[0] == pathRaw {
			raw[row[1]] = t.MBps
		} else if raw[row[1]] > 0 {
			t.OfRaw = t.MBps / raw[row[1]]
		}
		sr.Transfers = append(sr.Transfers, t)
	}
	return sr, nil
}

func direction(up bool) string {
	if up {
		return "upload"
	}
	return "download"
}

// TargetRatio is the files scenario's target: every path and direction
// at least this fraction of the raw QUIC figure.
const TargetRatio = 0.5

// WriteTable writes the result as tables: throughput, then memory.
func (r *FilesResult) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "files: %s; %s; raw QUIC peer in %s\n", r.Client, r.Store, r.RawPeer)
	fmt.Fprintf(w, "MB/s = blob bytes (padded ciphertext) per second, 10^6 bytes a MB; target: every direction ≥ %.0f%% of raw QUIC\n\n", TargetRatio*100)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "file\tblob\trepeats\tpath\tdirection\tseconds\tMB/s\tof raw\ttarget\t\n")
	for _, s := range r.Sizes {
		for _, t := range s.Transfers {
			ratio, target := "", ""
			if t.Count == 0 {
				ratio, target = "-", "failed"
			} else if t.Path != pathRaw {
				ratio = fmt.Sprintf("%.0f%%", t.OfRaw*100)
				target = "met"
				if t.OfRaw < TargetRatio {
					target = "missed"
				}
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%.3f\t%.1f\t%s\t%s\t\n", fmtBytes(s.FileBytes), fmtBytes(s.BlobBytes), s.Repeats,
				t.Path, t.Direction, t.Seconds, t.MBps, ratio, target)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.Sizes {
		if s.RateLimited > 0 {
			fmt.Fprintf(w, "%s: %d part requests answered rate_limited and sent again after the retry-after\n", fmtBytes(s.FileBytes), s.RateLimited)
		}
	}
	fmt.Fprintf(w, "\nmemory (%s)\n\n", r.Memory)
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "file\tprocess\tRSS at start\tpeak RSS\tpeak Go heap\tCPU\t\n")
	for _, s := range r.Sizes {
		for _, m := range s.Memory {
			heap := "-"
			if m.PeakHeapBytes > 0 {
				heap = fmtBytes(m.PeakHeapBytes)
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%.2f s\t\n", fmtBytes(s.FileBytes), m.Name, fmtBytes(m.StartRSSBytes), fmtBytes(m.PeakRSSBytes), heap, m.CPUSeconds)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(w, "\nmachine load average %.2f at the start, %.2f at the end (other work shares the CPUs)\n", r.LoadAverage[0], r.LoadAverage[1])
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	writeErrors(tw, r.Errors)
	return tw.Flush()
}
