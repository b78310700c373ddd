package bench

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"time"
)

// memWatch samples the memory of processes while a run lasts: the
// resident set (VmRSS of /proc/PID/status) of each, and the Go heap in use
// (HeapInuse) of each child xchatd through its pprof endpoint, or of this
// process through runtime/metrics. Peaks are kept per phase.
type memWatch struct {
	hc    http.Client
	mu    sync.Mutex
	procs []*memProc
}

// memProc is one watched process.
type memProc struct {
	name    string
	pid     int    // 0: this process
	heapURL string // the heap profile of a child, or "" (this process: runtime/metrics)

	rss, heap         int64         // last sample
	peakRSS, peakHeap int64         // in the current phase
	cpu               time.Duration // at the start of the current phase
}

// MemPeak is a process's memory in one phase of a run.
type MemPeak struct {
	Name string `json:"name"` // "server a.bench.test", "client"
	// StartRSSBytes is its resident set when the phase started;
	// PeakRSSBytes the largest sampled in the phase.
	StartRSSBytes int64 `json:"start_rss_bytes"`
	PeakRSSBytes  int64 `json:"peak_rss_bytes"`
	// PeakHeapBytes is the largest Go heap in use sampled in the phase
	// (runtime HeapInuse: spans holding objects), 0 when not sampled.
	PeakHeapBytes int64 `json:"peak_heap_bytes,omitempty"`
	// CPUSeconds is the process's CPU time (user and system) in the phase.
	CPUSeconds float64 `json:"cpu_seconds"`
}

// add watches process pid (0: this process) under name; pprofAddr, when
// not empty, is the host:port of its net/http/pprof endpoint.
func (m *memWatch) add(name string, pid int, pprofAddr string) {
	p := &memProc{name: name, pid: pid}
	if pprofAddr != "" {
		p.heapURL = "http://" + pprofAddr + "/debug/pprof/heap?debug=1"
	}
	m.mu.Lock()
	m.procs = append(m.procs, p)
	m.mu.Unlock()
}

// heapEvery is how many resident-set samples go to one heap sample of a
// child: a heap profile costs the child a stop of the world and some CPU.
const heapEvery = 5

// run samples every interval until ctx ends (a child's heap every
// heapEvery intervals).
func (m *memWatch) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for i := 0; ; i++ {
		m.sampleSome(ctx, i%heapEvery == 0)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// sample reads every process's memory once.
func (m *memWatch) sample(ctx context.Context) { m.sampleSome(ctx, true) }

// sampleSome reads every process's resident set, and with heap the
// children's heap too.
func (m *memWatch) sampleSome(ctx context.Context, heap bool) {
	m.mu.Lock()
	procs := append([]*memProc(nil), m.procs...)
	m.mu.Unlock()
	for _, p := range procs {
		rss := readRSS(p.pid)
		h := int64(-1)
		switch {
		case p.pid == 0:
			h = selfHeapInuse()
		case p.heapURL != "" && heap:
			h = childHeapInuse(ctx, &m.hc, p.heapURL)
		}
		m.mu.Lock()
		p.rss = rss
		p.peakRSS = max(p.peakRSS, rss)
		if h >= 0 {
			p.heap = h
			p.peakHeap = max(p.peakHeap, h)
		}
		m.mu.Unlock()
	}
}

// begin starts a phase: it samples every process and returns their
// resident sets, by name, where the phase's peaks start.
func (m *memWatch) begin(ctx context.Context) map[string]int64 {
	m.sample(ctx)
	m.mu.Lock()
	defer m.mu.Unlock()
	start := make(map[string]int64, len(m.procs))
	for _, p := range m.procs {
		p.cpu = procCPU(p.pid)
		p.peakRSS, p.peakHeap = p.rss, p.heap
		start[p.name] = p.rss
	}
	return start
}

// end returns the peaks of the phase that began with start.
func (m *memWatch) end(start map[string]int64) []MemPeak {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]MemPeak, len(m.procs))
	for i, p := range m.procs {
		out[i] = MemPeak{Name: p.name, StartRSSBytes: start[p.name], PeakRSSBytes: p.peakRSS, PeakHeapBytes: p.peakHeap,
			CPUSeconds: (procCPU(p.pid) - p.cpu).Seconds()}
	}
	return out
}

// procCPU returns the CPU time of process pid (0: this one), or 0.
func procCPU(pid int) time.Duration {
	if pid == 0 {
		pid = os.Getpid()
	}
	st, _ := readProc(pid)
	return st.CPU
}

// readRSS returns the resident set of process pid (0: this one) from
// /proc, or 0.
func readRSS(pid int) int64 {
	path := "/proc/self/status"
	if pid != 0 {
		path = fmt.Sprintf("/proc/%d/status", pid)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			if f := strings.Fields(v); len(f) > 0 {
				n, _ := strconv.ParseInt(f[0], 10, 64)
				return n << 10
			}
		}
	}
	return 0
}

// selfHeapInuse returns this process's Go heap in use: the bytes of heap
// spans holding objects (live or not yet swept) and their free slots.
func selfHeapInuse() int64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
	metrics.Read(s)
	var n int64
	for _, x := range s {
		if x.Value.Kind() == metrics.KindUint64 {
			n += int64(x.Value.Uint64())
		}
	}
	return n
}

// childHeapInuse reads HeapInuse from a heap profile in the text format of
// net/http/pprof (debug=1), or returns -1 when it cannot (the last
// sample stands).
func childHeapInuse(ctx context.Context, hc *http.Client, url string) int64 {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return -1
	}
	resp, err := hc.Do(req)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "# HeapInuse = "); ok {
			if n, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64); err == nil {
				return n
			}
		}
	}
	return -1
}

// freeTCPPorts returns the first of n consecutive free TCP ports on
// 127.0.0.1, for the started servers' pprof endpoints.
func freeTCPPorts(n int) (int, error) {
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return 0, err
		}
		base := ln.Addr().(*net.TCPAddr).Port
		ok := true
		var more []net.Listener
		for i := 1; i < n && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				ok = false
				break
			}
			more = append(more, l)
		}
		ln.Close()
		for _, l := range more {
			l.Close()
		}
		if ok {
			return base, nil
		}
	}
	return 0, fmt.Errorf("no %d consecutive free TCP ports on 127.0.0.1", n)
}
