package server_test

import (
	"bytes"
	"testing"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// An envelope without a token from an authenticated device to another
// device of its own account is admitted in the token lane, whatever the
// request lane's state, and spends none of its budget; with a token, the
// token is checked as for anyone; a stranger's envelope without a token
// still goes through the request lane (spec/07-envelopes.md section 7.12,
// step 4).
func TestOwnDeviceCopiesBypassRequestLane(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	r1, _ := registered(t, s, "alice@a.test", nil)
	_, d2 := linked(t, s, r1, "alice@a.test")
	stranger, _ := registered(t, s, "eve@a.test", nil)
	dev2 := wire.Mailbox{Address: "alice@a.test", Device: d2.ID}
	noToken := func() wire.Envelope {
		return wire.Envelope{ID: servertest.RandomID(), To: dev2, Sealed: servertest.SealedOfLen(wire.MinBucket)}
	}
	send := func(r *servertest.Raw, envs ...wire.Envelope) []wire.Code {
		t.Helper()
		var ok wire.SendOK
		if err := r.Request(&wire.Send{Envelopes: envs}, &ok); err != nil {
			t.Fatal(err)
		}
		return ok.Results
	}

	// The stranger spends the whole budget.
	var spend []wire.Envelope
	for range wire.RequestLaneBurst + 1 {
		spend = append(spend, noToken())
	}
	if res := send(stranger, spend...); res[wire.RequestLaneBurst] != wire.CodeRateLimited {
		t.Fatalf("the stranger's results %v, want rate_limited last", res)
	}
	// Device 1 still reaches device 2, more times than the budget holds.
	var own []wire.Envelope
	for range 3 * wire.RequestLaneBurst {
		own = append(own, noToken())
	}
	for i, c := range send(r1, own...) {
		if c != wire.CodeOK {
			t.Fatalf("own-device copy %d with the request budget spent: %s", i, c)
		}
	}
	// A closed request lane does not stop them either.
	if err := r1.Request(&wire.SetDeliveryPolicy{RequestLaneOpen: false}, &wire.OK{}); err != nil {
		t.Fatal(err)
	}
	last := noToken()
	if c := send(r1, last)[0]; c != wire.CodeOK {
		t.Fatalf("own-device copy with the request lane closed: %s", c)
	}
	if c := send(stranger, noToken())[0]; c != wire.CodeRequestLaneClosed {
		t.Fatalf("a stranger with the request lane closed: %s", c)
	}
	// A token given is checked: a wrong one is token_invalid.
	wrong := noToken()
	wrong.Token = bytes.Repeat([]byte{7}, 32)
	if c := send(r1, wrong)[0]; c != wire.CodeTokenInvalid {
		t.Fatalf("own-device copy with a wrong token: %s, want token_invalid", c)
	}

	r2 := servertest.Dial(t, s)
	if err := r2.Authenticate(d2); err != nil {
		t.Fatal(err)
	}
	ds := pushed(t, r2)
	if len(ds) != len(spend)-1+len(own)+1 {
		t.Fatalf("device 2 has %d envelopes, want %d", len(ds), len(spend)-1+len(own)+1)
	}
	lanes := map[string]uint64{}
	for _, d := range ds {
		lanes[string(d.ID)] = uint64(d.Lane)
	}
	for _, e := range append(own, last) {
		if l := lanes[string(e.ID)]; l != uint64(wire.LaneToken) {
			t.Fatalf("own-device copy delivered in lane %d, want the token lane", l)
		}
	}
	for _, e := range spend[:wire.RequestLaneBurst] {
		if l := lanes[string(e.ID)]; l != uint64(wire.LaneRequest) {
			t.Fatalf("the stranger's envelope delivered in lane %d, want the request lane", l)
		}
	}
}
