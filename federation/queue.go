package federation

import (
	"context"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// Enqueue queues envelopes that the local device from submitted for other
// domains, durably, and returns one code per envelope: 0 when queued.
func (f *Federation) Enqueue(ctx context.Context, from store.Mailbox, envs []wire.Envelope) ([]wire.Code, error) {
	now := time.Now()
	codes := make([]wire.Code, len(envs))
	rows := make([]store.Outbound, 0, len(envs))
	// The quotas count what is stored: no scan reads the store between
	// the reservations and the commit (quota.go).
	f.usage.RLock()
	defer f.usage.RUnlock()
	domains := map[string]bool{}
	for i, e := range envs {
		_, domain := wire.SplitAddress(e.To.Address)
		switch {
		case !f.Allowed(domain):
			codes[i] = wire.CodeDomainRefused
			continue
		case len(e.Sealed) > wire.XWingEncLen+wire.MaxBucket+wire.AEADTagLen:
			codes[i] = wire.CodeEnvelopeTooLarge
			continue
		case !wire.SealedLenOK(len(e.Sealed), wire.XWingEncLen):
			codes[i] = wire.CodeBadPadding
			continue
		case !f.quotas.reserve(from.Address, domain, len(e.Sealed)):
			// Checked before the duplicate check of step 3, which is
			// the store's: a retried send near the bound may get
			// outbound_full for an envelope already queued.
			codes[i] = wire.CodeOutboundFull
			continue
		}
		var id store.EnvelopeID
		copy(id[:], e.ID)
		rows = append(rows, store.Outbound{
			Domain: domain,
			Envelope: store.Envelope{ID: id, To: store.Mailbox{Address: e.To.Address, Device: e.To.Device},
				Sealed: e.Sealed, ReceivedAt: store.ReceivedAt(now)},
			Token:   e.Token,
			From:    from,
			NextTry: now,
		})
		domains[domain] = true
	}
	if len(rows) > 0 {
		if err := f.cfg.Store.EnqueueOutbound(ctx, rows); err != nil {
			for _, r := range rows {
				f.quotas.release(from.Address, r.Domain, len(r.Envelope.Sealed))
			}
			return nil, err
		}
	}
	for d := range domains {
		f.ensureWorker(d)
	}
	return codes, nil
}

// worker relays the outbound queue of one destination domain. It runs
// while the domain has queued envelopes.
type worker struct {
	f        *Federation
	domain   string
	wake     chan struct{}
	mu       sync.Mutex // guards failures: rounds overlap
	failures int        // consecutive failures, for backoff
}

// ensureWorker starts the worker of domain, or wakes it.
func (f *Federation) ensureWorker(domain string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ctx == nil || f.ctx.Err() != nil {
		return // Start picks queued domains up
	}
	if w := f.workers[domain]; w != nil {
		select {
		case w.wake <- struct{}{}:
		default:
		}
		return
	}
	w := &worker{f: f, domain: domain, wake: make(chan struct{}, 1)}
	f.workers[domain] = w
	f.wg.Add(1)
	go w.run(f.ctx)
}

// idlePoll bounds how long an idle worker waits before it looks at the
// queue again (leases of dead workers expire; other processes queue).
const idlePoll = 30 * time.Second

// relayBudget bounds the sealed bytes of one relay request, under the
// frame limit.
const relayBudget = wire.MaxFrame - 64<<10

// claimBatches is how many relay requests' worth of envelopes a worker
// claims at once; it sends them concurrently on its peer connection.
const claimBatches = 8

// roundsInFlight is how many claimed rounds a worker relays at once: the
// next round is claimed while the previous one is relayed and settled, so
// that the claim, the relay and the settling of consecutive rounds
// overlap (and share the store's group commits) instead of adding up.
const roundsInFlight = 2

func (w *worker) run(ctx context.Context) {
	defer w.f.wg.Done()
	log := w.f.cfg.Logger.With("peer", w.domain)
	slots := make(chan struct{}, roundsInFlight)
	var rounds sync.WaitGroup
	defer rounds.Wait()
	for ctx.Err() == nil {
		slots <- struct{}{}
		rows, err := w.f.cfg.Store.ClaimOutbound(ctx, w.domain, time.Now(), w.f.cfg.Lease, claimBatches*wire.MaxEnvelopesPerSend)
		if err != nil {
			<-slots
			if ctx.Err() == nil {
				log.Error("outbound queue", "err", err)
				w.sleep(ctx, w.backoff())
			}
			continue
		}
		if len(rows) > 0 {
			rounds.Add(1)
			go func() {
				defer rounds.Done()
				defer func() { <-slots }()
				w.process(ctx, rows)
			}()
			continue
		}
		<-slots
		if len(slots) > 0 {
			// Rounds are still out: once they are settled, what they
			// could not deliver may be due again.
			rounds.Wait()
			continue
		}
		next, queued, err := w.nextDue(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Error("outbound queue", "err", err)
				w.sleep(ctx, w.backoff())
			}
			continue
		}
		if !queued {
			if w.retire(ctx) {
				return
			}
			continue
		}
		w.sleep(ctx, min(time.Until(next), idlePoll))
	}
	w.retire(ctx)
}

