package server_test

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// BenchmarkMailbox measures the mailbox hot path of one homeserver in one
// process: devices send 1392-byte envelopes (bucket 256) to each other
// with delivery tokens, 16 send requests in flight; every envelope is
// stored durably, pushed to its online recipient and acknowledged. The
// clients share the process and the machine. Run it with -cpuprofile or
// -memprofile to see the server's per-envelope costs.
func BenchmarkMailbox(b *testing.B) {
	for _, perSend := range []int{1, 16} {
		b.Run(fmt.Sprintf("per-send=%d", perSend), func(b *testing.B) { benchMailbox(b, 8, 16, perSend) })
	}
}

func benchMailbox(b *testing.B, devices, inFlight, perSend int) {
	s := servertest.Start(b, servertest.Options{})
	token := append(servertest.RandomID(), servertest.RandomID()...)
	verifier := wire.TokenVerifier(token)
	var delivered atomic.Int64
	done := make(chan struct{})
	var once sync.Once
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	conns := make([]*servertest.Raw, devices)
	boxes := make([]wire.Mailbox, devices)
	for i := range conns {
		c := servertest.Dial(b, s)
		d := servertest.NewDevice(b, fmt.Sprintf("dev%d@%s", i, s.Domain))
		if err := c.Register(d, nil); err != nil {
			b.Fatal(err)
		}
		if err := c.Request(&wire.SetDeliveryPolicy{Verifiers: [][]byte{verifier[:]}}, &wire.OK{}); err != nil {
			b.Fatal(err)
		}
		conns[i], boxes[i] = c, wire.Mailbox{Address: d.Address, Device: d.ID}
		go func() {
			st, err := c.QC.AcceptUniStream(ctx)
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
				// Acknowledge without waiting, as a client that stored them.
				go wire.RoundTrip(ctx, c.QC, &wire.Ack{IDs: ids}, &wire.OK{})
				if delivered.Add(int64(len(ids))) >= int64(b.N) {
					once.Do(func() { close(done) })
				}
			}
		}()
	}
	sealed := servertest.SealedOfLen(256)
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := range inFlight {
		wg.Add(1)
		go func() {
			defer wg.Done()
			from := conns[w%devices]
			for {
				first := next.Add(int64(perSend)) - int64(perSend)
				if first >= int64(b.N) {
					return
				}
				n := min(int64(perSend), int64(b.N)-first)
				envs := make([]wire.Envelope, n)
				for i := range envs {
					to := boxes[(w+1+int(first)+i)%devices]
					envs[i] = wire.Envelope{ID: servertest.RandomID(), To: to, Token: token, Sealed: sealed}
				}
				var ok wire.SendOK
				if err := wire.RoundTrip(ctx, from.QC, &wire.Send{Envelopes: envs}, &ok); err != nil {
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
