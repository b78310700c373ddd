package bench

import (
	"container/heap"
	"context"
	crand "crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// The data of every packet the bench sends begins with the step it
// belongs to (4 bytes), its send time in nanoseconds after the step's
// start (8 bytes, by this process's monotonic clock, which the receiving
// devices share) and its kind (1 byte); filler bytes follow.
const callPayloadHeader = 13

// Bench timing rules: a frame sent later than lateSend after its time is
// counted late; a stalled sender skips frames more than skipAfter behind
// rather than burst them; settleTimeout is how long the first packets of
// every call may take (links between servers are made on the first join).
const (
	lateSend      = 5 * time.Millisecond
	skipAfter     = 200 * time.Millisecond
	settleTimeout = 30 * time.Second
	// videoOverhead stands for what the media-frame encoding and SFrame
	// add to a video payload (CBOR fields, SFrame header and tag).
	videoOverhead = 34
)

// callZeros is the filler of the packets.
var callZeros [wire.MaxPacketData]byte

// videoFrameBytes is the ciphertext size of one frame of the test
// pattern at w by h (spec/12-calls.md section 12.8.2).
func videoFrameBytes(w, h int, key bool) int {
	n := w * h / 20
	if key {
		n *= 4
	}
	return 12 + n + videoOverhead
}

// callDev is one device of a calls run: a QUIC connection to a relay that
// negotiated DATAGRAMs, in one room.
type callDev struct {
	qc     *quic.Conn
	pool   *callPool
	handle uint32 // its relay's handle of its room
	source uint32
	seq    uint32    // next frame's sequence (its pacer's alone)
	room   *callRoom // nil until it joined
	heard  atomic.Uint32
}

// callRoom is one call: its devices, on one relay or two servers.
type callRoom struct {
	members []*callDev
}

// callPool is the devices of one path on one relay, grown on demand.
type callPool struct {
	name   string
	raddr  *net.UDPAddr
	tls    *tls.Config
	domain string // the homeserver's domain, "" for the bare relay
	trs    []*quic.Transport
	devs   []*callDev
}

// callsRun is the state of a calls run.
type callsRun struct {
	o        CallsOptions
	progress io.Writer
	errs     errCounts
	closed   atomic.Bool

	servers   []*childServer
	relayAddr string
	relayPID  int
	caFile    string

	pools  map[string]*callPool
	rooms  map[string][]*callRoom // by path
	closer []io.Closer
	stepID atomic.Uint32
	step   atomic.Pointer[callStep]
}

func newCallsRun(o CallsOptions, progress io.Writer) *callsRun {
	return &callsRun{o: o, progress: progress, pools: make(map[string]*callPool), rooms: make(map[string][]*callRoom)}
}

// close ends every device's connection and socket.
func (r *callsRun) close() {
	if !r.closed.CompareAndSwap(false, true) {
		return
	}
	for _, p := range r.pools {
		for _, d := range p.devs {
			d.qc.CloseWithError(0, "benchmark done")
		}
	}
	for _, c := range r.closer {
		c.Close()
	}
}

// pool returns the pool named name, on the bare relay (server < 0) or on
// server number server.
func (r *callsRun) pool(name string, server int) (*callPool, error) {
	if p := r.pools[name]; p != nil {
		return p, nil
	}
	addr, domain := r.relayAddr, ""
	if server >= 0 {
		if server >= len(r.servers) {
			return nil, fmt.Errorf("no server %d started", server)
		}
		addr, domain = r.servers[server].addr, r.servers[server].domain
	}
	raddr, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	tlsDomain := domain
	if tlsDomain == "" {
		tlsDomain = "a.bench.test"
	}
	conf, err := clientTLS(tlsDomain, r.caFile)
	if err != nil {
		return nil, err
	}
	p := &callPool{name: name, raddr: raddr, tls: conf, domain: domain}
	r.pools[name] = p
	return p, nil
}

// grow connects devices to p until it has n: on a homeserver each
// registers as a new account (which authenticates its connection); on
// the bare relay each only connects.
func (r *callsRun) grow(ctx context.Context, p *callPool, n int) error {
	have := len(p.devs)
	if have >= n {
		return nil
	}
	for len(p.trs)*devicesPerSource < n {
		uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: sourceIPs(p.raddr.IP, 1)[0]})
		if err != nil {
			return fmt.Errorf("local UDP socket: %w", err)
		}
		tr := &quic.Transport{Conn: uc}
		p.trs = append(p.trs, tr)
		r.closer = append(r.closer, tr, uc)
	}
	qconf := &quic.Config{
		HandshakeIdleTimeout: wire.HandshakeDeadline,
		MaxIdleTimeout:       wire.IdleTimeout,
		KeepAlivePeriod:      wire.KeepAlive,
		EnableDatagrams:      true,
	}
	var verifier [32]byte
	crand.Read(verifier[:])
	devs := make([]*callDev, n-have)
	var next atomic.Int64
	var errOnce sync.Once
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range min(n-have, r.o.ConnectConcurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				j := int(next.Add(1) - 1)
				if j >= len(devs) || ctx.Err() != nil {
					return
				}
				i := have + j
				var qc *quic.Conn
				var err error
				for attempt := range connectAttempts {
					tr := p.trs[i/devicesPerSource]
					if p.domain == "" {
						dctx, dcancel := context.WithTimeout(ctx, 30*time.Second)
						qc, err = tr.Dial(dctx, p.raddr, p.tls.Clone(), qconf)
						dcancel()
					} else {
						var d *device
						address := fmt.Sprintf("%s-%d-%d@%s", p.name, i, attempt, p.domain)
						if d, err = (&run{}).register(ctx, tr, p.raddr, p.tls, qconf, address, verifier[:]); err == nil {
							qc = d.qc
						}
					}
					if err == nil || ctx.Err() != nil {
						break
					}
					select {
					case <-time.After(time.Duration(attempt+1) * time.Second):
					case <-ctx.Done():
					}
				}
				if err == nil && !qc.ConnectionState().SupportsDatagrams.Remote {
					qc.CloseWithError(0, "")
					err = errNoDatagrams
				}
				if err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("%s device %d: %w", p.name, i, err); cancel() })
					return
				}
				devs[j] = &callDev{qc: qc, pool: p, source: rand.Uint32()}
			}
		}()
	}
	wg.Wait()
	for _, d := range devs {
		if d != nil {
			p.devs = append(p.devs, d)
		}
	}
	return firstErr
}