// sleep waits for d, a wake-up or the end of ctx.
func (w *worker) sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-w.wake:
	case <-t.C:
	}
}

// nextDue returns when the domain's next queued envelope is due.
func (w *worker) nextDue(ctx context.Context) (time.Time, bool, error) {
	ds, err := w.f.cfg.Store.OutboundDomains(ctx)
	if err != nil {
		return time.Time{}, false, err
	}
	for _, d := range ds {
		if d.Domain == w.domain {
			return d.NextTry, true, nil
		}
	}
	return time.Time{}, false, nil
}

// retire removes the worker; it returns false when envelopes were queued
// meanwhile and the worker must go on.
func (w *worker) retire(ctx context.Context) bool {
	f := w.f
	f.mu.Lock()
	if f.workers[w.domain] == w {
		delete(f.workers, w.domain)
	}
	f.mu.Unlock()
	if ctx.Err() != nil {
		return true
	}
	// An envelope queued after the last look found no worker? Then start
	// one again.
	if _, queued, err := w.nextDue(ctx); err == nil && queued {
		f.ensureWorker(w.domain)
	}
	return true
}

// backoff returns the destination's wait after another failed attempt
// (spec 8.9.3).
func (w *worker) backoff() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.failures++
	return jittered(w.f.cfg.Retry, w.f.cfg.MaxRetry, w.failures)
}

// jittered returns the wait of spec 8.9.3 after n failures: d =
// min(limit, first × 2^n), chosen uniformly in [d/2, d].
func jittered(first, limit time.Duration, n int) time.Duration {
	d := first << min(max(n, 0), 30)
	if d > limit || d <= 0 {
		d = limit
	}
	return d/2 + rand.N(d/2+1)
}

// permanent lists the per-envelope codes after which retrying cannot help:
// the refusals of steps 2 and 3 of a listener's relay processing
// (spec/08-federation.md section 8.9.1). Any other code is temporary.
var permanent = map[wire.Code]bool{
	wire.CodeWrongDomain: true, wire.CodeUnknownDevice: true,
	wire.CodeTokenInvalid: true, wire.CodeRequestLaneClosed: true, wire.CodeEnvelopeTooLarge: true,
	wire.CodeBadPadding: true,
}

