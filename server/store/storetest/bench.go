package storetest

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// The benchmarks below are shared by the backends: a backend's bench_test.go
// calls each with its own [BenchOpener].

// BenchOpener opens a new, empty store for b with [BenchLimits], creates
// boxes accounts in it with one device each, and returns the store and the
// accounts' mailboxes. It closes the store when b ends (b.Cleanup).
type BenchOpener func(b *testing.B, boxes int) (store.Store, []store.Mailbox)

// BenchLimits never refuse an envelope but are checked all the same.
var BenchLimits = store.Limits{
	MailboxMaxEnvelopes: 1 << 30,
	MailboxMaxBytes:     1 << 50,
	MaxOneTimeKeys:      1000,
}

// TxStats is implemented by a store that counts its write transactions, as
// the SQLite backend's does in its tests. The enqueue benchmarks then also
// report write operations per transaction ("ops/tx").
type TxStats interface {
	// Stats returns how many transactions the store began and how many
	// write operations it ran in them.
	Stats() (txs, ops int64)
}

// benchStats returns s's transaction counters, or zeros if it keeps none.
func benchStats(s store.Store) (txs, ops int64) {
	if st, ok := s.(TxStats); ok {
		return st.Stats()
	}
	return 0, 0
}

// benchReport reports envelopes per second and, when s implements [TxStats]
// and committed anything since txs0 and ops0, envelopes per transaction.
func benchReport(b *testing.B, s store.Store, envelopes int, txs0, ops0 int64) {
	b.ReportMetric(float64(envelopes)/b.Elapsed().Seconds(), "envelopes/s")
	if st, ok := s.(TxStats); ok {
		if txs, ops := st.Stats(); txs > txs0 {
			b.ReportMetric(float64(ops-ops0)/float64(txs-txs0), "ops/tx")
		}
	}
}

// BenchEnvelope returns an envelope to mb with an ID made from n and a
// 1 KiB payload.
func BenchEnvelope(mb store.Mailbox, n int) store.Envelope {
	var id store.EnvelopeID
	copy(id[:], fmt.Sprintf("%016d", n))
	return store.Envelope{ID: id, To: mb, Sealed: make([]byte, 1024), ReceivedAt: time.Now()}
}

// BenchOutbound returns an outbound envelope for domain with an ID made
// from n, a 1 KiB payload and a 32-byte token.
func BenchOutbound(domain string, n int) store.Outbound {
	e := BenchEnvelope(store.Mailbox{Address: fmt.Sprintf("user%d@%s", n%16, domain), Device: 1}, n)
	return store.Outbound{
		Domain:   domain,
		Envelope: e,
		Token:    make([]byte, 32),
		From:     store.Mailbox{Address: "alice@example.org", Device: 1},
	}
}

// BenchmarkEnqueueSerial enqueues one envelope at a time, round robin over
// 16 mailboxes.
func BenchmarkEnqueueSerial(b *testing.B, open BenchOpener) {
	s, mbs := open(b, 16)
	ctx := b.Context()
	txs0, ops0 := benchStats(s)
	n := 0
	for b.Loop() {
		res, err := s.Enqueue(ctx, []store.Envelope{BenchEnvelope(mbs[n%len(mbs)], n)})
		if err != nil || res[0] != nil {
			b.Fatal(err, res)
		}
		n++
	}
	benchReport(b, s, n, txs0, ops0)
}

// BenchmarkEnqueueParallel enqueues one envelope at a time from many
// goroutines, round robin over 16 mailboxes.
func BenchmarkEnqueueParallel(b *testing.B, open BenchOpener) {
	s, mbs := open(b, 16)
	ctx := b.Context()
	b.SetParallelism(32) // senders per CPU: a busy homeserver has many
	txs0, ops0 := benchStats(s)
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := int(next.Add(1))
			res, err := s.Enqueue(ctx, []store.Envelope{BenchEnvelope(mbs[n%len(mbs)], n)})
			if err != nil || res[0] != nil {
				b.Error(err, res)
				return
			}
		}
	})
	benchReport(b, s, int(next.Load()), txs0, ops0)
}

