package bench

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	crand "crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// CrashOptions configure the crash scenario (see [Crash]).
type CrashOptions struct {
	Duration time.Duration // how long senders send; the kills fall in it
	Kills    int           // how many times a server is killed
	// KillMin and KillMax bound the time from the start (or from the end
	// of the last restart) to the next kill, chosen uniformly between them,
	// but at most the time left over the kills still to come and one.
	// Zero: a half and one and a half times Duration/(Kills+1).
	KillMin, KillMax time.Duration
	// Federation runs two homeservers: senders on the first, recipients
	// on the second. KillSide then says whose server is killed: "sender"
	// (the default), "receiver" or "both" (one of the two at random each
	// time).
	Federation bool
	KillSide   string
	// Devices is the number of senders and of recipients (each).
	Devices     int
	Concurrency int           // send requests in flight at most
	Batch       int           // envelopes per send request
	Drain       time.Duration // how long to wait for deliveries after the senders stop
	DB          string        // PostgreSQL URL (fresh schema per server); empty: embedded SQLite
	Xchatd      string        // xchatd binary; empty: next to the executable, else built
	Progress    io.Writer     // a line every second; nil discards them
}

// DefaultCrashOptions returns the defaults of xchat-bench crash.
func DefaultCrashOptions() CrashOptions {
	return CrashOptions{Duration: 30 * time.Second, Kills: 10, KillSide: "sender", Devices: 8, Concurrency: 8,
		Batch: 4, Drain: 60 * time.Second}
}

// crashLease and crashScan are the started servers' relay lease and queue
// scan: the envelopes a killed sending server had claimed wait for the
// lease to expire after its restart (60 s by default, longer than a run).
const (
	crashLease = 3 * time.Second
	crashScan  = 1 * time.Second
)

func (o *CrashOptions) validate() error {
	switch {
	case o.Duration <= 0:
		return errors.New("--duration must be positive")
	case o.Kills < 0:
		return errors.New("--kills must not be negative")
	case o.KillMin < 0 || o.KillMax < o.KillMin:
		return errors.New("--kill-min and --kill-max: want 0 <= min <= max")
	case o.Devices < 1:
		return errors.New("--devices must be at least 1")
	case o.Concurrency < 1:
		return errors.New("--concurrency must be at least 1")
	case o.Batch < 1 || o.Batch > wire.MaxEnvelopesPerSend:
		return fmt.Errorf("--batch must be 1 to %d", wire.MaxEnvelopesPerSend)
	case o.Drain < 0:
		return errors.New("--drain must not be negative")
	}
	switch o.KillSide {
	case "":
		o.KillSide = "sender"
	case "sender", "receiver", "both":
	default:
		return fmt.Errorf("--kill-side %q: want sender, receiver or both", o.KillSide)
	}
	if !o.Federation {
		o.KillSide = ""
	}
	if o.KillMax == 0 {
		interval := o.Duration / time.Duration(o.Kills+1)
		o.KillMin, o.KillMax = interval/2, interval*3/2
	}
	return nil
}

// CrashResult is the outcome of a crash run. Times are in milliseconds
// unless named otherwise.
type CrashResult struct {
	Store      string  `json:"store"`
	Federation bool    `json:"federation"`
	KillSide   string  `json:"kill_side,omitempty"`
	Devices    int     `json:"devices"`
	Seconds    float64 `json:"seconds"` // how long the senders sent

	Kills      int     `json:"kills"`
	RestartP50 float64 `json:"restart_p50_ms"` // from SIGKILL to the restarted server serving
	RestartMax float64 `json:"restart_max_ms"`
	Reconnects int64   `json:"reconnects"` // device connections made again after a kill

	Attempted    int64 `json:"attempted"`    // envelopes in send requests
	Acknowledged int64 `json:"acknowledged"` // answered ok by the server: must be delivered
	Refused      int64 `json:"refused"`      // answered with an error code
	Unanswered   int64 `json:"unanswered"`   // the request failed (a kill): stored or not
	// UnansweredDelivered are the unanswered envelopes delivered all the
	// same (stored before the kill): legal.
	UnansweredDelivered int64 `json:"unanswered_delivered"`
	Received            int64 `json:"received"` // distinct acknowledged envelopes delivered
	Lost                int64 `json:"lost"`     // acknowledged and never delivered
	// DeliveredAfterAck counts deliveries of an envelope after the server
	// had answered ok to the recipient's acknowledgement of it: the
	// violation. RedeliveredBeforeAck counts further deliveries of an
	// envelope whose acknowledgement had no answer yet, or none because of
	// a kill: legal under at-least-once delivery.
	DeliveredAfterAck int64 `json:"delivered_after_ack"`
	// PushedWhileAcked counts deliveries, on the connection where the
	// envelope's acknowledgement was answered ok and within two seconds of
	// that answer, that were not counted in DeliveredAfterAck: the push
	// and the answer travel on different streams, so a push sent before
	// the server processed the acknowledgement may be read after its
	// answer. After a restart the server pushes every envelope still
	// waiting while the client acknowledges the deliveries it had before
	// the kill, so these are common. Legal.
	PushedWhileAcked int64 `json:"pushed_while_acked"`
	// ReRelayedAfterAck are those of DeliveredAfterAck, with Federation,
	// first delivered within the relay lease and a second of a kill: a
	// relay in flight when a server was killed, whose answer the sending
	// server never recorded, is relayed again (once its claim expired, or
	// after a backoff) and stored again by the recipients' server, which
	// no longer knows an acknowledged identifier (spec/08-federation.md
	// section 8.8, "Idempotence"); clients drop them (section 7.16).
	// Reported, not counted as errors.
	ReRelayedAfterAck    int64 `json:"re_relayed_after_ack"`
	RedeliveredBeforeAck int64 `json:"redelivered_before_ack"`
	AcksConfirmed        int64 `json:"acks_confirmed"` // ids whose ack the server answered ok
	AcksFailed           int64 `json:"acks_failed"`    // ids whose ack request failed (a kill)
	// FinalRedelivered counts the deliveries to fresh connections of every
	// recipient after the drain (acks that failed at a kill).
	FinalRedelivered int64 `json:"final_redelivered"`
	// AfterAckNearKill relates the envelopes delivered after their
	// acknowledgement to the kills (the evidence of what caused them).
	AfterAckNearKill *KillGap `json:"after_ack_near_kill,omitempty"`

	AcknowledgedPerSecond float64 `json:"acknowledged_per_second"`
	ReceivedPerSecond     float64 `json:"received_per_second"`
	LoadAverage           float64 `json:"load_average"`

	Errors map[string]int64 `json:"errors"` // violations and failures by kind; empty when none
}

