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
	"sync"
	"sync/atomic"
	"time"

	"github.com/xchat-im/xchat/client"
)

// maxGroupDevices bounds the group scenario's members: each registers
// with the reference client, which sends from the machine's one source
// address, and a homeserver takes 20 registrations at once from one source
// address.
const maxGroupDevices = 20

// groupMember is one member of the group scenario: a reference-client
// profile with a connection that receives and one that sends.
type groupMember struct {
	address string
	p       *client.Profile
	send    *client.Client
	recv    *client.Client
	seen    map[string]bool // sender/seq of the messages received
}

// Group runs the group scenario: Devices members (one device each) of one
// homeserver, each running the reference client with MLS (suite 0xF031),
// in one group; every member sends text messages to the group for
// Duration, at Rate messages per second in total (0: as fast as they
// can), and every message is followed to every other member. An envelope
// here is one message sealed for one device: a message to n members is
// n-1 envelopes.
func Group(ctx context.Context, o Options) (*Result, error) {
	if err := o.validate("group"); err != nil {
		return nil, err
	}
	if o.Devices < 2 || o.Devices > maxGroupDevices {
		return nil, fmt.Errorf("--devices must be 2 to %d in the group scenario (members register from one address)", maxGroupDevices)
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "xchat-bench-group-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	t := &target{addr: o.Server, domain: o.Domain, ca: o.CAFile, pid: o.ServerPID}
	store := ""
	if o.Server == "" {
		xchatd, err := findXchatd(ctx, o.Xchatd, dir, progress)
		if err != nil {
			return nil, err
		}
		domain := "bench.test"
		if o.Domain != "" {
			domain = o.Domain
		}
		set, err := startServers(ctx, xchatd, dir, o.DB, []string{domain}, o.ServerArgs, o.PprofPort)
		if err != nil {
			return nil, err
		}
		defer set.stop()
		s := set.servers[0]
		t = &target{addr: s.addr, domain: s.domain, ca: s.caFile, pid: s.cmd.Process.Pid}
		store = s.store
		fmt.Fprintf(progress, "xchat-bench: xchatd (pid %d) serving %s on %s, %s\n", t.pid, t.domain, t.addr, store)
	}
	if t.pid != 0 {
		t.idle, _ = readProc(t.pid)
	}

	res := &Result{Scenario: "group", Devices: o.Devices, TargetRate: o.Rate, Concurrency: o.Devices, Store: store, Errors: map[string]int64{}}
	var errs errCounts
	connectStart := time.Now()
	prefix := "g" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36)
	members := make([]*groupMember, o.Devices)
	for i := range members {
		m := &groupMember{address: fmt.Sprintf("%s-%d@%s", prefix, i, t.domain), seen: map[string]bool{}}
		if m.p, err = client.OpenProfile(filepath.Join(dir, fmt.Sprintf("member-%d", i))); err != nil {
			return nil, err
		}
		defer m.p.Close()
		if _, err := client.Register(ctx, m.p, client.RegisterOptions{Address: m.address, Server: t.addr, CAFile: t.ca}); err != nil {
			return nil, fmt.Errorf("register %s: %w", m.address, err)
		}
		for _, c := range []**client.Client{&m.send, &m.recv} {
			if *c, err = client.Connect(ctx, m.p); err != nil {
				return nil, err
			}
			defer (*c).Close()
		}
		members[i] = m
	}
	var others []string
	for _, m := range members[1:] {
		others = append(others, m.address)
	}
	gid, err := members[0].send.CreateGroup(ctx, "bench", others)
	if err != nil {
		return nil, err
	}
	res.ConnectSeconds = time.Since(connectStart).Seconds()
	fmt.Fprintf(progress, "xchat-bench: %d members registered and in group %x in %.1fs\n", o.Devices, gid, res.ConnectSeconds)

	var hist histogram
	var delivered, duplicated atomic.Int64
	var lastDelivery atomic.Int64
	var loadStart time.Time
	var latencyFrom atomic.Int64
	rctx, stopReceiving := context.WithCancel(ctx)
	var rwg sync.WaitGroup
	for _, m := range members {
		rwg.Add(1)
		go func() {
			defer rwg.Done()
			var mu sync.Mutex
			err := m.recv.Receive(rctx, client.ReceiveOptions{
				Wait: 24 * time.Hour,
				OnMessage: func(msg client.Message) {
					f := strings.Fields(msg.Text)
					if len(f) != 3 || f[0] != "bench" {
						return
					}
					sentNs, _ := strconv.ParseInt(f[2], 10, 64)
					mu.Lock()
					key := msg.From + "/" + f[1]
					dup := m.seen[key]
					m.seen[key] = true
					mu.Unlock()
					if dup {
						duplicated.Add(1)
						return
					}
					delivered.Add(1)
					now := time.Now()
					lastDelivery.Store(int64(now.Sub(loadStart)))
					if sentNs >= latencyFrom.Load() {
						hist.record(now.Sub(time.Unix(0, sentNs)))
					}
				},
				OnDrop: func(_ [16]byte, err error) { errs.add("dropped: "+err.Error(), 1) },
			})
			if err != nil && rctx.Err() == nil {
				errs.add("receive: "+err.Error(), 1)
			}
		}()
	}
	// Every member joins (its Welcome) before the load starts.
	for deadline := time.Now().Add(30 * time.Second); ; {
		n := 0
		for _, m := range members[1:] {
			if gs, err := client.ProfileGroups(ctx, m.p); err == nil && len(gs) == 1 {
				n++
			}
		}
		if n == len(members)-1 {
			break
		}
		if time.Now().After(deadline) {
			stopReceiving()
			return nil, fmt.Errorf("only %d of %d members joined the group in 30 s", n, len(members)-1)
		}
		time.Sleep(20 * time.Millisecond)
	}

	var connected procStats
	if t.pid != 0 {
		connected, _ = readProc(t.pid)
	}
	self, _ := readProc(os.Getpid())
	res.LoadAverage[0] = loadAverage()
	loadStart = time.Now()
	latencyFrom.Store(loadStart.Add(o.Warmup).UnixNano())
	var messages, attempted atomic.Int64
	lctx, stopLoad := context.WithTimeout(ctx, o.Duration)
	var swg sync.WaitGroup
	interval := time.Duration(0)
	if o.Rate > 0 {
		interval = time.Duration(float64(time.Second) * float64(o.Devices) / o.Rate)
	}
	stopProgress := (&run{o: o, progress: progress, done: make(chan struct{})}).every(func(elapsed time.Duration) {
		fmt.Fprintf(progress, "xchat-bench: %4.0fs  %d messages sent, %d deliveries\n", elapsed.Seconds(), messages.Load(), delivered.Load())
	})
	for i, m := range members {
		swg.Add(1)
		go func() {
			defer swg.Done()
			next := time.Now()
			for seq := 0; lctx.Err() == nil; seq++ {
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						select {
						case <-time.After(d):
						case <-lctx.Done():
							return
						}
					}
					next = next.Add(interval)
				}
				attempted.Add(1)
				text := fmt.Sprintf("bench %d-%d %d", i, seq, time.Now().UnixNano())
				if err := m.send.SendGroup(ctx, gid, text); err != nil {
					errs.add(errKind("send", err), 1)
					continue
				}
				messages.Add(1)
			}
		}()
	}
	swg.Wait()
	stopLoad()
	sendSecs := time.Since(loadStart).Seconds()
	want := messages.Load() * int64(o.Devices-1)
	for deadline := time.Now().Add(o.Drain); delivered.Load() < want && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
	}
	stopProgress()
	stopReceiving()
	rwg.Wait()

	selfEnd, _ := readProc(os.Getpid())
	res.LoadAverage[1] = loadAverage()
	res.LoadGenerator = LoadStats{CPUSeconds: (selfEnd.CPU - self.CPU).Seconds(), PeakRSSBytes: selfEnd.Peak}
	if t.pid != 0 {
		end, err := readProc(t.pid)
		if err == nil {
			res.Servers = []ServerStats{{Domain: t.domain, PID: t.pid, Devices: 2 * o.Devices,
				CPUSeconds: (end.CPU - connected.CPU).Seconds(), TotalCPU: end.CPU.Seconds(), PeakRSSBytes: end.Peak,
				IdleRSSBytes: t.idle.RSS, ConnectedRSS: connected.RSS,
				BytesPerDevice: max(connected.RSS-t.idle.RSS, 0) / int64(2*o.Devices)}}
			if d := delivered.Load(); d > 0 {
				res.ServerCPUPerEnvelope = (end.CPU - connected.CPU).Seconds() / float64(d) * 1e6
			}
		}
	}
	res.Seconds = sendSecs
	res.Warmup = o.Warmup.Seconds()
	res.Messages = messages.Load()
	res.MessagesPerSecond = float64(res.Messages) / sendSecs
	res.Attempted = attempted.Load() * int64(o.Devices-1)
	res.Sent = want
	res.Delivered = delivered.Load()
	res.Duplicated = duplicated.Load()
	res.Lost = max(want-res.Delivered, 0)
	res.SentPerSecond = float64(want) / sendSecs
	if last := time.Duration(lastDelivery.Load()); last > 0 {
		res.DeliveredPerSecond = float64(res.Delivered) / last.Seconds()
	}
	errs.add("lost", res.Lost)
	errs.add("duplicated", res.Duplicated)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	res.Latency = Latency{P50: ms(hist.quantile(0.50)), P90: ms(hist.quantile(0.90)), P99: ms(hist.quantile(0.99)), Max: ms(hist.maxDuration())}
	res.Errors = errs.snapshot()
	if len(res.Errors) == 0 {
		res.Errors = nil
	}
	if ctx.Err() != nil {
		return nil, errors.Join(ctx.Err())
	}
	return res, nil
}