// join puts the devices of rooms that are not in one yet into their room,
// a fresh room identifier and token each, and starts their receivers.
func (r *callsRun) join(ctx context.Context, rooms []*callRoom) error {
	type job struct {
		d       *callDev
		id, tok []byte
		domains []string
	}
	var jobs []job
	for _, room := range rooms {
		if room.members[0].room != nil {
			continue
		}
		id, tok := make([]byte, wire.RoomIDLen), make([]byte, wire.RoomTokenLen)
		crand.Read(id)
		crand.Read(tok)
		var domains []string
		for _, d := range room.members {
			if dom := d.pool.domain; dom != "" && !slices.Contains(domains, dom) {
				domains = append(domains, dom)
			}
		}
		for _, d := range room.members {
			var others []string
			for _, dom := range domains {
				if dom != d.pool.domain {
					others = append(others, dom)
				}
			}
			jobs = append(jobs, job{d, id, tok, others})
			d.room = room
		}
	}
	ch := make(chan job)
	errc := make(chan error, 1)
	var wg sync.WaitGroup
	for range min(len(jobs), r.o.ConnectConcurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range ch {
				jctx, cancel := context.WithTimeout(ctx, wire.RequestDeadline)
				var h uint32
				var err error
				if j.d.pool.domain == "" {
					h, err = joinBareRoom(jctx, j.d.qc, j.id)
				} else {
					var ok wire.CallJoinOK
					err = wire.RoundTrip(jctx, j.d.qc, &wire.CallJoin{Room: j.id, Token: j.tok, Domains: append([]string{}, j.domains...)}, &ok)
					h = ok.Handle
				}
				cancel()
				if err != nil {
					select {
					case errc <- fmt.Errorf("call-join: %w", err):
					default:
					}
					continue
				}
				j.d.handle = h
				go r.receive(j.d)
			}
		}()
	}
	for _, j := range jobs {
		select {
		case ch <- j:
		case err := <-errc:
			close(ch)
			wg.Wait()
			return err
		}
	}
	close(ch)
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

