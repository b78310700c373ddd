package server_test

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/sqlite"
	"github.com/xchat-im/xchat/spec/wire"
)

// A graceful shutdown in the middle of a stream of sends loses nothing that
// was acknowledged.
func TestShutdownLosesNothingAcknowledged(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	rb := servertest.Dial(t, s)
	if err := rb.Register(servertest.NewDevice(t, "bob@a.test"), nil); err != nil {
		t.Fatal(err)
	}
	token := append(servertest.RandomID(), servertest.RandomID()...)
	v := wire.TokenVerifier(token)
	if err := rb.Request(&wire.SetDeliveryPolicy{Verifiers: [][]byte{v[:]}}, &wire.OK{}); err != nil {
		t.Fatal(err)
	}
	bob := wire.Mailbox{Address: "bob@a.test", Device: 1}
	var (
		mu    sync.Mutex
		acked [][]byte
		count atomic.Int64
		wg    sync.WaitGroup
		once  sync.Once
	)
	enough := make(chan struct{})
	for g := range 4 {
		r := servertest.Dial(t, s)
		d := servertest.NewDevice(t, "sender"+string(rune('a'+g))+"@a.test")
		if err := r.Register(d, nil); err != nil {
			t.Fatal(err)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				envs := make([]wire.Envelope, 4)
				for i := range envs {
					envs[i] = wire.Envelope{ID: servertest.RandomID(), To: bob, Token: token, Sealed: servertest.SealedOfLen(256)}
				}
				frame, _ := wire.EncodeRequest(&wire.Send{Envelopes: envs})
				st, err := r.QC.OpenStreamSync(t.Context())
				if err != nil {
					return
				}
				st.SetDeadline(time.Now().Add(20 * time.Second))
				st.Write(frame)
				st.Close()
				payload, err := wire.ReadFrame(st, wire.MaxFrame)
				if err != nil {
					return
				}
				var ok wire.SendOK
				if wire.DecodeResponse(payload, &ok) != nil {
					return
				}
				mu.Lock()
				for i, c := range ok.Results {
					if c == wire.CodeOK {
						acked = append(acked, envs[i].ID)
					}
				}
				mu.Unlock()
				if count.Add(1) == 20 {
					once.Do(func() { close(enough) })
				}
			}
		}()
	}
	select {
	case <-enough:
	case <-time.After(30 * time.Second):
		t.Fatal("senders did not get 20 sends acknowledged in 30 s")
	}
	s.Stop()
	wg.Wait()
	if len(acked) == 0 {
		t.Fatal("no send was acknowledged")
	}
	st, err := sqlite.Open(servertest.Context(t), s.DBPath(), store.DefaultLimits(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	stored := map[store.EnvelopeID]bool{}
	var after int64
	for {
		page, err := st.Pending(servertest.Context(t), store.Mailbox{Address: bob.Address, Device: bob.Device}, after, 500)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		for _, e := range page {
			stored[e.ID] = true
			after = e.Seq
		}
	}
	ackedSet := map[store.EnvelopeID]bool{}
	for _, id := range acked {
		var k store.EnvelopeID
		copy(k[:], id)
		ackedSet[k] = true
		if !stored[k] {
			t.Fatalf("acknowledged envelope %x lost in shutdown", id)
		}
	}
	// In-flight requests finished and their responses reached the client:
	// nothing was stored without its sender hearing of it.
	for k := range stored {
		if !ackedSet[k] {
			t.Errorf("envelope %x stored but its send was never answered", k)
		}
	}
	t.Logf("%d envelopes acknowledged before shutdown, all stored", len(acked))
}
