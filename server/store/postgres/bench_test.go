package postgres_test

import (
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/postgres"
)

// The benchmarks mirror the SQLite backend's. Their pools have the size
// the URL asks for (pool_max_conns), else 4.

// benchLimits never refuse an envelope but are checked all the same.
var benchLimits = store.Limits{
	MailboxMaxEnvelopes: 1 << 30,
	MailboxMaxBytes:     1 << 50,
	MaxOneTimeKeys:      1000,
}

// benchStore opens a store in a new schema with boxes accounts and returns
// their mailboxes.
func benchStore(b *testing.B, boxes int) (*postgres.Store, []store.Mailbox) {
	b.Helper()
	s := open(b, newSchema(b, true), benchLimits)
	mbs := make([]store.Mailbox, boxes)
	for i := range mbs {
		mbs[i] = account(b, s, fmt.Sprintf("user%d@example.org", i))
	}
	return s, mbs
}

// report reports envelopes per second.
func report(b *testing.B, envelopes int) {
	b.ReportMetric(float64(envelopes)/b.Elapsed().Seconds(), "envelopes/s")
}

func BenchmarkEnqueueSerial(b *testing.B) {
	s, mbs := benchStore(b, 16)
	ctx := b.Context()
	n := 0
	for b.Loop() {
		res, err := s.Enqueue(ctx, []store.Envelope{envelope(mbs[n%len(mbs)], n)})
		if err != nil || res[0] != nil {
			b.Fatal(err, res)
		}
		n++
	}
	report(b, n)
}

func BenchmarkEnqueueParallel(b *testing.B) {
	s, mbs := benchStore(b, 16)
	ctx := b.Context()
	b.SetParallelism(32) // senders per CPU: a busy homeserver has many
	var next atomic.Int64
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			n := int(next.Add(1))
			res, err := s.Enqueue(ctx, []store.Envelope{envelope(mbs[n%len(mbs)], n)})
			if err != nil || res[0] != nil {
				b.Error(err, res)
				return
			}
		}
	})
	report(b, int(next.Load()))
}

func BenchmarkEnqueueBatch100(b *testing.B) {
	s, mbs := benchStore(b, 16)
	ctx := b.Context()
	envs := make([]store.Envelope, 100)
	n := 0
	for b.Loop() {
		for i := range envs {
			envs[i] = envelope(mbs[n%len(mbs)], n)
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
	report(b, n)
}

// BenchmarkPendingAck measures draining a mailbox: each iteration reads 100
// waiting envelopes and acknowledges them. Refilling is not timed.
func BenchmarkPendingAck(b *testing.B) {
	s, mbs := benchStore(b, 1)
	mb := mbs[0]
	ctx := b.Context()
	envs := make([]store.Envelope, 100)
	ids := make([]store.EnvelopeID, 0, len(envs))
	n, drained := 0, 0
	var cursor int64
	for b.Loop() {
		b.StopTimer()
		for i := range envs {
			envs[i] = envelope(mb, n)
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
	report(b, drained)
}

func BenchmarkEnqueueOutboundBatch100(b *testing.B) {
	s, _ := benchStore(b, 0)
	ctx := b.Context()
	out := make([]store.Outbound, 100)
	n := 0
	for b.Loop() {
		for i := range out {
			out[i] = outboundEnvelope(fmt.Sprintf("d%d.example", n%4), n)
			n++
		}
		if err := s.EnqueueOutbound(ctx, out); err != nil {
			b.Fatal(err)
		}
	}
	report(b, n)
}

// BenchmarkClaimDelete100 measures relaying: each iteration claims the 100
// oldest envelopes queued for a domain and deletes them. Refilling is not
// timed. backlog is how many more envelopes stay queued for the domain.
func BenchmarkClaimDelete100(b *testing.B) {
	for _, backlog := range []int{0, 10000, 100000} {
		b.Run(fmt.Sprintf("backlog=%d", backlog), func(b *testing.B) {
			s, _ := benchStore(b, 0)
			ctx := b.Context()
			const domain = "b.example"
			out := make([]store.Outbound, 1000)
			n := 0
			fill := func(count int) {
				for count > 0 {
					out = out[:min(count, cap(out))]
					for i := range out {
						out[i] = outboundEnvelope(domain, n)
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
			report(b, relayed)
		})
	}
}