// BenchmarkEnqueueBatch100 enqueues 100 envelopes per call, spread over 16
// mailboxes.
func BenchmarkEnqueueBatch100(b *testing.B, open BenchOpener) {
	s, mbs := open(b, 16)
	ctx := b.Context()
	txs0, ops0 := benchStats(s)
	envs := make([]store.Envelope, 100)
	n := 0
	for b.Loop() {
		for i := range envs {
			envs[i] = BenchEnvelope(mbs[n%len(mbs)], n)
			n++
		}
		res, err := s.Enqueue(ctx, envs)
		if err != nil {
			b.Fatal(err)
		}
		for _, err := range res {
			if err != nil {
				b.Fatal(err)
			}
		}
	}
	benchReport(b, s, n, txs0, ops0)
}

// BenchmarkPendingAck measures draining a mailbox: each iteration reads 100
// waiting envelopes and acknowledges them. Refilling is not timed.
func BenchmarkPendingAck(b *testing.B, open BenchOpener) {
	s, mbs := open(b, 1)
	mb := mbs[0]
	ctx := b.Context()
	envs := make([]store.Envelope, 100)
	ids := make([]store.EnvelopeID, 0, len(envs))
	n, drained := 0, 0
	var cursor int64
	for b.Loop() {
		b.StopTimer()
		for i := range envs {
			envs[i] = BenchEnvelope(mb, n)
			n++
		}
		if _, err := s.Enqueue(ctx, envs); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()

		got, err := s.Pending(ctx, mb, cursor, len(envs))
		if err != nil {
			b.Fatal(err)
		}
		if len(got) != len(envs) {
			b.Fatalf("Pending returned %d envelopes, want %d", len(got), len(envs))
		}
		ids = ids[:0]
		for _, st := range got {
			ids = append(ids, st.ID)
		}
		cursor = got[len(got)-1].Seq
		if err := s.Ack(ctx, mb, ids); err != nil {
			b.Fatal(err)
		}
		drained += len(got)
	}
	b.ReportMetric(float64(drained)/b.Elapsed().Seconds(), "envelopes/s")
}

// BenchmarkEnqueueOutboundBatch100 queues 100 envelopes per call for
// relaying, spread over 4 domains.
func BenchmarkEnqueueOutboundBatch100(b *testing.B, open BenchOpener) {
	s, _ := open(b, 0)
	ctx := b.Context()
	txs0, ops0 := benchStats(s)
	out := make([]store.Outbound, 100)
	n := 0
	for b.Loop() {
		for i := range out {
			out[i] = BenchOutbound(fmt.Sprintf("d%d.example", n%4), n)
			n++
		}
		if err := s.EnqueueOutbound(ctx, out); err != nil {
			b.Fatal(err)
		}
	}
	benchReport(b, s, n, txs0, ops0)
}

// BenchmarkClaimDelete100 measures relaying: each iteration claims the 100
// oldest envelopes queued for a domain and deletes them. Refilling is not
// timed. backlog is how many more envelopes stay queued for the domain,
// which a claim (taking the lowest Seqs of those due) orders.
func BenchmarkClaimDelete100(b *testing.B, open BenchOpener) {
	for _, backlog := range []int{0, 10000, 100000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			s, _ := open(b, 0)
			ctx := b.Context()
			const domain = "b.example"
			out := make([]store.Outbound, 1000)
			n := 0
			fill := func(count int) {
				for count > 0 {
					out = out[:min(count, cap(out))]
					for i := range out {
						out[i] = BenchOutbound(domain, n)
						n++
					}
					if err := s.EnqueueOutbound(ctx, out); err != nil {
						b.Fatal(err)
					}
					count -= len(out)
				}
			}
			fill(backlog)
			seqs := make([]int64, 0, 100)
			relayed := 0
			for b.Loop() {
				b.StopTimer()
				fill(100)
				b.StartTimer()

				got, err := s.ClaimOutbound(ctx, domain, time.Now(), time.Minute, 100)
				if err != nil {
					b.Fatal(err)
				}
				if len(got) != 100 {
					b.Fatalf("ClaimOutbound returned %d envelopes, want 100", len(got))
				}
				seqs = seqs[:0]
				for _, o := range got {
					seqs = append(seqs, o.Seq)
				}
				if err := s.DeleteOutbound(ctx, seqs); err != nil {
					b.Fatal(err)
				}
				relayed += len(got)
			}
			b.ReportMetric(float64(relayed)/b.Elapsed().Seconds(), "envelopes/s")
		})
	}
}
