package sqlite_test

import (
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// Backlog of claimed-then-retried due rows; 50 iterations keep it retried.
func BenchmarkZZRetriedBacklog(b *testing.B) {
	s, _ := benchStore(b, 0)
	ctx := b.Context()
	const domain = "b.example"
	out := make([]store.Outbound, 1000)
	n := 0
	for range 100 {
		for i := range out {
			out[i] = outboundEnvelope(domain, n)
			n++
		}
		if err := s.EnqueueOutbound(ctx, out); err != nil {
			b.Fatal(err)
		}
	}
	past := time.Now().Add(-time.Hour)
	for {
		got, err := s.ClaimOutbound(ctx, domain, time.Now(), time.Hour, 5000)
		if err != nil {
			b.Fatal(err)
		}
		if len(got) == 0 {
			break
		}
		seqs := make([]int64, len(got))
		for i := range got {
			seqs[i] = got[i].Seq
		}
		if err := s.RetryOutbound(ctx, seqs, past); err != nil {
			b.Fatal(err)
		}
		if got[len(got)-1].Seq >= int64(n) {
			break
		}
	}
	relayed := 0
	for b.Loop() {
		got, err := s.ClaimOutbound(ctx, domain, time.Now(), time.Minute, 100)
		if err != nil || len(got) != 100 {
			b.Fatal(err, len(got))
		}
		seqs := make([]int64, len(got))
		for i := range got {
			seqs[i] = got[i].Seq
		}
		if err := s.DeleteOutbound(ctx, seqs); err != nil {
			b.Fatal(err)
		}
		relayed += len(got)
	}
	b.ReportMetric(float64(relayed)/b.Elapsed().Seconds(), "envelopes/s")
}