// Failed reports whether the run lost an acknowledged envelope, delivered
// one after its acknowledgement, or saw another error.
func (r *CrashResult) Failed() bool { return len(r.Errors) > 0 }

// crashNode is one homeserver of a crash run, restarted after each kill
// on the same port and the same data directory or database schema.
type crashNode struct {
	mu     sync.Mutex
	srv    *childServer
	up     chan struct{} // closed while the server serves
	devs   []*crashDev
	domain string
	tls    *tls.Config
	raddr  *net.UDPAddr
}

// waitUp returns once the server serves, or ctx ends.
func (n *crashNode) waitUp(ctx context.Context) error {
	n.mu.Lock()
	up := n.up
	n.mu.Unlock()
	select {
	case <-up:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// kill SIGKILLs the server, drops its devices' connections (as their
// clients would notice) and starts it again with the same arguments. It
// returns the time from the kill to the new process serving.
func (n *crashNode) kill(ctx context.Context) (time.Duration, error) {
	n.mu.Lock()
	n.up = make(chan struct{})
	old := n.srv
	devs := n.devs
	n.mu.Unlock()
	start := time.Now()
	old.p.Kill()
	for _, d := range devs {
		d.drop()
	}
	var s *childServer
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if s, err = startServer(ctx, old.xchatd, old.args); err == nil || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return 0, fmt.Errorf("restart %s: %w", n.domain, err)
	}
	s.addr, s.domain, s.caFile, s.store = old.addr, old.domain, old.caFile, old.store
	took := time.Since(start)
	n.mu.Lock()
	n.srv = s
	close(n.up)
	n.mu.Unlock()
	return took, nil
}

// crashDev is a registered device that connects again whenever its
// connection ends.
type crashDev struct {
	idx      int
	node     *crashNode
	tr       *quic.Transport
	address  string
	device   uint32
	sig      ed25519.PrivateKey
	mb       wire.Mailbox
	receiver bool

	mu      sync.Mutex
	qc      *quic.Conn
	gen     int32         // how many connections the device has made: qc's number
	changed chan struct{} // closed and replaced when qc changes
	caught  int           // caught-up markers received, over all connections

	ackMu   sync.Mutex
	ackIDs  [][]byte
	ackWake chan struct{}
}

// set makes qc the device's connection and returns its number.
func (d *crashDev) set(qc *quic.Conn) int32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.qc = qc
	if qc != nil {
		d.gen++
	}
	close(d.changed)
	d.changed = make(chan struct{})
	return d.gen
}

