package federation_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// BenchmarkRelay measures envelopes per second from users of a.test to
// users of b.test: accepted and queued durably at a.test, relayed, stored
// durably at b.test and pushed to the online recipients, who acknowledge
// them. Both homeservers, the senders and the recipients share this
// machine.
func BenchmarkRelay(b *testing.B) {
	const senders, recipients, perSend = 4, 4, 64
	fed := servertest.StartFederation(b, servertest.Options{}, "a.test", "b.test")
	a, bs := fed["a.test"], fed["b.test"]
	token := append(servertest.RandomID(), servertest.RandomID()...)
	verifier := wire.TokenVerifier(token)
	var delivered atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var boxes []wire.Mailbox
	for i := range recipients {
		r := servertest.Dial(b, bs)
		d := servertest.NewDevice(b, "rcpt"+string(rune('a'+i))+"@b.test")
		if err := r.Register(d, nil); err != nil {
			b.Fatal(err)
		}
		if err := r.Request(&wire.SetDeliveryPolicy{Verifiers: [][]byte{verifier[:]}}, &wire.OK{}); err != nil {
			b.Fatal(err)
		}
		boxes = append(boxes, wire.Mailbox{Address: d.Address, Device: d.ID})
		go func() {
			st, err := r.QC.AcceptUniStream(ctx)
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
					return
				}
				dl, ok := f.(*wire.Deliver)
				if !ok {
					continue
				}
				ids := make([][]byte, len(dl.Deliveries))
				for i, x := range dl.Deliveries {
					ids[i] = x.ID
				}
				if err := wire.RoundTrip(ctx, r.QC, &wire.Ack{IDs: ids}, &wire.OK{}); err != nil {
					return
				}
				if delivered.Add(int64(len(ids))) >= int64(b.N) {
					once.Do(func() { close(done) })
				}
			}
		}()
	}
	sealed := servertest.SealedOfLen(512)
	conns := make([]*servertest.Raw, senders)
	for i := range conns {
		conns[i] = servertest.Dial(b, a)
		if err := conns[i].Register(servertest.NewDevice(b, "sender"+string(rune('a'+i))+"@a.test"), nil); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				first := next.Add(perSend) - perSend
				if first >= int64(b.N) {
					return
				}
				n := min(perSend, int64(b.N)-first)
				envs := make([]wire.Envelope, n)
				for i := range envs {
					envs[i] = wire.Envelope{ID: servertest.RandomID(), To: boxes[(first+int64(i))%recipients], Token: token, Sealed: sealed}
				}
				var ok wire.SendOK
				if err := wire.RoundTrip(ctx, c.QC, &wire.Send{Envelopes: envs}, &ok); err != nil {
					b.Error(err)
					return
				}
				for _, code := range ok.Results {
					if code != wire.CodeOK {
						b.Errorf("send: %s", code)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	select {
	case <-done:
	case <-time.After(5 * time.Minute):
		b.Fatalf("%d of %d envelopes delivered", delivered.Load(), b.N)
	}
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "envelopes/s")
}