// process relays claimed envelopes and settles each: delivered, refused
// for good (the sender is told), or retried later.
func (w *worker) process(ctx context.Context, rows []store.Outbound) {
	f := w.f
	log := f.cfg.Logger.With("peer", w.domain)
	now := time.Now()
	var done []int64
	var notices []store.Outbound
	var codes []wire.Code
	all := slices.Clone(rows) // live reuses rows
	live := rows[:0]
	refused := !f.Allowed(w.domain)
	for _, r := range rows {
		switch {
		case refused: // the domain policy changed while it waited
			notices, codes = append(notices, r), append(codes, wire.CodeDomainRefused)
			done = append(done, r.Seq)
			continue
		case now.Sub(r.Envelope.ReceivedAt) > f.cfg.OutboundTTL:
			notices, codes = append(notices, r), append(codes, wire.CodeExpired)
			done = append(done, r.Seq)
			continue
		}
		live = append(live, r)
	}
	// Split into relay requests within the frame limit, send them
	// concurrently, then settle every envelope by its result.
	var batches [][]store.Outbound
	for len(live) > 0 {
		n, size := 0, 0
		for n < len(live) && n < wire.MaxEnvelopesPerSend && (n == 0 || size+relaySize(live[n]) <= relayBudget) {
			size += relaySize(live[n])
			n++
		}
		batches = append(batches, live[:n])
		live = live[n:]
	}
	results := make([][]wire.Code, len(batches))
	errs := make([]error, len(batches))
	var wg sync.WaitGroup
	for i, batch := range batches {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i], errs[i] = w.relay(ctx, batch)
		}()
	}
	wg.Wait()
	// Spec 8.9.3: a failed attempt backs the whole destination off; any
	// relay-ok resets that; an envelope refused for now waits by its own
	// relay count, without holding the others back.
	retry := retries{}
	var failedSeqs []int64
	answered := false
	for i, batch := range batches {
		if errs[i] != nil {
			if ctx.Err() == nil {
				log.Info("relay failed; will retry", "envelopes", len(batch), "err", errs[i])
			}
			for _, r := range batch {
				failedSeqs = append(failedSeqs, r.Seq)
			}
			continue
		}
		answered = true
		for j, c := range results[i] {
			switch {
			case c == wire.CodeOK:
				done = append(done, batch[j].Seq)
			case permanent[c]:
				notices, codes = append(notices, batch[j]), append(codes, c)
				done = append(done, batch[j].Seq)
			default:
				retry.add(batch[j].Attempts, batch[j].Seq)
			}
		}
	}
	if ctx.Err() != nil {
		// Stopping: settle what was answered and give the rest back at
		// once rather than when the lease runs out.
		at := map[int]time.Time{}
		for n := range retry {
			at[n] = time.Now()
		}
		retry.add(-1, failedSeqs...)
		at[-1] = time.Now()
		w.settleCounted(all, notices, codes, done, retry, at)
		return
	}
	if answered {
		w.mu.Lock()
		w.failures = 0
		w.mu.Unlock()
	}
	now = time.Now()
	at := make(map[int]time.Time, len(retry)+1)
	for n := range retry {
		at[n] = now.Add(jittered(f.cfg.Retry, f.cfg.MaxRetry, n))
	}
	if len(failedSeqs) > 0 {
		retry.add(-1, failedSeqs...)
		at[-1] = now.Add(w.backoff())
	}
	w.settleCounted(all, notices, codes, done, retry, at)
}

// retries groups the Seqs of envelopes to relay again by their relay
// count; -1 groups those of failed attempts.
type retries map[int][]int64

func (r retries) add(n int, seqs ...int64) { r[n] = append(r[n], seqs...) }

// settle records the outcome of a round: notices for undeliverable
// envelopes, then removal of the finished ones, then the retry time of the
// others (at[n] for the group retry[n]). It runs to completion even while
// the federation stops, so that nothing stays leased longer than needed.
// It returns the Seqs it removed from the queue.
func (w *worker) settle(notices []store.Outbound, codes []wire.Code, done []int64, retry retries, at map[int]time.Time) []int64 {
	f := w.f
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.notify(ctx, notices, codes, time.Now()); err != nil {
		// The notice must be durable before its envelope leaves the
		// queue: keep those envelopes and try again later.
		f.cfg.Logger.Error("undeliverable notices", "peer", w.domain, "err", err)
		keep := make(map[int64]bool, len(notices))
		for _, n := range notices {
			keep[n.Seq] = true
		}
		done = slices.DeleteFunc(done, func(seq int64) bool { return keep[seq] })
		const unnotified = -2
		for _, n := range notices {
			retry.add(unnotified, n.Seq)
		}
		at[unnotified] = time.Now().Add(w.backoff())
	}
	if len(done) > 0 {
		if err := f.cfg.Store.DeleteOutbound(ctx, done); err != nil {
			f.cfg.Logger.Error("outbound queue: delete", "peer", w.domain, "err", err)
			done = nil
		}
	}
	for n, seqs := range retry {
		if err := f.cfg.Store.RetryOutbound(ctx, seqs, at[n]); err != nil {
			f.cfg.Logger.Error("outbound queue: retry", "peer", w.domain, "err", err)
		}
	}
	return done
}

