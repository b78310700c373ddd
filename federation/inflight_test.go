package federation_test

import (
	"errors"
	"sync"
	"testing"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// A listener keeps at most 4 connections of one origin domain that
// completed fed-hello; the 5th gets rate_limited with a retry-after
// (spec/08-federation.md section 8.5). Another origin is unaffected.
func TestConnectionsPerOriginAreCapped(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	b := fed["b.test"]
	for i := range 4 {
		r := servertest.DialFed(t, b, b.CADir(), "a.test")
		if err := hello(r, "a.test"); err != nil {
			t.Fatalf("connection %d of a.test: %v", i+1, err)
		}
	}
	r := servertest.DialFed(t, b, b.CADir(), "a.test")
	err := hello(r, "a.test")
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeRateLimited || pe.RetryAfter == 0 {
		t.Fatalf("5th connection of a.test: %v, want rate_limited with a retry-after", err)
	}
	if err := hello(servertest.DialFed(t, b, b.CADir(), "c.test"), "c.test"); err != nil {
		t.Fatalf("c.test while a.test is at its cap: %v", err)
	}
}

// A dialler that has more than 16 relay requests in flight on one
// connection gets the excess refused as a whole with rate_limited (section
// 8.5). Relays whose FINs arrive together are handled together; a round
// without a refusal can happen when the listener finishes some before it
// reads the others, so the test tries a few rounds.
func TestRelaysInFlightAreCapped(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	b := fed["b.test"]
	// Bob accepts a token, so that every relayed envelope is stored
	// durably: a relay is then handled for as long as a commit takes.
	rb := servertest.Dial(t, b)
	d := servertest.NewDevice(t, "bob@b.test")
	if err := rb.Register(d, nil); err != nil {
		t.Fatal(err)
	}
	token := append(servertest.RandomID(), servertest.RandomID()...)
	verifier := wire.TokenVerifier(token)
	if err := rb.Request(&wire.SetDeliveryPolicy{Verifiers: [][]byte{verifier[:]}}, &wire.OK{}); err != nil {
		t.Fatal(err)
	}
	bob := wire.Mailbox{Address: d.Address, Device: d.ID}
	r := servertest.DialFed(t, b, b.CADir(), "a.test")
	if err := hello(r, "a.test"); err != nil {
		t.Fatal(err)
	}
	const relays, perRelay = 64, 8
	for round := range 5 {
		streams := make([]*quic.Stream, relays)
		for i := range streams {
			envs := make([]wire.Envelope, perRelay)
			for j := range envs {
				envs[j] = wire.Envelope{ID: servertest.RandomID(), To: bob, Token: token, Sealed: servertest.SealedOfLen(256)}
			}
			frame, err := wire.EncodeRequest(&wire.Relay{Envelopes: envs})
			if err != nil {
				t.Fatal(err)
			}
			st, err := r.QC.OpenStreamSync(servertest.Context(t))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Write(frame); err != nil {
				t.Fatal(err)
			}
			streams[i] = st
		}
		// Every frame is written; the FINs go together.
		for _, st := range streams {
			st.Close()
		}
		var mu sync.Mutex
		refused, ok := 0, 0
		var wg sync.WaitGroup
		for _, st := range streams {
			wg.Add(1)
			go func() {
				defer wg.Done()
				p, err := wire.ReadFrame(st, wire.MaxFrame)
				if err != nil {
					t.Errorf("relay response: %v", err)
					return
				}
				var res wire.RelayOK
				err = wire.DecodeResponse(p, &res)
				mu.Lock()
				defer mu.Unlock()
				var pe *wire.Error
				switch {
				case err == nil:
					ok++
				case errors.As(err, &pe) && pe.Code == wire.CodeRateLimited && pe.RetryAfter > 0:
					refused++
				default:
					t.Errorf("relay: %v", err)
				}
			}()
		}
		wg.Wait()
		t.Logf("round %d: %d relays handled, %d refused", round, ok, refused)
		if ok < relaysInFlight {
			t.Fatalf("only %d of %d relays handled", ok, relays)
		}
		if refused > 0 {
			return
		}
	}
	t.Fatalf("%d relays in flight on one connection were all handled, in 5 rounds; the limit is %d", relays, relaysInFlight)
}

// relaysInFlight is the limit of section 8.5.
const relaysInFlight = 16