// current returns the device's live connection and its number, waiting
// for one.
func (d *crashDev) current(ctx context.Context) (*quic.Conn, int32, error) {
	for {
		d.mu.Lock()
		qc, gen, ch := d.qc, d.gen, d.changed
		d.mu.Unlock()
		if qc != nil && qc.Context().Err() == nil {
			return qc, gen, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// drop closes the device's connection; it connects again.
func (d *crashDev) drop() {
	d.mu.Lock()
	qc := d.qc
	d.mu.Unlock()
	if qc != nil {
		qc.CloseWithError(0, "server killed")
	}
}

func (d *crashDev) caughtUps() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.caught
}

// Per-envelope states of a crash run, as the sender knows them.
const (
	crInFlight uint8 = iota
	crAcknowledged
	crRefused
	crUnanswered
)

type crashRecord struct {
	to         int32
	state      uint8
	deliveries uint32
	ackOK      bool  // the server answered ok to an acknowledgement of it
	ackGen     int32 // the number of the connection of the first ack answered ok
	ackAt      int64 // unix nanoseconds of that answer
	firstAt    int64 // unix nanoseconds of its first delivery
}

// crashTracker follows every envelope of a crash run.
type crashTracker struct {
	shards [64]struct {
		mu sync.Mutex
		m  map[[16]byte]*crashRecord
	}
	outstanding       atomic.Int64 // acknowledged, not yet delivered
	received          atomic.Int64 // first deliveries
	afterAck          atomic.Int64
	beforeAck         atomic.Int64
	raced             atomic.Int64 // pushed while its ack was processed (raceWindow)
	note              func(string) // writes a progress line; nil: none
	misdelivered      atomic.Int64
	unknown           atomic.Int64
	final             atomic.Bool // the final reconnection round runs
	afterAckMu        sync.Mutex
	afterAckFirst     []int64 // first deliveries (unix ns) of those delivered after ack
	finalRedelivered  atomic.Int64
	lastFirstDelivery atomic.Int64 // unix nanoseconds
}

func (t *crashTracker) with(id [16]byte, fn func(rec *crashRecord, ok bool)) {
	s := &t.shards[id[0]&63]
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = make(map[[16]byte]*crashRecord)
	}
	rec, ok := s.m[id]
	fn(rec, ok)
}

func (t *crashTracker) sent(id [16]byte, to int) {
	s := &t.shards[id[0]&63]
	s.mu.Lock()
	if s.m == nil {
		s.m = make(map[[16]byte]*crashRecord)
	}
	s.m[id] = &crashRecord{to: int32(to)}
	s.mu.Unlock()
}

func (t *crashTracker) answered(id [16]byte, state uint8) {
	t.with(id, func(rec *crashRecord, _ bool) {
		rec.state = state
		if state == crAcknowledged && rec.deliveries == 0 {
			t.outstanding.Add(1)
		}
	})
}

// raceWindow is how long after the answer to an acknowledgement a
// delivery of the envelope on the same connection counts as pushed while
// the acknowledgement was processed (the push and the answer travel on
// different streams, so their order is lost): the server read the
// envelope before it deleted it.
const raceWindow = 2 * time.Second

func (t *crashTracker) noteLine(line string) {
	if t.note != nil {
		t.note(line)
	}
}

// maxNoted is how many deliveries after ack of each kind are written to
// the progress output, with their connections and times.
const maxNoted = 20

// deliver records a delivery of id to device dev on its connection gen.
func (t *crashTracker) deliver(id [16]byte, dev int, gen int32) {
	t.with(id, func(rec *crashRecord, ok bool) {
		if !ok {
			t.unknown.Add(1)
			return
		}
		rec.deliveries++
		if int(rec.to) != dev {
			t.misdelivered.Add(1)
		}
		if t.final.Load() {
			t.finalRedelivered.Add(1)
		}
		now := time.Now().UnixNano()
		switch {
		case rec.ackOK && gen <= rec.ackGen && now-rec.ackAt <= int64(raceWindow):
			if t.raced.Add(1) <= maxNoted {
				t.noteLine(fmt.Sprintf("pushed while acknowledged: %x to device %d on its connection %d, %s after the answer to its ack on connection %d",
					id[:4], dev, gen, fmtDur(time.Duration(now-rec.ackAt)), rec.ackGen))
			}
		case rec.ackOK:
			if t.afterAck.Add(1) <= maxNoted {
				t.noteLine(fmt.Sprintf("DELIVERED AFTER ACK: %x to device %d on its connection %d, %s after the answer to its ack on connection %d",
					id[:4], dev, gen, fmtDur(time.Duration(now-rec.ackAt)), rec.ackGen))
			}
			t.afterAckMu.Lock()
			t.afterAckFirst = append(t.afterAckFirst, rec.firstAt)
			t.afterAckMu.Unlock()
		case rec.deliveries > 1:
			t.beforeAck.Add(1)
		default:
			t.received.Add(1)
			rec.firstAt = time.Now().UnixNano()
			t.lastFirstDelivery.Store(rec.firstAt)
			if rec.state == crAcknowledged {
				t.outstanding.Add(-1)
			}
		}
	})
}

// acked records that the server answered ok to an acknowledgement of id
// sent on the device's connection gen.
func (t *crashTracker) acked(id [16]byte, gen int32) {
	t.with(id, func(rec *crashRecord, ok bool) {
		if ok && !rec.ackOK {
			rec.ackOK, rec.ackGen, rec.ackAt = true, gen, time.Now().UnixNano()
		}
	})
}

// audit counts the acknowledged envelopes never delivered, the
// acknowledged ones delivered, and the unanswered ones delivered.
func (t *crashTracker) audit() (lost, received, unansweredDelivered int64) {
	for i := range t.shards {
		s := &t.shards[i]
		s.mu.Lock()
		for _, rec := range s.m {
			switch {
			case rec.state == crAcknowledged && rec.deliveries == 0:
				lost++
			case rec.state == crAcknowledged:
				received++
			case rec.state == crUnanswered && rec.deliveries > 0:
				unansweredDelivered++
			}
		}
		s.mu.Unlock()
	}
	return lost, received, unansweredDelivered
}

// crashRun is the state of one crash run.
type crashRun struct {
	o          CrashOptions
	progress   io.Writer
	token      []byte
	sealed     []byte
	senders    []*crashDev
	receivers  []*crashDev
	tr         crashTracker
	errs       errCounts
	attempted  atomic.Int64
	accepted   atomic.Int64
	refused    atomic.Int64
	unanswered atomic.Int64
	acksOK     atomic.Int64
	acksFailed atomic.Int64
	acksOut    atomic.Int64 // ids queued for or in an ack request
	reconnects atomic.Int64
	kills      atomic.Int64
	closers    []io.Closer // the devices' transports and sockets
	killMu     sync.Mutex
	killedAt   []int64 // unix nanoseconds of each kill
}

// Crash runs the crash scenario: senders send envelopes to recipients for
// Duration while a homeserver is killed with SIGKILL Kills times at random
// moments and restarted on the same port and store; every device connects
// again after a kill. An envelope counts as acknowledged once the server
// answered ok to its send request: it must then be delivered (else it is
// lost). Recipients acknowledge every delivery; an envelope delivered
// again after the server answered ok to its acknowledgement is a
// violation, one delivered again whose acknowledgement had no answer (a
// kill) is legal. After the senders stop and the deliveries drain, every
// recipient connects once more, and whatever it then receives must not
// have been acknowledged.
func Crash(ctx context.Context, o CrashOptions) (*CrashResult, error) {
	if err := o.validate(); err != nil {
		return nil, err
	}
	progress := o.Progress
	if progress == nil {
		progress = io.Discard
	}
	dir, err := os.MkdirTemp("", "xchat-bench-crash-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	xchatd, err := findXchatd(ctx, o.Xchatd, dir, progress)
	if err != nil {
		return nil, err
	}
	domains := []string{"bench.test"}
	var extra []string
	if o.Federation {
		domains = []string{"a.bench.test", "b.bench.test"}
		extra = []string{"--relay-lease", crashLease.String(), "--queue-scan", crashScan.String()}
	}
	set, err := startServers(ctx, xchatd, dir, o.DB, domains, extra, 0)
	if err != nil {
		return nil, err
	}
	var nodes []*crashNode
	defer func() {
		set.servers = set.servers[:0]
		for _, n := range nodes {
			n.mu.Lock()
			set.servers = append(set.servers, n.srv)
			n.mu.Unlock()
		}
		set.stop()
	}()
	res := &CrashResult{Store: "embedded SQLite", Federation: o.Federation, KillSide: o.KillSide, Devices: o.Devices}
	if o.DB != "" {
		res.Store = "PostgreSQL"
	}
	for _, s := range set.servers {
		fmt.Fprintf(progress, "xchat-bench: xchatd (pid %d) serving %s on %s, %s in %s\n", s.p.Pid(), s.domain, s.addr, s.store, dir)
		conf, err := clientTLS(s.domain, s.caFile)
		if err != nil {
			return nil, err
		}
		raddr, err := net.ResolveUDPAddr("udp", s.addr)
		if err != nil {
			return nil, err
		}
		up := make(chan struct{})
		close(up)
		nodes = append(nodes, &crashNode{srv: s, up: up, domain: s.domain, tls: conf, raddr: raddr})
	}

	r := &crashRun{o: o, progress: progress, token: make([]byte, 32)}
	r.tr.note = func(line string) { fmt.Fprintf(progress, "xchat-bench: %s\n", line) }
	crand.Read(r.token)
	r.sealed = make([]byte, wire.XWingEncLen+wire.MinBucket+wire.AEADTagLen)
	crand.Read(r.sealed)
	runCtx, stopDevices := context.WithCancel(ctx)
	var devWG sync.WaitGroup
	defer func() {
		stopDevices()
		for _, n := range nodes {
			for _, d := range n.devs {
				d.drop()
			}
		}
		devWG.Wait()
		for _, c := range r.closers {
			c.Close()
		}
	}()
	var runID [3]byte
	crand.Read(runID[:])
	prefix := fmt.Sprintf("crash-%x", runID)
	to := nodes[len(nodes)-1]
	if r.senders, err = r.register(ctx, nodes[0], prefix+"-s", false); err != nil {
		return nil, err
	}
	if r.receivers, err = r.register(ctx, to, prefix+"-r", true); err != nil {
		return nil, err
	}
	for _, d := range slices.Concat(r.senders, r.receivers) {
		devWG.Add(1)
		go func() { defer devWG.Done(); r.maintain(runCtx, d) }()
		if d.receiver {
			devWG.Add(1)
			go func() { defer devWG.Done(); r.acker(runCtx, d) }()
		}
	}
	if err := r.waitCaughtUp(ctx, 1, 60*time.Second); err != nil {
		return nil, err
	}
	fmt.Fprintf(progress, "xchat-bench: %d senders and %d recipients connected; sending for %s with %d kills\n",
		len(r.senders), len(r.receivers), o.Duration, o.Kills)

	res.LoadAverage = loadAverage()
	start := time.Now()
	sendCtx, stopSending := context.WithTimeout(ctx, o.Duration)
	defer stopSending()
	stopProgress := r.startProgress(start)
	var restarts []time.Duration
	killErr := make(chan error, 1)
	go func() {
		var err error
		restarts, err = r.killer(sendCtx, nodes)
		killErr <- err
	}()
	var sendWG sync.WaitGroup
	for w := range o.Concurrency {
		sendWG.Add(1)
		go func() {
			defer sendWG.Done()
			rng := newRand()
			for sendCtx.Err() == nil {
				r.send(sendCtx, rng, r.senders[w%len(r.senders)])
			}
		}()
	}
	sendWG.Wait()
	res.Seconds = time.Since(start).Seconds()
	if err := <-killErr; err != nil {
		stopProgress()
		return nil, err
	}
	fmt.Fprintf(progress, "xchat-bench: senders stopped after %d kills; draining (up to %s)\n", r.kills.Load(), o.Drain)
	drained := r.drain(ctx, o.Drain)
	stopProgress()
	if drained {
		// Every recipient connects once more: what it now receives must
		// not have been acknowledged.
		fmt.Fprintf(progress, "xchat-bench: final check: every recipient connects again\n")
		caught := make([]int, len(r.receivers))
		for i, d := range r.receivers {
			caught[i] = d.caughtUps()
		}
		r.tr.final.Store(true)
		for _, d := range r.receivers {
			d.drop()
		}
		deadline := time.Now().Add(30 * time.Second)
		for i, d := range r.receivers {
			for d.caughtUps() <= caught[i] && time.Now().Before(deadline) && ctx.Err() == nil {
				time.Sleep(10 * time.Millisecond)
			}
			if d.caughtUps() <= caught[i] {
				r.errs.add("final check: a recipient did not catch up in 30 s", 1)
			}
		}
		r.drain(ctx, 10*time.Second)
	}

	if err := ctx.Err(); err != nil {
		// Interrupted: what was not delivered yet is not lost.
		return nil, fmt.Errorf("crash run interrupted: %w", err)
	}
	res.Kills = int(r.kills.Load())
	sort.Slice(restarts, func(i, j int) bool { return restarts[i] < restarts[j] })
	if len(restarts) > 0 {
		res.RestartP50 = millis(restarts[len(restarts)/2])
		res.RestartMax = millis(restarts[len(restarts)-1])
	}
	res.Reconnects = r.reconnects.Load()
	res.Attempted = r.attempted.Load()
	res.Acknowledged = r.accepted.Load()
	res.Refused = r.refused.Load()
	res.Unanswered = r.unanswered.Load()
	res.Lost, res.Received, res.UnansweredDelivered = r.tr.audit()
	res.DeliveredAfterAck = r.tr.afterAck.Load()
	res.RedeliveredBeforeAck = r.tr.beforeAck.Load()
	res.PushedWhileAcked = r.tr.raced.Load()
	res.AcksConfirmed = r.acksOK.Load()
	res.AcksFailed = r.acksFailed.Load()
	res.FinalRedelivered = r.tr.finalRedelivered.Load()
	r.killMu.Lock()
	kills := slices.Clone(r.killedAt)
	r.killMu.Unlock()
	res.AfterAckNearKill = r.afterAckNearKill(kills)
	if g := res.AfterAckNearKill; o.Federation && g != nil {
		res.ReRelayedAfterAck = int64(g.Near)
	}
	if res.Seconds > 0 {
		res.AcknowledgedPerSecond = float64(res.Acknowledged) / res.Seconds
	}
	if last := r.tr.lastFirstDelivery.Load(); last > 0 {
		res.ReceivedPerSecond = float64(r.tr.received.Load()) / time.Unix(0, last).Sub(start).Seconds()
	}
	r.errs.add("lost (acknowledged, never delivered)", res.Lost)
	r.errs.add("delivered after its acknowledgement was confirmed", res.DeliveredAfterAck-res.ReRelayedAfterAck)
	r.errs.add("delivered to the wrong device", r.tr.misdelivered.Load())
	r.errs.add("unknown envelope delivered", r.tr.unknown.Load())
	if res.Kills < o.Kills {
		r.errs.add("kills not done in --duration", int64(o.Kills-res.Kills))
	}
	res.Errors = r.errs.snapshot()
	return res, nil
}

// KillGap relates the envelopes delivered after their acknowledgement to
// the kills: the time from each one's first delivery to the nearest kill
// (positive: the kill came after the first delivery).
type KillGap struct {
	Envelopes int     `json:"envelopes"` // delivered after ack
	Near      int     `json:"near"`      // of them, first delivered within NearMS of a kill
	NearMS    float64 `json:"near_ms"`   // the window: the relay lease and a second
	Kills     int     `json:"kills"`     // distinct kills nearest to them
	MinMS     float64 `json:"min_ms"`    // smallest and largest signed gap
	MaxMS     float64 `json:"max_ms"`
}

// afterAckNearKill relates the envelopes delivered after their
// acknowledgement to the kills: nil when there are none.
func (r *crashRun) afterAckNearKill(kills []int64) *KillGap {
	r.tr.afterAckMu.Lock()
	firsts := slices.Clone(r.tr.afterAckFirst)
	r.tr.afterAckMu.Unlock()
	if len(firsts) == 0 {
		return nil
	}
	window := crashLease + time.Second
	g := &KillGap{Envelopes: len(firsts), NearMS: millis(window)}
	which := map[int]bool{}
	for k, f := range firsts {
		best := -1
		for i, at := range kills {
			if best < 0 || abs(at-f) < abs(kills[best]-f) {
				best = i
			}
		}
		if best < 0 {
			continue
		}
		gap := time.Duration(kills[best] - f)
		if k == 0 || millis(gap) < g.MinMS {
			g.MinMS = millis(gap)
		}
		if k == 0 || millis(gap) > g.MaxMS {
			g.MaxMS = millis(gap)
		}
		if abs(int64(gap)) <= int64(window) {
			g.Near++
			which[best] = true
		}
	}
	g.Kills = len(which)
	return g
}

func abs(v int64) int64 {
	if v < 0 {
		return -v
	}
	return v
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// register registers o.Devices devices on node, each with a connection of
// its own made later by maintain.
func (r *crashRun) register(ctx context.Context, node *crashNode, prefix string, receiver bool) ([]*crashDev, error) {
	n := r.o.Devices
	groups := (n + devicesPerSource - 1) / devicesPerSource
	ips := sourceIPs(node.raddr.IP, groups)
	devs := make([]*crashDev, n)
	verifier := wire.TokenVerifier(r.token)
	for i := range devs {
		if i%devicesPerSource == 0 {
			uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: ips[i/devicesPerSource]})
			if err != nil {
				return nil, fmt.Errorf("local UDP socket: %w", err)
			}
			tr := &quic.Transport{Conn: uc}
			r.closers = append(r.closers, tr, uc)
			devs[i] = &crashDev{tr: tr}
		} else {
			devs[i] = &crashDev{tr: devs[i-1].tr}
		}
		d := devs[i]
		d.idx, d.node, d.receiver = i, node, receiver
		d.changed, d.ackWake = make(chan struct{}), make(chan struct{}, 1)
		d.address = fmt.Sprintf("%s-%d@%s", prefix, i, node.domain)
		_, d.sig, _ = ed25519.GenerateKey(crand.Reader)
		hk, err := hpke.MLKEM768X25519().GenerateKey()
		if err != nil {
			return nil, err
		}
		var qc *quic.Conn
		for attempt := 0; ; attempt++ {
			if qc, err = r.dial(ctx, d); err == nil {
				break
			}
			if attempt == connectAttempts-1 || ctx.Err() != nil {
				return nil, fmt.Errorf("device %s: %w", d.address, err)
			}
		}
		cs := qc.ConnectionState().TLS
		exp, err := cs.ExportKeyingMaterial(wire.ExporterLabel, nil, 32)
		if err == nil {
			rctx, cancel := context.WithTimeout(ctx, wire.RequestDeadline)
			var ok wire.RegisterOK
			err = wire.RoundTrip(rctx, qc, &wire.Register{
				Address:   d.address,
				Keys:      wire.DeviceKeys{SigKey: d.sig.Public().(ed25519.PublicKey), KEM: wire.KEMXWing, HPKEKey: hk.PublicKey().Bytes()},
				Signature: ed25519.Sign(d.sig, wire.DeviceAuthMessage(d.address, 0, exp)),
			}, &ok)
			if err == nil {
				d.device = ok.Device
				err = wire.RoundTrip(rctx, qc, &wire.SetDeliveryPolicy{Verifiers: [][]byte{verifier[:]}}, &wire.OK{})
			}
			cancel()
		}
		qc.CloseWithError(0, "registered")
		if err != nil {
			return nil, fmt.Errorf("register %s: %w", d.address, err)
		}
		d.mb = wire.Mailbox{Address: d.address, Device: d.device}
	}
	node.mu.Lock()
	node.devs = append(node.devs, devs...)
	node.mu.Unlock()
	return devs, nil
}

// dial makes a QUIC connection to d's server.
func (r *crashRun) dial(ctx context.Context, d *crashDev) (*quic.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	qconf := &quic.Config{
		HandshakeIdleTimeout: 5 * time.Second,
		// A killed server answers nothing: notice it within seconds.
		MaxIdleTimeout:     3 * time.Second,
		KeepAlivePeriod:    time.Second,
		MaxIncomingStreams: -1,
	}
	return d.tr.Dial(ctx, d.node.raddr, d.node.tls.Clone(), qconf)
}

// authenticate dials d's server and authenticates as d.
func (r *crashRun) authenticate(ctx context.Context, d *crashDev) (*quic.Conn, error) {
	qc, err := r.dial(ctx, d)
	if err != nil {
		return nil, err
	}
	cs := qc.ConnectionState().TLS
	exp, err := cs.ExportKeyingMaterial(wire.ExporterLabel, nil, 32)
	if err == nil {
		rctx, cancel := context.WithTimeout(ctx, wire.RequestDeadline)
		err = wire.RoundTrip(rctx, qc, &wire.Authenticate{Address: d.address, Device: d.device,
			Signature: ed25519.Sign(d.sig, wire.DeviceAuthMessage(d.address, d.device, exp))}, &wire.OK{})
		cancel()
	}
	if err != nil {
		qc.CloseWithError(0, "")
		return nil, fmt.Errorf("authenticate: %w", err)
	}
	return qc, nil
}

// maintain keeps d connected until ctx ends: it waits for its server,
// authenticates, reads the push stream (recipients) and connects again
// whenever the connection ends.
func (r *crashRun) maintain(ctx context.Context, d *crashDev) {
	for first := true; ctx.Err() == nil; first = false {
		if err := d.node.waitUp(ctx); err != nil {
			return
		}
		qc, err := r.authenticate(ctx, d)
		if err != nil {
			if ctx.Err() == nil {
				select {
				case <-time.After(50 * time.Millisecond):
				case <-ctx.Done():
				}
			}
			continue
		}
		if !first && !r.tr.final.Load() {
			r.reconnects.Add(1)
		}
		gen := d.set(qc)
		r.readPush(d, qc, gen)
		d.set(nil)
		qc.CloseWithError(0, "")
	}
}

// readPush reads qc's push stream until it ends: deliveries are recorded
// and queued for acknowledgement. Senders receive nothing but the
// caught-up marker.
func (r *crashRun) readPush(d *crashDev, qc *quic.Conn, gen int32) {
	st, err := qc.AcceptUniStream(qc.Context())
	if err != nil {
		return
	}
	for {
		p, err := wire.ReadFrame(st, wire.MaxFrame)
		if err != nil {
			return
		}
		f, err := wire.DecodePush(p)
		if err != nil {
			r.errs.add("push stream: "+err.Error(), 1)
			return
		}
		switch f := f.(type) {
		case *wire.CaughtUp:
			d.mu.Lock()
			d.caught++
			d.mu.Unlock()
		case *wire.Deliver:
			ids := make([][]byte, len(f.Deliveries))
			for i, x := range f.Deliveries {
				var id [16]byte
				copy(id[:], x.ID)
				r.tr.deliver(id, d.idx, gen)
				ids[i] = x.ID
			}
			r.acksOut.Add(int64(len(ids)))
			d.ackMu.Lock()
			d.ackIDs = append(d.ackIDs, ids...)
			d.ackMu.Unlock()
			select {
			case d.ackWake <- struct{}{}:
			default:
			}
		}
	}
}

// acker acknowledges d's deliveries, a batch at a time, on its current
// connection. A failed acknowledgement is not sent again: the server
// delivers the envelope again on the next connection, and it is
// acknowledged then.
func (r *crashRun) acker(ctx context.Context, d *crashDev) {
	for {
		select {
		case <-d.ackWake:
		case <-ctx.Done():
			return
		}
		for {
			d.ackMu.Lock()
			k := min(len(d.ackIDs), wire.MaxIDsPerAck)
			ids := d.ackIDs[:k:k]
			d.ackIDs = d.ackIDs[k:]
			d.ackMu.Unlock()
			if k == 0 {
				break
			}
			err := ctx.Err()
			var qc *quic.Conn
			var gen int32
			if err == nil {
				qc, gen, err = d.current(ctx)
			}
			if err == nil {
				actx, cancel := context.WithTimeout(ctx, wire.RequestDeadline)
				err = wire.RoundTrip(actx, qc, &wire.Ack{IDs: ids}, &wire.OK{})
				cancel()
			}
			if err == nil {
				for _, b := range ids {
					var id [16]byte
					copy(id[:], b)
					r.tr.acked(id, gen)
				}
				r.acksOK.Add(int64(k))
			} else {
				r.acksFailed.Add(int64(k))
			}
			r.acksOut.Add(-int64(k))
		}
	}
}

// send sends one request of Batch envelopes from sender to random
// recipients.
func (r *crashRun) send(ctx context.Context, rng *rand.Rand, sender *crashDev) {
	qc, _, err := sender.current(ctx)
	if err != nil {
		return
	}
	n := r.o.Batch
	envs := make([]wire.Envelope, n)
	ids := make([][16]byte, n)
	for i := range envs {
		to := r.receivers[rng.IntN(len(r.receivers))]
		binaryRandom(rng, ids[i][:])
		r.tr.sent(ids[i], to.idx)
		envs[i] = wire.Envelope{ID: ids[i][:], To: to.mb, Token: r.token, Sealed: r.sealed}
	}
	r.attempted.Add(int64(n))
	// The request is not tied to ctx: one sent as the run ends still gets
	// its answer.
	rctx, cancel := context.WithTimeout(context.Background(), wire.RequestDeadline)
	defer cancel()
	var ok wire.SendOK
	err = wire.RoundTrip(rctx, qc, &wire.Send{Envelopes: envs}, &ok)
	if err == nil && len(ok.Results) != n {
		err = fmt.Errorf("%d results for %d envelopes", len(ok.Results), n)
		r.errs.add("send: "+err.Error(), 1)
	}
	if err != nil {
		r.unanswered.Add(int64(n))
		for _, id := range ids {
			r.tr.answered(id, crUnanswered)
		}
		return
	}
	for i, code := range ok.Results {
		if code != wire.CodeOK {
			r.refused.Add(1)
			r.errs.add("refused: "+code.String(), 1)
			r.tr.answered(ids[i], crRefused)
			continue
		}
		r.accepted.Add(1)
		r.tr.answered(ids[i], crAcknowledged)
	}
}

// killer kills a server at random moments until ctx ends or Kills kills
// are done, restarting it each time, and returns the restart times.
func (r *crashRun) killer(ctx context.Context, nodes []*crashNode) ([]time.Duration, error) {
	rng := newRand()
	var took []time.Duration
	deadline, _ := ctx.Deadline()
	for k := range r.o.Kills {
		wait := r.o.KillMin + time.Duration(rng.Int64N(int64(r.o.KillMax-r.o.KillMin)+1))
		// Restarts take time too: leave room for the kills still to come
		// (and load after the last one).
		if !deadline.IsZero() {
			wait = min(wait, time.Until(deadline)/time.Duration(r.o.Kills-k+1))
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return took, nil
		}
		victim := nodes[0]
		switch r.o.KillSide {
		case "receiver":
			victim = nodes[1]
		case "both":
			victim = nodes[rng.IntN(2)]
		}
		r.killMu.Lock()
		r.killedAt = append(r.killedAt, time.Now().UnixNano())
		r.killMu.Unlock()
		// The restart must finish even when the run's time is up.
		d, err := victim.kill(context.WithoutCancel(ctx))
		if err != nil {
			return took, err
		}
		r.kills.Add(1)
		took = append(took, d)
		fmt.Fprintf(r.progress, "xchat-bench: killed %s (SIGKILL), serving again after %s\n", victim.domain, fmtDur(d))
	}
	return took, nil
}

// waitCaughtUp waits until every device has had n caught-up markers.
func (r *crashRun) waitCaughtUp(ctx context.Context, n int, within time.Duration) error {
	deadline := time.Now().Add(within)
	for _, d := range slices.Concat(r.senders, r.receivers) {
		for d.caughtUps() < n {
			if time.Now().After(deadline) {
				return fmt.Errorf("device %s did not connect in %s", d.address, within)
			}
			select {
			case <-time.After(10 * time.Millisecond):
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	return nil
}

// drain waits, up to within, until every acknowledged envelope was
// delivered and every delivery acknowledged; it reports whether they were.
func (r *crashRun) drain(ctx context.Context, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for ctx.Err() == nil {
		if r.tr.outstanding.Load() == 0 && r.acksOut.Load() == 0 {
			return true
		}
		if time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	return false
}

// startProgress prints a progress line every second until the returned
// function is called.
func (r *crashRun) startProgress(start time.Time) func() {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var lastSent, lastRecv int64
		for {
			select {
			case <-done:
				return
			case <-t.C:
			}
			sent, recv := r.accepted.Load(), r.tr.received.Load()
			fmt.Fprintf(r.progress, "xchat-bench: %5.0fs  kills %d  acknowledged %6d/s  received %6d/s  waiting %6d  redelivered %d  after ack %d\n",
				time.Since(start).Seconds(), r.kills.Load(), sent-lastSent, recv-lastRecv, r.tr.outstanding.Load(),
				r.tr.beforeAck.Load(), r.tr.afterAck.Load())
			lastSent, lastRecv = sent, recv
		}
	}()
	return func() { close(done); <-stopped }
}

// WriteTable writes the result as a table.
func (r *CrashResult) WriteTable(w io.Writer) error {
	what := "one homeserver"
	if r.Federation {
		what = "two federated homeservers, the " + r.KillSide + " side's killed"
		if r.KillSide == "both" {
			what = "two federated homeservers, either killed"
		}
	}
	fmt.Fprintf(w, "crash: %s, %s, %d senders and %d recipients, %.1fs\n\n", what, r.Store, r.Devices, r.Devices, r.Seconds)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "kills (SIGKILL)\t%d\trestart to serving p50 %s, max %s; %d device connections made again\n",
		r.Kills, fmtDur(time.Duration(r.RestartP50*1e6)), fmtDur(time.Duration(r.RestartMax*1e6)), r.Reconnects)
	fmt.Fprintf(tw, "envelopes acknowledged to senders\t%d\t%.0f/s over the run, kills included\n", r.Acknowledged, r.AcknowledgedPerSecond)
	fmt.Fprintf(tw, "send requests without an answer\t%d\tenvelopes (a kill); %d of them delivered all the same\n", r.Unanswered, r.UnansweredDelivered)
	if r.Refused > 0 {
		fmt.Fprintf(tw, "envelopes refused\t%d\t\n", r.Refused)
	}
	fmt.Fprintf(tw, "acknowledged envelopes received\t%d\t%.0f/s\n", r.Received, r.ReceivedPerSecond)
	fmt.Fprintf(tw, "lost\t%d\tacknowledged to the sender, never delivered\n", r.Lost)
	fmt.Fprintf(tw, "delivered after ack\t%d\tdelivered again after the server confirmed the recipient's ack\n", r.DeliveredAfterAck)
	if g := r.AfterAckNearKill; g != nil {
		fmt.Fprintf(tw, "  first delivered near a kill\t%d\twithin %s of %d distinct kills; nearest kill %.0f ms to %.0f ms after the first delivery\n",
			g.Near, fmtDur(time.Duration(g.NearMS*1e6)), g.Kills, g.MinMS, g.MaxMS)
	}
	if r.Federation {
		fmt.Fprintf(tw, "  relayed again after ack\t%d\ta kill with the relay in flight: stored again (section 8.8 allows; clients drop them, 7.16)\n", r.ReRelayedAfterAck)
	}
	fmt.Fprintf(tw, "pushed while acknowledged\t%d\ton the connection of the ack, read within 2 s of its answer (legal: pushed before the ack was processed)\n", r.PushedWhileAcked)
	fmt.Fprintf(tw, "redelivered before ack\t%d\tdelivered again, the ack unanswered (legal: at least once)\n", r.RedeliveredBeforeAck)
	fmt.Fprintf(tw, "recipient acks\t%d confirmed\t%d failed at a kill\n", r.AcksConfirmed, r.AcksFailed)
	fmt.Fprintf(tw, "final reconnection\t%d\tdeliveries to fresh connections after the drain (unconfirmed acks)\n", r.FinalRedelivered)
	fmt.Fprintf(tw, "machine load average\t%.2f\tat the start\n", r.LoadAverage)
	writeErrors(tw, r.Errors)
	return tw.Flush()
}