// settleCounted settles as settle does and uncounts what left the queue
// from the outbound quotas, with no scan of the store in between.
func (w *worker) settleCounted(rows, notices []store.Outbound, codes []wire.Code, done []int64, retry retries, at map[int]time.Time) {
	w.f.usage.RLock()
	defer w.f.usage.RUnlock()
	w.released(rows, w.settle(notices, codes, done, retry, at))
}

// released uncounts, in the outbound quotas, the rows whose Seqs left the
// queue.
func (w *worker) released(rows []store.Outbound, seqs []int64) {
	if len(seqs) == 0 {
		return
	}
	gone := make(map[int64]bool, len(seqs))
	for _, s := range seqs {
		gone[s] = true
	}
	for _, r := range rows {
		if gone[r.Seq] {
			w.f.quotas.release(r.From.Address, r.Domain, len(r.Envelope.Sealed))
		}
	}
}

// relaySize bounds the encoded size of an envelope in a relay request.
func relaySize(r store.Outbound) int {
	return len(r.Envelope.Sealed) + len(r.Envelope.To.Address) + len(r.Token) + 64
}

// relay sends one relay request and returns its per-envelope results.
func (w *worker) relay(ctx context.Context, batch []store.Outbound) ([]wire.Code, error) {
	envs := make([]wire.Envelope, len(batch))
	for i, r := range batch {
		envs[i] = wire.Envelope{ID: r.Envelope.ID[:], To: wire.Mailbox{Address: r.Envelope.To.Address, Device: r.Envelope.To.Device},
			Token: r.Token, Sealed: r.Envelope.Sealed, AcceptedAt: uint64(r.Envelope.ReceivedAt.UnixMilli())}
	}
	var ok wire.RelayOK
	if err := w.f.peer(w.domain).do(ctx, &wire.Relay{Envelopes: envs}, &ok); err != nil {
		return nil, err
	}
	if len(ok.Results) != len(envs) {
		// A peer that answers for other envelopes than it was sent breaks
		// the protocol; nothing it said can be trusted (spec 8.9.1).
		w.f.peer(w.domain).closeWith(wire.CloseProtocolViolation, "relay-ok of the wrong length")
		return nil, wire.Errorf(wire.CodeMalformed, "%d results for %d envelopes", len(ok.Results), len(envs))
	}
	return ok.Results, nil
}

// notify puts a notice in the mailbox of each undeliverable envelope's
// submitting device. A notice that cannot be written because that
// device's mailbox is full or the device is gone is given up (spec 8.9.5);
// any other failure is returned.
func (w *worker) notify(ctx context.Context, rows []store.Outbound, codes []wire.Code, now time.Time) error {
	if len(rows) == 0 {
		return nil
	}
	f := w.f
	envs := make([]store.Envelope, 0, len(rows))
	for i, r := range rows {
		to := wire.Mailbox{Address: r.Envelope.To.Address, Device: r.Envelope.To.Device}
		b, err := wire.Marshal(&wire.Notice{ID: r.Envelope.ID[:], To: to, Code: codes[i]})
		if err != nil {
			return err
		}
		var id store.EnvelopeID
		copy(id[:], wire.NoticeID(r.Envelope.ID[:], to))
		envs = append(envs, store.Envelope{ID: id, To: r.From, Sealed: b, Lane: store.LaneNotice, ReceivedAt: now})
	}
	errs, err := f.cfg.Store.Enqueue(ctx, envs)
	if err != nil {
		return err
	}
	for i, e := range errs {
		if e == nil {
			f.cfg.Local.Notify(envs[i].To)
		}
	}
	f.cfg.Logger.Info("envelopes undeliverable", "peer", w.domain, "count", len(rows))
	return nil
}