// setup returns the rooms of a step of path at streams sending devices,
// connecting and joining what is missing.
func (r *callsRun) setup(ctx context.Context, path string, streams int) ([]*callRoom, error) {
	type side struct {
		name   string
		server int
	}
	var sides []side
	switch path {
	case CallsRelay:
		sides = []side{{"relay", -1}}
	case CallsServer:
		sides = []side{{"server", 0}}
	case CallsFederation:
		sides = []side{{"fed-a", 0}, {"fed-b", 1}}
	case CallsGroupRelay:
		sides = []side{{"group-relay", -1}}
	case CallsGroupServer:
		sides = []side{{"group-server", 0}}
	}
	pools := make([]*callPool, len(sides))
	for i, s := range sides {
		p, err := r.pool(s.name, s.server)
		if err != nil {
			return nil, err
		}
		pools[i] = p
	}
	rooms := r.rooms[path]
	switch {
	case isGroupPath(path):
		if err := r.grow(ctx, pools[0], streams); err != nil {
			return nil, err
		}
		if len(rooms) == 0 {
			rooms = []*callRoom{{members: pools[0].devs[:streams]}}
		}
	case len(pools) == 1:
		if err := r.grow(ctx, pools[0], streams); err != nil {
			return nil, err
		}
		for i := len(rooms); i < streams/2; i++ {
			rooms = append(rooms, &callRoom{members: pools[0].devs[2*i : 2*i+2]})
		}
	default:
		for _, p := range pools {
			if err := r.grow(ctx, p, streams/2); err != nil {
				return nil, err
			}
		}
		for i := len(rooms); i < streams/2; i++ {
			rooms = append(rooms, &callRoom{members: []*callDev{pools[0].devs[i], pools[1].devs[i]}})
		}
	}
	r.rooms[path] = rooms
	active := rooms
	if !isGroupPath(path) {
		active = rooms[:streams/2]
	}
	if err := r.join(ctx, active); err != nil {
		return nil, err
	}
	return active, nil
}

// receive reads d's datagrams until its connection ends and counts each
// in the step it belongs to.
func (r *callsRun) receive(d *callDev) {
	for {
		b, err := d.qc.ReceiveDatagram(context.Background())
		if err != nil {
			if !r.closed.Load() {
				r.errs.add("connection lost", 1)
			}
			return
		}
		now := time.Now()
		st := r.step.Load()
		p, err := wire.ParseMediaPacket(b)
		switch {
		case err != nil || len(p.Data) < callPayloadHeader:
			r.errs.add("malformed packet received", 1)
			continue
		case p.Handle != d.handle:
			r.errs.add("packet with another room's handle received", 1)
			continue
		case st == nil || binary.BigEndian.Uint32(p.Data) != st.id:
			continue // of an earlier step
		}
		sent := int64(binary.BigEndian.Uint64(p.Data[4:]))
		d.heard.Store(st.id)
		measured := 0
		if sent >= st.warmEnd.Load() {
			measured = 1
			lat := time.Duration(now.Sub(st.t0).Nanoseconds() - sent)
			st.hist.record(lat)
			if p.Data[12] == wire.KindVideo {
				st.video.record(lat)
			}
		}
		st.received[measured].Add(1)
	}
}

// callStep is one measurement: its counts, and when its parts begin.
type callStep struct {
	id      uint32
	t0      time.Time
	warmEnd atomic.Int64 // ns after t0 where the measured part begins
	stopAt  atomic.Int64 // ns after t0 where the senders stop

	hist, video histogram
	expected    [2]atomic.Int64 // deliveries due: warm-up, measured
	received    [2]atomic.Int64
	sent        atomic.Int64 // packets sent in the measured part
	late        atomic.Int64
	errs        errCounts
}

// callSender is one stream of frames of one device.
type callSender struct {
	d      *callDev
	fanout int64 // receivers of each packet
	kind   byte
	period time.Duration
	next   time.Duration // after t0
	frames uint32
	size   func(frame uint32) int
}

type senderHeap []*callSender

