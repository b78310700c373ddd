package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// countIDs counts the deliveries of each id.
func countIDs(ds []wire.Delivery) map[string]int {
	m := map[string]int{}
	for _, d := range ds {
		m[string(d.ID)]++
	}
	return m
}

// sendAndCollect sends envs from a connection of s, then connects as r and
// returns what is pushed before caught-up.
func (t *T) sendAndCollect(s, r *account, envs ...wire.Envelope) []wire.Delivery {
	t.sendOK(t.connect(s), envs...)
	return t.untilCaughtUp(t.connect(r))
}

func init() {
	const dedupe = "when an envelope arrives whose identifier is already waiting in the same mailbox ..., including an earlier envelope of the same request, it is answered 0 (stored) and not stored a second time"
	register("7.3/1", MUST, "an identifier repeated in one send is answered 0 twice and stored once", dedupe, func(t *T) {
		as := t.accounts(2)
		e := envelopeFor(as[1])
		got := countIDs(t.sendAndCollect(as[0], as[1], e, e))
		if got[string(e.ID)] != 1 {
			t.Fatalf("delivered %d times", got[string(e.ID)])
		}
	})
	register("7.3/2", MUST, "a retried send with the same identifier is answered 0 and stored once", dedupe, func(t *T) {
		as := t.accounts(2)
		c := t.connect(as[0])
		e := envelopeFor(as[1])
		t.sendOK(c, e)
		e2 := e
		e2.Sealed = sealedOf(512) // the waiting envelope is kept unchanged
		t.sendOK(c, e2)
		ds := t.untilCaughtUp(t.connect(as[1]))
		if n := countIDs(ds)[string(e.ID)]; n != 1 {
			t.Fatalf("delivered %d times", n)
		}
		for _, d := range ds {
			if bytes.Equal(d.ID, e.ID) && !bytes.Equal(d.Sealed, e.Sealed) {
				t.Fatalf("the waiting envelope was replaced")
			}
		}
	})
	register("7.3/3", MUST, "duplicates are per mailbox: one identifier to two mailboxes is stored in both",
		"The server deduplicates per mailbox", func(t *T) {
			as := t.accounts(3)
			e1, e2 := envelopeFor(as[1]), envelopeFor(as[2])
			e2.ID = e1.ID
			t.sendOK(t.connect(as[0]), e1, e2)
			t.waitFor(t.connect(as[1]), 5*time.Second, e1.ID)
			t.waitFor(t.connect(as[2]), 5*time.Second, e1.ID)
		})

	register("7.9/1", MUST, "an envelope with a token matching a verifier is admitted in the token lane (0)",
		"If one matches, the envelope is admitted in the token lane (lane 0).", func(t *T) {
			as := t.accounts(2)
			e := envelopeFor(as[1])
			t.sendOK(t.connect(as[0]), e)
			d := t.waitFor(t.connect(as[1]), 5*time.Second, e.ID)[0]
			if d.Lane != wire.LaneToken {
				t.Fatalf("lane %d", d.Lane)
			}
		})
	register("7.9/2", MUST, "a token matching no verifier is token_invalid, not moved to the open request lane",
		"If none matches, the envelope is rejected with token_invalid (14); it is not moved to the request lane.", func(t *T) {
			as := t.accounts(2)
			e := envelopeFor(as[1])
			rand.Read(e.Token)
			t.sendCode(t.connect(as[0]), e, wire.CodeTokenInvalid)
			if t.pushedWithin(t.connect(as[1]), 300*time.Millisecond, e.ID) {
				t.Fatalf("the refused envelope was delivered")
			}
		})
	register("7.10/1", MUST, "set-delivery-policy replaces the whole policy: a removed verifier's token is token_invalid",
		"The request replaces the account's whole policy.", func(t *T) {
			as := t.accounts(2)
			other := make([]byte, 32)
			rand.Read(other)
			v := wire.TokenVerifier(other)
			t.do(t.connect(as[1]), &wire.SetDeliveryPolicy{Verifiers: [][]byte{v[:]}, RequestLaneOpen: true}, nil)
			c := t.connect(as[0])
			t.sendCode(c, envelopeFor(as[1]), wire.CodeTokenInvalid)
			e := envelopeFor(as[1])
			e.Token = other
			t.sendCode(c, e, wire.CodeOK)
		})
	register("7.10/2", MUST, "65 verifiers are limit_exceeded and the policy is unchanged",
		"More than 64 verifiers: limit_exceeded (21), and the policy is unchanged.", func(t *T) {
			as := t.accounts(2)
			vs := make([][]byte, 65)
			for i := range vs {
				vs[i] = make([]byte, 32)
				rand.Read(vs[i])
			}
			t.expectErr(t.connect(as[1]), &wire.SetDeliveryPolicy{Verifiers: vs, RequestLaneOpen: false}, wire.CodeLimitExceeded)
			c := t.connect(as[0])
			t.sendCode(c, envelopeFor(as[1]), wire.CodeOK)
			e := envelopeFor(as[1])
			e.Token = nil
			t.sendCode(c, e, wire.CodeOK) // the lane is still open
		})
	register("7.10/3", MUST, "a verifier that is not 32 bytes is malformed",
		"A verifier that is not 32 bytes: malformed (1) (CDDL).", func(t *T) {
			t.expectErr(t.connect(t.account()), &wire.SetDeliveryPolicy{Verifiers: [][]byte{make([]byte, 31)}, RequestLaneOpen: true}, wire.CodeMalformed)
		})
	register("7.10/4", MUST, "64 verifiers, duplicates included, are accepted and each admits its token",
		"Duplicate verifiers are allowed and have no effect.", func(t *T) {
			as := t.accounts(2)
			vs := make([][]byte, 64)
			for i := range vs {
				vs[i] = as[1].verifier()
			}
			last := make([]byte, 32)
			rand.Read(last)
			v := wire.TokenVerifier(last)
			vs[63] = v[:]
			t.do(t.connect(as[1]), &wire.SetDeliveryPolicy{Verifiers: vs, RequestLaneOpen: false}, nil)
			e := envelopeFor(as[1])
			e.Token = last
			t.sendOK(t.connect(as[0]), envelopeFor(as[1]), e)
		})

	register("7.11/1", MUST, "without a token, a closed request lane is request_lane_closed",
		"If the recipient account's request lane is closed, the envelope is rejected with request_lane_closed (15).", func(t *T) {
			as := t.accounts(2)
			t.do(t.connect(as[1]), &wire.SetDeliveryPolicy{Verifiers: [][]byte{as[1].verifier()}, RequestLaneOpen: false}, nil)
			e := envelopeFor(as[1])
			e.Token = nil
			c := t.connect(as[0])
			t.sendCode(c, e, wire.CodeRequestLaneClosed)
			t.sendCode(c, envelopeFor(as[1]), wire.CodeOK)
		})
	register("7.11/2", MUST, "without a token, an open request lane admits the envelope in lane 1",
		"Admitted envelopes are delivered with lane 1", func(t *T) {
			as := t.accounts(2)
			e := envelopeFor(as[1])
			e.Token = nil
			t.sendOK(t.connect(as[0]), e)
			if d := t.waitFor(t.connect(as[1]), 5*time.Second, e.ID)[0]; d.Lane != wire.LaneRequest {
				t.Fatalf("lane %d", d.Lane)
			}
		})
	register("7.11/3", MUST, "the request budget of an account admits at most 20 envelopes at once, then rate_limited",
		"a token bucket with capacity 20 units that starts full ... when no unit is available the envelope is rejected with rate_limited (16)", func(t *T) {
			s := t.account()
			r := t.freshAccount()
			c := t.connect(s)
			var envs []wire.Envelope
			for range 21 {
				e := envelopeFor(r)
				e.Token = nil
				envs = append(envs, e)
			}
			res := t.send(c, envs...)
			admitted := 0
			for _, x := range res {
				switch x {
				case wire.CodeOK:
					admitted++
				case wire.CodeRateLimited:
				default:
					t.Fatalf("result %s", x)
				}
			}
			if admitted > 20 || res[20] != wire.CodeRateLimited {
				t.Fatalf("results %v: %d admitted", res, admitted)
			}
			t.sendCode(c, envelopeFor(r), wire.CodeOK) // the token lane is not limited by it
		}, NeedRegister)

	register("7.12/1", MUST, "an envelope answered 0 is delivered to its recipient with the sealed bytes unchanged",
		"0 when the envelope is stored ... The server MUST NOT send send-ok before every envelope with result 0 ... is on stable storage", func(t *T) {
			as := t.accounts(2)
			e := envelopeFor(as[1])
			e.Sealed = sealedOf(1024)
			ds := t.sendAndCollect(as[0], as[1], e)
			for _, d := range ds {
				if bytes.Equal(d.ID, e.ID) {
					if !bytes.Equal(d.Sealed, e.Sealed) {
						t.Fatalf("the sealed bytes changed")
					}
					return
				}
			}
			t.Fatalf("the envelope answered 0 is not in the mailbox (%d others)", len(ds))
		})
	register("7.12/2", MUST, "an unknown device or account is unknown_device",
		"The recipient device exists, else unknown_device (12); an unknown account also gives unknown_device.", func(t *T) {
			as := t.accounts(2)
			c := t.connect(as[0])
			e := envelopeFor(as[1])
			e.To.Device = 4000000000
			t.sendCode(c, e, wire.CodeUnknownDevice)
			e = envelopeFor(as[1])
			e.To.Address = t.env.newAddress()
			t.sendCode(c, e, wire.CodeUnknownDevice)
		})
	register("7.12/3", MUST, "a sealed length that is not a bucket size is bad_padding",
		"if it is not len(enc) + 2^k + 16 for some 8 ≤ k ≤ 16, bad_padding (19)", func(t *T) {
			as := t.accounts(2)
			c := t.connect(as[0])
			for _, n := range []int{1391, 1393, 1, 66671} {
				e := envelopeFor(as[1])
				e.Sealed = make([]byte, n)
				if r := t.send(c, e)[0]; r != wire.CodeBadPadding {
					t.Fatalf("sealed length %d: result %s, want bad_padding", n, r)
				}
			}
		})
	register("7.12/4", MUST, "a sealed value longer than the largest bucket is envelope_too_large",
		"if it is greater than len(enc) + 65,536 + 16 for the recipient device's KEM, envelope_too_large (18)", func(t *T) {
			as := t.accounts(2)
			e := envelopeFor(as[1])
			e.Sealed = make([]byte, wire.XWingEncLen+131072+wire.AEADTagLen)
			t.sendCode(t.connect(as[0]), e, wire.CodeEnvelopeTooLarge)
		})
	register("7.12/5", MUST, "every bucket size from 256 to 65,536 bytes is accepted",
		"For X-Wing (len(enc) = 1120) the only valid sealed lengths are", func(t *T) {
			as := t.accounts(2)
			var envs []wire.Envelope
			for b := 256; b <= 65536; b *= 2 {
				e := envelopeFor(as[1])
				e.Sealed = sealedOf(b)
				envs = append(envs, e)
			}
			t.sendOK(t.connect(as[0]), envs...)
		})
	register("7.12/6", MUST, "a send with 0 or 257 envelopes is limit_exceeded",
		"the number of envelopes is 0 or more than 256: limit_exceeded (21)", func(t *T) {
			as := t.accounts(2)
			c := t.connect(as[0])
			t.expectErr(c, &wire.Send{Envelopes: []wire.Envelope{}}, wire.CodeLimitExceeded)
			envs := make([]wire.Envelope, 257)
			for i := range envs {
				envs[i] = envelopeFor(as[1])
			}
			t.expectErr(c, &wire.Send{Envelopes: envs}, wire.CodeLimitExceeded)
		})
	register("7.12/7", MUST, "an envelope to device 0, with a 31-byte token or a 15-byte identifier makes the send malformed",
		"an envelope does not match the CDDL rule (for example a recipient device identifier of 0, or a token that is not 32 bytes): malformed (1)", func(t *T) {
			as := t.accounts(2)
			c := t.connect(as[0])
			for _, mut := range []func(e *wire.Envelope){
				func(e *wire.Envelope) { e.To.Device = 0 },
				func(e *wire.Envelope) { e.Token = e.Token[:31] },
				func(e *wire.Envelope) { e.ID = e.ID[:15] },
			} {
				e := envelopeFor(as[1])
				mut(&e)
				t.expectErr(c, &wire.Send{Envelopes: []wire.Envelope{envelopeFor(as[1]), e}}, wire.CodeMalformed)
			}
		})
	register("7.12/8", MUST, "results come one per envelope, in request order",
		"Otherwise the server answers with one result per envelope, in the same order", func(t *T) {
			as := t.accounts(2)
			ok1, bad, ok2 := envelopeFor(as[1]), envelopeFor(as[1]), envelopeFor(as[1])
			bad.Sealed = bad.Sealed[:1000]
			unknown := envelopeFor(as[1])
			unknown.To.Device = 4000000000
			r := t.send(t.connect(as[0]), ok1, bad, unknown, ok2)
			if r[0] != 0 || r[1] != wire.CodeBadPadding || r[2] != wire.CodeUnknownDevice || r[3] != 0 {
				t.Fatalf("results %v, want [0 bad_padding unknown_device 0]", r)
			}
		})
	register("7.12/9", MUST, "key 5 of an envelope in a send is ignored: received-at is the server's time",
		"In a send from a client, key 5 has no meaning: a server ignores it, and records its current time.", func(t *T) {
			as := t.accounts(2)
			e := envelopeFor(as[1])
			e.AcceptedAt = 1000
			before := time.Now()
			t.sendOK(t.connect(as[0]), e)
			d := t.waitFor(t.connect(as[1]), 5*time.Second, e.ID)[0]
			at := time.UnixMilli(int64(d.ReceivedAt))
			if at.Before(before.Add(-2*time.Second)) || at.After(time.Now().Add(2*time.Second)) {
				t.Fatalf("received-at %s", at.UTC())
			}
		})
	register("7.12/10", MUST, "a delivery carries nothing about the sender: only keys 1 to 4, and not the sender's address",
		"The server MUST NOT store, log or otherwise keep any association between the envelope and the connection, device or account that submitted it", func(t *T) {
			as := t.accounts(2)
			e := envelopeFor(as[1])
			t.sendOK(t.connect(as[0]), e)
			c := t.connect(as[1])
			for {
				it, err := c.pushes().next(t.ctx)
				t.must(err, "push")
				if bytes.Contains(it.raw, []byte(as[0].address)) {
					t.Fatalf("a push frame holds the sender's address")
				}
				if _, ok := it.msg.(*wire.Deliver); !ok {
					continue
				}
				keys, err := deliveryKeys(it.raw)
				t.must(err, "deliver frame")
				for _, k := range keys {
					if k < 1 || k > 4 {
						t.Fatalf("a delivery has key %d", k)
					}
				}
				if n := countIDs(it.msg.(*wire.Deliver).Deliveries)[string(e.ID)]; n > 0 {
					return
				}
			}
		})

	register("7.13/1", MUST, "a mailbox holding the announced number of envelopes refuses one more with mailbox_full",
		"The mailbox has room (section 7.13): fewer than 10,000 envelopes waiting ...; else mailbox_full (17).", func(t *T) {
			limit := int(t.env.info.Limits.MailboxMaxEnvelopes)
			if limit > 20000 {
				t.Skipf("the announced mailbox limit of %d is too large to fill quickly", limit)
			}
			as := t.accounts(2)
			c := t.connect(as[0])
			for sent := 0; sent < limit; {
				n := min(256, limit-sent)
				envs := make([]wire.Envelope, n)
				for i := range envs {
					envs[i] = envelopeFor(as[1])
				}
				t.sendOK(c, envs...)
				sent += n
			}
			t.sendCode(c, envelopeFor(as[1]), wire.CodeMailboxFull)
		})

	register("7.14/1", MUST, "on an empty mailbox caught-up is the first push frame",
		"caught-up is sent exactly once per push stream, also when the mailbox was empty (it is then the first frame)", func(t *T) {
			c := t.connect(t.account())
			ctx, cancel := context.WithTimeout(t.ctx, pushWait)
			defer cancel()
			it, err := c.pushes().next(ctx)
			t.must(err, "push")
			if _, ok := it.msg.(*wire.CaughtUp); !ok {
				t.Fatalf("first push frame %T", it.msg)
			}
		})
	register("7.14/2", MUST, "waiting envelopes are pushed before caught-up, in order of acceptance",
		"pushes every envelope waiting in the device's mailbox, in the order in which the server accepted them (for the envelopes of one send, their order in the request)", func(t *T) {
			as := t.accounts(2)
			c := t.connect(as[0])
			var ids [][]byte
			for range 2 {
				envs := []wire.Envelope{envelopeFor(as[1]), envelopeFor(as[1]), envelopeFor(as[1])}
				t.sendOK(c, envs...)
				for _, e := range envs {
					ids = append(ids, e.ID)
				}
			}
			ds := t.untilCaughtUp(t.connect(as[1]))
			if len(ds) != len(ids) {
				t.Fatalf("%d deliveries before caught-up, want %d", len(ds), len(ids))
			}
			for i := range ds {
				if !bytes.Equal(ds[i].ID, ids[i]) {
					t.Fatalf("delivery %d out of order", i)
				}
			}
		})
	register("7.14/3", MUST, "an envelope accepted while the recipient is connected is pushed to it",
		"then pushes each new envelope for the device, in order of acceptance, after it is durably stored and without undue delay", func(t *T) {
			as := t.accounts(2)
			r := t.connect(as[1])
			t.untilCaughtUp(r)
			e := envelopeFor(as[1])
			t.sendOK(t.connect(as[0]), e)
			t.waitFor(r, 5*time.Second, e.ID)
		})
	register("7.14/4", MUST, "an envelope is pushed at most once on a connection, and again on the next connection until acknowledged",
		"Each envelope is pushed at most once on a given connection. An envelope that is not acknowledged stays in the mailbox and is pushed again on the device's next authenticated connection", func(t *T) {
			as := t.accounts(2)
			s := t.connect(as[0])
			r := t.connect(as[1])
			t.untilCaughtUp(r)
			e1 := envelopeFor(as[1])
			t.sendOK(s, e1)
			t.waitFor(r, 5*time.Second, e1.ID)
			e2 := envelopeFor(as[1])
			t.sendOK(s, e2)
			// Everything pushed up to e2 must not repeat e1.
			ctx := t.ctx
			for {
				it, err := r.pushes().next(ctx)
				t.must(err, "push")
				d, ok := it.msg.(*wire.Deliver)
				if !ok {
					continue
				}
				c := countIDs(d.Deliveries)
				if c[string(e1.ID)] > 0 {
					t.Fatalf("pushed twice on one connection")
				}
				if c[string(e2.ID)] > 0 {
					break
				}
			}
			r.close()
			n := countIDs(t.untilCaughtUp(t.connect(as[1])))
			if n[string(e1.ID)] != 1 || n[string(e2.ID)] != 1 {
				t.Fatalf("unacknowledged envelopes on the next connection: %d and %d times", n[string(e1.ID)], n[string(e2.ID)])
			}
		})
	register("7.14/5", MUST, "100 waiting envelopes are pushed in deliver frames of 1 to 64 deliveries",
		"A deliver frame holds 1 to 64 deliveries and MUST fit in the frame limit (1 MiB)", func(t *T) {
			as := t.accounts(2)
			envs := make([]wire.Envelope, 100)
			for i := range envs {
				envs[i] = envelopeFor(as[1])
			}
			ds := t.sendAndCollect(as[0], as[1], envs...) // the push decoder checks 1 to 64
			if len(ds) != 100 {
				t.Fatalf("%d deliveries", len(ds))
			}
		})
	register("7.14/6", MUST, "received-at is the server's time of acceptance and the lane is the admission lane",
		"Delivery key 3 is the received-at time; key 4 the lane: 0 token lane, 1 request lane", func(t *T) {
			as := t.accounts(2)
			tok, lane := envelopeFor(as[1]), envelopeFor(as[1])
			lane.Token = nil
			before := time.Now()
			t.sendOK(t.connect(as[0]), tok, lane)
			after := time.Now()
			ds := t.waitFor(t.connect(as[1]), 5*time.Second, tok.ID, lane.ID)
			for _, d := range ds {
				at := time.UnixMilli(int64(d.ReceivedAt))
				if at.Before(before.Add(-2*time.Second)) || at.After(after.Add(2*time.Second)) {
					t.Errorf("received-at %s, sent between %s and %s", at.UTC(), before.UTC(), after.UTC())
				}
				want := uint8(wire.LaneToken)
				if bytes.Equal(d.ID, lane.ID) {
					want = wire.LaneRequest
				}
				if d.Lane != want {
					t.Errorf("lane %d, want %d", d.Lane, want)
				}
			}
		})

	register("7.15/1", MUST, "an acknowledged envelope is not delivered again",
		"The server deletes the listed envelopes ... from the authenticated device's mailbox and answers ack-ok.", func(t *T) {
			as := t.accounts(2)
			e, keep := envelopeFor(as[1]), envelopeFor(as[1])
			t.sendOK(t.connect(as[0]), e, keep)
			r := t.connect(as[1])
			t.waitFor(r, 5*time.Second, e.ID, keep.ID)
			t.do(r, &wire.Ack{IDs: [][]byte{e.ID}}, nil)
			r.close()
			n := countIDs(t.untilCaughtUp(t.connect(as[1])))
			if n[string(e.ID)] != 0 {
				t.Fatalf("the acknowledged envelope was delivered again")
			}
			if n[string(keep.ID)] != 1 {
				t.Fatalf("the unacknowledged envelope was delivered %d times", n[string(keep.ID)])
			}
		})
	register("7.15/2", MUST, "acknowledging unknown or already acknowledged identifiers is answered ack-ok",
		"Identifiers that are not waiting in that mailbox (unknown, already acknowledged, expired, or waiting in another mailbox) are ignored.", func(t *T) {
			c := t.connect(t.account())
			ids := [][]byte{randomID(), randomID()}
			t.do(c, &wire.Ack{IDs: ids}, nil)
			t.do(c, &wire.Ack{IDs: ids}, nil)
		})
	register("7.15/3", MUST, "a device cannot acknowledge another mailbox's envelope",
		"A device can acknowledge only its own envelopes.", func(t *T) {
			as := t.accounts(2)
			e := envelopeFor(as[1])
			c := t.connect(as[0])
			t.sendOK(c, e)
			t.do(c, &wire.Ack{IDs: [][]byte{e.ID}}, nil)
			if n := countIDs(t.untilCaughtUp(t.connect(as[1])))[string(e.ID)]; n != 1 {
				t.Fatalf("delivered %d times after another device acknowledged it", n)
			}
		})
}

// deliveryKeys returns the map keys of every delivery in a deliver frame.
func deliveryKeys(raw []byte) ([]uint64, error) {
	var f struct {
		Deliveries []map[uint64]any `cbor:"1,keyasint"`
	}
	if err := decodeLoose(raw, &f); err != nil {
		return nil, err
	}
	var keys []uint64
	for _, d := range f.Deliveries {
		for k := range d {
			keys = append(keys, k)
		}
	}
	return keys, nil
}