func (h senderHeap) Len() int           { return len(h) }
func (h senderHeap) Less(i, j int) bool { return h[i].next < h[j].next }
func (h senderHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *senderHeap) Push(x any)        { *h = append(*h, x.(*callSender)) }
func (h *senderHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// senders returns the streams of a step over rooms: every device sends
// audio; in a group call the first VideoSenders (all when negative) also
// send video. Each starts at a random point of its first period.
func (r *callsRun) senders(rooms []*callRoom, group bool) []*callSender {
	o := r.o
	audio := time.Second / time.Duration(o.FrameRate)
	var out []*callSender
	for _, room := range rooms {
		fanout := int64(len(room.members) - 1)
		for i, d := range room.members {
			out = append(out, &callSender{d: d, fanout: fanout, kind: wire.KindAudio, period: audio,
				next: rand.N(audio), size: func(uint32) int { return o.AudioBytes }})
			if group && (o.VideoSenders < 0 || i < o.VideoSenders) {
				video := time.Second / time.Duration(o.VideoFPS)
				w, h := o.VideoWidth, o.VideoHeight
				out = append(out, &callSender{d: d, fanout: fanout, kind: wire.KindVideo, period: video,
					next: rand.N(video), size: func(n uint32) int { return videoFrameBytes(w, h, n%30 == 0) }})
			}
		}
	}
	return out
}

// pace sends the frames of ss on their schedule until the step's stop
// time or ctx ends.
func (r *callsRun) pace(ctx context.Context, st *callStep, ss []*callSender) {
	h := senderHeap(ss)
	heap.Init(&h)
	buf := make([]byte, 0, wire.MaxCallPacket)
	t := time.NewTimer(time.Hour)
	defer t.Stop()
	for h.Len() > 0 {
		now := time.Since(st.t0)
		if now >= time.Duration(st.stopAt.Load()) {
			return
		}
		for h[0].next <= now {
			s := h[0]
			if now-s.next > lateSend {
				st.late.Add(1)
			}
			r.sendFrame(st, s, buf)
			s.next += s.period
			if s.next < now-skipAfter {
				s.next = now
			}
			heap.Fix(&h, 0)
			now = time.Since(st.t0)
		}
		t.Reset(max(h[0].next-now, 200*time.Microsecond))
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// sendFrame sends the next frame of s, split into packets of at most
// wire.MaxPacketData bytes of data.
func (r *callsRun) sendFrame(st *callStep, s *callSender, buf []byte) {
	d := s.d
	size := s.size(s.frames)
	s.frames++
	seq := d.seq
	d.seq++
	count := (size + wire.MaxPacketData - 1) / wire.MaxPacketData
	for i := range count {
		n := max(min(wire.MaxPacketData, size-i*wire.MaxPacketData), callPayloadHeader)
		pkt := wire.AppendMediaPacket(buf[:0], &wire.MediaPacket{Handle: d.handle, Source: d.source, Seq: seq,
			Index: uint8(i), Count: uint8(count), Data: callZeros[:n]})
		data := pkt[wire.CallPacketHeader:]
		binary.BigEndian.PutUint32(data, st.id)
		sent := time.Since(st.t0).Nanoseconds()
		binary.BigEndian.PutUint64(data[4:], uint64(sent))
		data[12] = s.kind
		if err := d.qc.SendDatagram(pkt); err != nil {
			st.errs.add(errKind("send", err), 1)
			return
		}
		if sent >= st.warmEnd.Load() {
			st.expected[1].Add(s.fanout)
			st.sent.Add(1)
		} else {
			st.expected[0].Add(s.fanout)
		}
	}
}

// pacers is how many goroutines send the frames of a step.
const pacers = 4

// measure runs one step of path at streams sending devices: the devices
// send until every one has heard from a peer (at most settleTimeout),
// then for Warmup, then for d, whose figures it returns.
func (r *callsRun) measure(ctx context.Context, path string, streams int, d time.Duration, search bool) (*CallRun, error) {
	rooms, err := r.setup(ctx, path, streams)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	group := isGroupPath(path)
	ss := r.senders(rooms, group)
	st := &callStep{id: r.stepID.Add(1), t0: time.Now()}
	st.warmEnd.Store(math.MaxInt64)
	st.stopAt.Store(math.MaxInt64)
	r.step.Store(st)
	parts := make([][]*callSender, pacers)
	for _, s := range ss {
		// A device's streams share its sequence, so they share a pacer.
		k := int(s.d.source % pacers)
		parts[k] = append(parts[k], s)
	}
	pctx, stopPacers := context.WithCancel(ctx)
	defer stopPacers()
	var wg sync.WaitGroup
	for _, part := range parts {
		wg.Add(1)
		go func() { defer wg.Done(); r.pace(pctx, st, part) }()
	}

	// Settle: every device hears a packet of this step.
	var devs []*callDev
	for _, room := range rooms {
		devs = append(devs, room.members...)
	}
	deadline := time.Now().Add(settleTimeout)
	for {
		silent := 0
		for _, x := range devs {
			if x.heard.Load() != st.id {
				silent++
			}
		}
		if silent == 0 {
			break
		}
		if time.Now().After(deadline) {
			st.errs.add(fmt.Sprintf("devices that heard nothing in %s", settleTimeout), int64(silent))
			break
		}
		if err := sleepCtx(ctx, 10*time.Millisecond); err != nil {
			return nil, err
		}
	}
	warm := time.Since(st.t0) + r.o.Warmup
	st.warmEnd.Store(int64(warm))
	st.stopAt.Store(int64(warm + d))
	pids := r.relayPIDs(path)
	if err := sleepCtx(ctx, time.Until(st.t0.Add(warm))); err != nil {
		return nil, err
	}
	cpu0, self0 := cpuOf(pids), procCPU(0)
	if err := sleepCtx(ctx, time.Until(st.t0.Add(warm+d))); err != nil {
		return nil, err
	}
	cpu1, self1 := cpuOf(pids), procCPU(0)
	var rss int64
	for _, pid := range pids {
		rss += readRSS(pid)
	}
	wg.Wait()

	// Drain: wait for what is in flight, until nothing more comes.
	drainEnd := time.Now().Add(r.o.Drain)
	last, lastChange := int64(-1), time.Now()
	for time.Now().Before(drainEnd) {
		got := st.received[0].Load() + st.received[1].Load()
		if got >= st.expected[0].Load()+st.expected[1].Load() {
			break
		}
		if got != last {
			last, lastChange = got, time.Now()
		} else if time.Since(lastChange) > 500*time.Millisecond {
			break
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return nil, err
		}
	}

	secs := d.Seconds()
	run := &CallRun{Path: path, Search: search, Streams: streams, Calls: len(rooms), Participants: len(rooms[0].members), Seconds: secs}
	run.Expected, run.Received = st.expected[1].Load(), st.received[1].Load()
	run.Lost = max(run.Expected-run.Received, 0)
	if run.Received > run.Expected {
		st.errs.add("more packets received than sent", run.Received-run.Expected)
	}
	if run.Expected > 0 {
		run.Loss = float64(run.Lost) / float64(run.Expected)
	}
	run.SentPerSecond = float64(st.sent.Load()) / secs
	run.ForwardedPerSecond = float64(run.Received) / secs
	run.Latency = latencyOf(&st.hist)
	if group && st.video.n.Load() > 0 {
		v := latencyOf(&st.video)
		run.VideoLatency = &v
	}
	run.RelayCPUSeconds = (cpu1 - cpu0).Seconds()
	run.RelayCores = run.RelayCPUSeconds / secs
	run.CPUPerStream = run.RelayCores / float64(streams) * 100
	if run.Received > 0 {
		run.CPUPerPacket = run.RelayCPUSeconds * 1e6 / float64(run.Received)
	}
	run.RelayRSSBytes = rss
	run.GeneratorCores = (self1 - self0).Seconds() / secs
	run.LateSends = st.late.Load()
	if e := st.errs.snapshot(); len(e) > 0 {
		run.Errors = e
		for k, v := range e {
			r.errs.add(k, v)
		}
	}
	fmt.Fprintf(r.progress, "xchat-bench: calls %s, %d streams: %.0f packets/s forwarded, loss %.3f%%, p50 %s, p99 %s, relay %.2f cores (%.3f%% a stream), load generator %.2f cores, %d late sends\n",
		path, streams, run.ForwardedPerSecond, run.Loss*100, fmtDur(time.Duration(run.Latency.P50*1e6)), fmtDur(time.Duration(run.Latency.P99*1e6)),
		run.RelayCores, run.CPUPerStream, run.GeneratorCores, run.LateSends)
	return run, nil
}

// relayPIDs returns the processes that relay path: its servers, or the
// bare relay (0: this process).
func (r *callsRun) relayPIDs(path string) []int {
	switch path {
	case CallsRelay, CallsGroupRelay:
		return []int{r.relayPID}
	case CallsFederation:
		return []int{r.servers[0].cmd.Process.Pid, r.servers[1].cmd.Process.Pid}
	}
	return []int{r.servers[0].cmd.Process.Pid}
}

func cpuOf(pids []int) time.Duration {
	var t time.Duration
	for _, pid := range pids {
		t += procCPU(pid)
	}
	return t
}

func latencyOf(h *histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	return Latency{P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)), Max: ms(h.maxDuration())}
}

// sleepCtx waits for d or until ctx ends.
func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
