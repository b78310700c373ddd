package conformance

import (
	"bytes"
	"context"
	"crypto/rand"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// citeDedupe is the sentence that tests of deduplication cite.
const citeDedupe = "when an envelope arrives whose identifier is already waiting in the same mailbox ..., including an earlier envelope of the same request, it is answered 0 (stored) and not stored a second time"

// envelopesTests are the tests of section 7, envelopes and delivery:
// deduplication, delivery tokens, the request lane, send, mailboxes, pushes
// and acknowledgements.
var envelopesTests = []*Test{
	{ID: "7.3/1", Level: MUST, Summary: "an identifier repeated in one send is answered 0 twice and stored once",
		Cite: citeDedupe,
		run:  test7_3_1_DuplicateInOneSend},
	{ID: "7.3/2", Level: MUST, Summary: "a retried send with the same identifier is answered 0 and stored once",
		Cite: citeDedupe,
		run:  test7_3_2_DuplicateRetriedSend},
	{ID: "7.3/3", Level: MUST, Summary: "duplicates are per mailbox: one identifier to two devices of an account and to another account is stored in all three",
		Cite: "The server MUST deduplicate per mailbox",
		run:  test7_3_3_DuplicatesPerMailbox},
	{ID: "7.3/4", Level: MUST, Summary: "an identifier sent again after the recipient acknowledged it is stored and delivered again",
		Cite: "The server MUST deduplicate per mailbox: when an envelope arrives whose identifier is already waiting in the same mailbox (not yet acknowledged, not expired) ... Once an envelope has been acknowledged or has expired, its identifier is no longer known to the server",
		run:  test7_3_4_StoredAgainAfterAck},
	{ID: "7.9/1", Level: MUST, Summary: "an envelope with a token matching a verifier is admitted in the token lane (0)",
		Cite: "If one matches, the envelope MUST be admitted in the token lane (lane 0).",
		run:  test7_9_1_TokenLane},
	{ID: "7.9/2", Level: MUST, Summary: "a token matching no verifier is token_invalid, not moved to the open request lane",
		Cite: "If none matches, the envelope MUST be rejected with token_invalid (14); it is not moved to the request lane.",
		run:  test7_9_2_TokenMatchesNoVerifier},
	{ID: "7.10/1", Level: MUST, Summary: "set-delivery-policy replaces the whole policy: a removed verifier's token is token_invalid",
		Cite: "The request MUST replace the account's whole policy",
		run:  test7_10_1_PolicyReplaced},
	{ID: "7.10/2", Level: MUST, Summary: "65 verifiers are limit_exceeded and the policy is unchanged",
		Cite: "More than 64 verifiers: limit_exceeded (21), and the policy is unchanged.",
		run:  test7_10_2_Verifiers65},
	{ID: "7.10/3", Level: MUST, Summary: "a verifier that is not 32 bytes is malformed",
		Cite: "A verifier that is not 32 bytes: malformed (1) (CDDL).",
		run:  test7_10_3_Verifier31Bytes},
	{ID: "7.10/4", Level: MUST, Summary: "64 verifiers, duplicates included, are accepted and each admits its token",
		Cite: "Duplicate verifiers are allowed and have no effect.",
		run:  test7_10_4_Verifiers64WithDuplicates},
	{ID: "7.11/1", Level: MUST, Summary: "without a token, a closed request lane is request_lane_closed",
		Cite: "If the recipient account's request lane is closed, the envelope MUST be rejected with request_lane_closed (15).",
		run:  test7_11_1_RequestLaneClosed},
	{ID: "7.11/2", Level: MUST, Summary: "without a token, an open request lane admits the envelope in lane 1",
		Cite: "Admitted envelopes MUST be delivered with lane 1",
		run:  test7_11_2_RequestLaneOpen},
	{ID: "7.11/3", Level: MUST, Summary: "the request budget of an account admits at most 20 envelopes at once, then rate_limited",
		Cite: "a token bucket with capacity 20 units that starts full ... when no unit is available the envelope MUST be rejected with rate_limited (16)",
		run:  test7_11_3_RequestBudget},
	{ID: "7.11/4", Level: MUST, Summary: "the request budget is the account's: spent on one device, it refuses the account's other device",
		Cite: "when no unit is available the envelope MUST be rejected with rate_limited (16)",
		run:  test7_11_4_BudgetPerAccount},
	{ID: "7.12/1", Level: MUST, Summary: "an envelope answered 0 is delivered to its recipient with the sealed bytes unchanged",
		Cite: "The server MUST NOT send send-ok before every envelope with result 0 that it stored for this request ... is on stable storage",
		run:  test7_12_1_DeliveredUnchanged},
	{ID: "7.12/2", Level: MUST, Summary: "an unknown device or account is unknown_device",
		Cite: "The recipient device exists, else unknown_device (12); an unknown account also gives unknown_device.",
		run:  test7_12_2_UnknownDevice},
	{ID: "7.12/3", Level: MUST, Summary: "a sealed length that is not a bucket size is bad_padding",
		Cite: "if it is not len(enc) + 2^k + 16 for some 8 ≤ k ≤ 16, bad_padding (19)",
		run:  test7_12_3_BadPadding},
	{ID: "7.12/4", Level: MUST, Summary: "a sealed value longer than the largest bucket is envelope_too_large",
		Cite: "if it is greater than len(enc) + 65,536 + 16 for the recipient device's KEM, envelope_too_large (18)",
		run:  test7_12_4_EnvelopeTooLarge},
	{ID: "7.12/5", Level: MUST, Summary: "every bucket size from 256 to 65,536 bytes is accepted",
		Cite: "if it is not len(enc) + 2^k + 16 for some 8 ≤ k ≤ 16, bad_padding (19)",
		run:  test7_12_5_EveryBucket},
	{ID: "7.12/6", Level: MUST, Summary: "a send with 0 or 257 envelopes is limit_exceeded",
		Cite: "the number of envelopes is 0 or more than 256: limit_exceeded (21)",
		run:  test7_12_6_SendCountBounds},
	{ID: "7.12/7", Level: MUST, Summary: "an envelope to device 0, with a 31-byte token or a 15-byte identifier makes the send malformed",
		Cite: "an envelope does not match the CDDL rule (for example a recipient device identifier of 0, or a token that is not 32 bytes): malformed (1)",
		run:  test7_12_7_MalformedEnvelope},
	{ID: "7.12/8", Level: MUST, Summary: "results come one per envelope, in request order",
		Cite: "Otherwise the server MUST answer with one result per envelope, in the same order",
		run:  test7_12_8_ResultsInOrder},
	{ID: "7.12/9", Level: MUST, Summary: "key 5 of an envelope in a send is ignored: received-at is the server's time",
		Cite: "Envelope key 5, if present, is ignored.",
		run:  test7_12_9_Key5Ignored},
	{ID: "7.12/10", Level: MUST, Summary: "a delivery carries nothing about the sender: only keys 1 to 4, and not the sender's address",
		Cite: "The server MUST NOT store, log or otherwise keep any association between the envelope and the connection, device or account that submitted it",
		run:  test7_12_10_NothingAboutSender},
	{ID: "7.12/11", Level: MUST, Summary: "a closed request lane is request_lane_closed also when the request budget is spent (step 4 before step 5)",
		Cite: "Otherwise, without a token, an open request lane, else request_lane_closed (15).",
		run:  test7_12_11_LaneClosedBeforeBudget},
	{ID: "7.13/1", Level: MUST, Summary: "a mailbox holding the announced number of envelopes refuses one more with mailbox_full",
		Cite: "Limits per device, which a server MUST enforce: ... Envelopes waiting | 10,000",
		run:  test7_13_1_MailboxFull},
	{ID: "7.13/2", Level: MUST, Summary: "the announced mailbox retention is at most the 30 days of the protocol",
		Cite: "a server MAY keep envelopes for a shorter time, announcing it in server-info (limits key 7), and MUST NOT keep them longer than 30 days",
		run:  test7_13_2_RetentionAtMost30Days},
	{ID: "7.14/1", Level: MUST, Summary: "on an empty mailbox caught-up is the first push frame",
		Cite: "caught-up MUST be sent exactly once per push stream, also when the mailbox was empty (it is then the first frame)",
		run:  test7_14_1_CaughtUpFirstWhenEmpty},
	{ID: "7.14/2", Level: MUST, Summary: "waiting envelopes are pushed before caught-up, in order of acceptance",
		Cite: "pushes every envelope waiting in the device's mailbox, in the order in which the server accepted them (for the envelopes of one send, their order in the request)",
		run:  test7_14_2_WaitingPushedInOrder},
	{ID: "7.14/3", Level: MUST, Summary: "an envelope accepted while the recipient is connected is pushed to it",
		Cite: "then pushes each new envelope for the device, in order of acceptance, after it is durably stored and without undue delay",
		run:  test7_14_3_NewEnvelopePushed},
	{ID: "7.14/4", Level: MUST, Summary: "an envelope is pushed at most once on a connection, and again on the next connection until acknowledged",
		Cite: "Each envelope MUST be pushed at most once on a given connection. An envelope that is not acknowledged stays in the mailbox and is pushed again on the device's next authenticated connection",
		run:  test7_14_4_PushedOncePerConnection},
	{ID: "7.14/5", Level: MUST, Summary: "100 waiting envelopes are pushed in deliver frames of 1 to 64 deliveries",
		Cite: "A deliver frame holds 1 to 64 deliveries and MUST fit in the frame limit (1 MiB)",
		run:  test7_14_5_DeliverFrameSizes},
	{ID: "7.14/6", Level: MUST, Summary: "received-at is the server's time of acceptance and the lane is the admission lane",
		Cite: "Delivery key 3 MUST be the received-at time; key 4 the lane: 0 token lane, 1 request lane",
		run:  test7_14_6_ReceivedAtAndLane},
	{ID: "7.14/7", Level: MUST, Summary: "caught-up comes once per push stream: not again after waiting and new envelopes are pushed",
		Cite: "caught-up MUST be sent exactly once per push stream, also when the mailbox was empty (it is then the first frame)",
		run:  test7_14_7_CaughtUpOnce},
	{ID: "7.14/8", Level: MUST, Summary: "a delivery of a relayed envelope carries the relaying domain in key 5; one of a local send does not",
		Cite: "A server MUST include it for every relayed envelope and MUST NOT include it for an envelope of a local send or a notice.",
		run:  test7_14_8_OriginOfRelayed, Needs: []Need{NeedPeer}},
	{ID: "7.15/1", Level: MUST, Summary: "an acknowledged envelope is not delivered again",
		Cite: "The server MUST delete the listed envelopes ... from the authenticated device's mailbox and answer ack-ok.",
		run:  test7_15_1_AckedNotDelivered},
	{ID: "7.15/2", Level: MUST, Summary: "acknowledging unknown or already acknowledged identifiers is answered ack-ok",
		Cite: "Identifiers that are not waiting in that mailbox (unknown, already acknowledged, expired, or waiting in another mailbox) MUST be ignored.",
		run:  test7_15_2_AckUnknownIDs},
	{ID: "7.15/3", Level: MUST, Summary: "a device cannot acknowledge another mailbox's envelope",
		Cite: "The server MUST delete the listed envelopes ... from the authenticated device's mailbox",
		run:  test7_15_3_AckOtherMailbox},
	{ID: "7.15/4", Level: MUST, Summary: "an ack deletes from the acknowledging device's mailbox only, not from the account's other devices",
		Cite: "Identifiers that are not waiting in that mailbox (unknown, already acknowledged, expired, or waiting in another mailbox) MUST be ignored.",
		run:  test7_15_4_AckOwnDeviceOnly},
	{ID: "7.15/5", Level: MUST, Summary: "a notice acknowledged by its delivery identifier is not delivered again",
		Cite: "The server MUST delete the listed envelopes, and the notices with the listed delivery identifiers (section 7.18), from the authenticated device's mailbox and answer ack-ok.",
		run:  test7_15_5_NoticeAcked, Needs: []Need{NeedPeer}},
}

// test7_3_1_DuplicateInOneSend checks 7.3/1: an identifier repeated in one send is answered 0 twice and stored once.
func test7_3_1_DuplicateInOneSend(t *T) {
	as := t.accounts(2)
	e := envelopeFor(as[1])
	got := countIDs(t.sendAndCollect(as[0], as[1], e, e))
	if got[string(e.ID)] != 1 {
		t.Fatalf("delivered %d times", got[string(e.ID)])
	}
}

// test7_3_2_DuplicateRetriedSend checks 7.3/2: a retried send with the same identifier is answered 0 and stored once.
func test7_3_2_DuplicateRetriedSend(t *T) {
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
}

// test7_3_3_DuplicatesPerMailbox checks 7.3/3: duplicates are per mailbox: one identifier to two mailboxes is stored in both.
func test7_3_3_DuplicatesPerMailbox(t *T) {
	as := t.accountsFirst(2, twoDevices)
	r := as[0]
	l := t.extraDevice(r, t.connect(r))
	e1, e2, e3 := envelopeFor(r), envelopeFor(r), envelopeFor(as[1])
	e2.To.Device = l.id
	e2.ID, e3.ID = e1.ID, e1.ID
	t.sendOK(t.connect(as[1]), e1, e2, e3) // two devices of one account, and another account
	t.waitFor(t.connect(r), 5*time.Second, e1.ID)
	t.waitFor(t.connect(r.as(l)), 5*time.Second, e1.ID)
	t.waitFor(t.connect(as[1]), 5*time.Second, e1.ID)
}

// test7_9_1_TokenLane checks 7.9/1: an envelope with a token matching a verifier is admitted in the token lane (0).
func test7_9_1_TokenLane(t *T) {
	as := t.accounts(2)
	e := envelopeFor(as[1])
	t.sendOK(t.connect(as[0]), e)
	d := t.waitFor(t.connect(as[1]), 5*time.Second, e.ID)[0]
	if d.Lane != wire.LaneToken {
		t.Fatalf("lane %d", d.Lane)
	}
}

// test7_9_2_TokenMatchesNoVerifier checks 7.9/2: a token matching no verifier is token_invalid, not moved to the open request lane.
func test7_9_2_TokenMatchesNoVerifier(t *T) {
	as := t.accounts(2)
	e := envelopeFor(as[1])
	rand.Read(e.Token)
	t.sendCode(t.connect(as[0]), e, wire.CodeTokenInvalid)
	if t.pushedWithin(t.connect(as[1]), 300*time.Millisecond, e.ID) {
		t.Fatalf("the refused envelope was delivered")
	}
}

// test7_10_1_PolicyReplaced checks 7.10/1: set-delivery-policy replaces the whole policy: a removed verifier's token is token_invalid.
func test7_10_1_PolicyReplaced(t *T) {
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
}

// test7_10_2_Verifiers65 checks 7.10/2: 65 verifiers are limit_exceeded and the policy is unchanged.
func test7_10_2_Verifiers65(t *T) {
	as := t.accountsWhere(2, unspent)
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
}

// test7_10_3_Verifier31Bytes checks 7.10/3: a verifier that is not 32 bytes is malformed.
func test7_10_3_Verifier31Bytes(t *T) {
	t.expectErr(t.connect(t.account()), &wire.SetDeliveryPolicy{Verifiers: [][]byte{make([]byte, 31)}, RequestLaneOpen: true}, wire.CodeMalformed)
}

// test7_10_4_Verifiers64WithDuplicates checks 7.10/4: 64 verifiers, duplicates included, are accepted and each admits its token.
func test7_10_4_Verifiers64WithDuplicates(t *T) {
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
}

// test7_11_1_RequestLaneClosed checks 7.11/1: without a token, a closed request lane is request_lane_closed.
func test7_11_1_RequestLaneClosed(t *T) {
	as := t.accounts(2)
	t.do(t.connect(as[1]), &wire.SetDeliveryPolicy{Verifiers: [][]byte{as[1].verifier()}, RequestLaneOpen: false}, nil)
	e := envelopeFor(as[1])
	e.Token = nil
	c := t.connect(as[0])
	t.sendCode(c, e, wire.CodeRequestLaneClosed)
	t.sendCode(c, envelopeFor(as[1]), wire.CodeOK)
}

// test7_11_2_RequestLaneOpen checks 7.11/2: without a token, an open request lane admits the envelope in lane 1.
func test7_11_2_RequestLaneOpen(t *T) {
	as := t.accountsWhere(2, unspent)
	e := envelopeFor(as[1])
	e.Token = nil
	t.sendOK(t.connect(as[0]), e)
	if d := t.waitFor(t.connect(as[1]), 5*time.Second, e.ID)[0]; d.Lane != wire.LaneRequest {
		t.Fatalf("lane %d", d.Lane)
	}
}

// test7_11_3_RequestBudget checks 7.11/3: the request budget of an account admits at most 20 envelopes at once, then rate_limited.
func test7_11_3_RequestBudget(t *T) {
	as := t.accountsWhere(2, unspent)
	r, s := as[0], as[1] // accounts with a linked device come first: spend theirs
	r.spent = true
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
}

// test7_12_1_DeliveredUnchanged checks 7.12/1: an envelope answered 0 is delivered to its recipient with the sealed bytes unchanged.
func test7_12_1_DeliveredUnchanged(t *T) {
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
}

// test7_12_2_UnknownDevice checks 7.12/2: an unknown device or account is unknown_device.
func test7_12_2_UnknownDevice(t *T) {
	as := t.accounts(2)
	c := t.connect(as[0])
	e := envelopeFor(as[1])
	e.To.Device = 4000000000
	t.sendCode(c, e, wire.CodeUnknownDevice)
	e = envelopeFor(as[1])
	e.To.Address = t.env.newAddress()
	t.sendCode(c, e, wire.CodeUnknownDevice)
}

// test7_12_3_BadPadding checks 7.12/3: a sealed length that is not a bucket size is bad_padding.
func test7_12_3_BadPadding(t *T) {
	as := t.accounts(2)
	c := t.connect(as[0])
	for _, n := range []int{1391, 1393, 1, 66671} {
		e := envelopeFor(as[1])
		e.Sealed = make([]byte, n)
		if r := t.send(c, e)[0]; r != wire.CodeBadPadding {
			t.Fatalf("sealed length %d: result %s, want bad_padding", n, r)
		}
	}
}

// test7_12_4_EnvelopeTooLarge checks 7.12/4: a sealed value longer than the largest bucket is envelope_too_large.
func test7_12_4_EnvelopeTooLarge(t *T) {
	as := t.accounts(2)
	e := envelopeFor(as[1])
	e.Sealed = make([]byte, wire.XWingEncLen+131072+wire.AEADTagLen)
	t.sendCode(t.connect(as[0]), e, wire.CodeEnvelopeTooLarge)
}

// test7_12_5_EveryBucket checks 7.12/5: every bucket size from 256 to 65,536 bytes is accepted.
func test7_12_5_EveryBucket(t *T) {
	as := t.accounts(2)
	var envs []wire.Envelope
	for b := 256; b <= 65536; b *= 2 {
		e := envelopeFor(as[1])
		e.Sealed = sealedOf(b)
		envs = append(envs, e)
	}
	t.sendOK(t.connect(as[0]), envs...)
}

// test7_12_6_SendCountBounds checks 7.12/6: a send with 0 or 257 envelopes is limit_exceeded.
func test7_12_6_SendCountBounds(t *T) {
	as := t.accounts(2)
	c := t.connect(as[0])
	t.expectErr(c, &wire.Send{Envelopes: []wire.Envelope{}}, wire.CodeLimitExceeded)
	envs := make([]wire.Envelope, 257)
	for i := range envs {
		envs[i] = envelopeFor(as[1])
	}
	t.expectErr(c, &wire.Send{Envelopes: envs}, wire.CodeLimitExceeded)
}

// test7_12_7_MalformedEnvelope checks 7.12/7: an envelope to device 0, with a 31-byte token or a 15-byte identifier makes the send malformed.
func test7_12_7_MalformedEnvelope(t *T) {
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
}

// test7_12_8_ResultsInOrder checks 7.12/8: results come one per envelope, in request order.
func test7_12_8_ResultsInOrder(t *T) {
	as := t.accounts(2)
	ok1, bad, ok2 := envelopeFor(as[1]), envelopeFor(as[1]), envelopeFor(as[1])
	bad.Sealed = bad.Sealed[:1000]
	unknown := envelopeFor(as[1])
	unknown.To.Device = 4000000000
	r := t.send(t.connect(as[0]), ok1, bad, unknown, ok2)
	if r[0] != 0 || r[1] != wire.CodeBadPadding || r[2] != wire.CodeUnknownDevice || r[3] != 0 {
		t.Fatalf("results %v, want [0 bad_padding unknown_device 0]", r)
	}
}

// test7_12_9_Key5Ignored checks 7.12/9: key 5 of an envelope in a send is ignored: received-at is the server's time.
func test7_12_9_Key5Ignored(t *T) {
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
}

// test7_12_10_NothingAboutSender checks 7.12/10: a delivery carries nothing about the sender: only keys 1 to 4, and not the sender's address.
func test7_12_10_NothingAboutSender(t *T) {
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
}

// test7_13_1_MailboxFull checks 7.13/1: a mailbox holding the announced number of envelopes refuses one more with mailbox_full.
func test7_13_1_MailboxFull(t *T) {
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
}

// test7_14_1_CaughtUpFirstWhenEmpty checks 7.14/1: on an empty mailbox caught-up is the first push frame.
func test7_14_1_CaughtUpFirstWhenEmpty(t *T) {
	c := t.connect(t.account())
	ctx, cancel := context.WithTimeout(t.ctx, pushWait)
	defer cancel()
	it, err := c.pushes().next(ctx)
	t.must(err, "push")
	if _, ok := it.msg.(*wire.CaughtUp); !ok {
		t.Fatalf("first push frame %T", it.msg)
	}
}

// test7_14_2_WaitingPushedInOrder checks 7.14/2: waiting envelopes are pushed before caught-up, in order of acceptance.
func test7_14_2_WaitingPushedInOrder(t *T) {
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
}

// test7_14_3_NewEnvelopePushed checks 7.14/3: an envelope accepted while the recipient is connected is pushed to it.
func test7_14_3_NewEnvelopePushed(t *T) {
	as := t.accounts(2)
	r := t.connect(as[1])
	t.untilCaughtUp(r)
	e := envelopeFor(as[1])
	t.sendOK(t.connect(as[0]), e)
	t.waitFor(r, 5*time.Second, e.ID)
}

// test7_14_4_PushedOncePerConnection checks 7.14/4: an envelope is pushed at most once on a connection, and again on the next connection until acknowledged.
func test7_14_4_PushedOncePerConnection(t *T) {
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
}

// test7_14_5_DeliverFrameSizes checks 7.14/5: 100 waiting envelopes are pushed in deliver frames of 1 to 64 deliveries.
func test7_14_5_DeliverFrameSizes(t *T) {
	as := t.accounts(2)
	envs := make([]wire.Envelope, 100)
	for i := range envs {
		envs[i] = envelopeFor(as[1])
	}
	ds := t.sendAndCollect(as[0], as[1], envs...) // the push decoder checks 1 to 64
	if len(ds) != 100 {
		t.Fatalf("%d deliveries", len(ds))
	}
}

// test7_14_6_ReceivedAtAndLane checks 7.14/6: received-at is the server's time of acceptance and the lane is the admission lane.
func test7_14_6_ReceivedAtAndLane(t *T) {
	as := t.accountsWhere(2, unspent)
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
}

// test7_14_8_OriginOfRelayed checks 7.14/8: a delivery of a relayed envelope carries the relaying domain in key 5; one of a local send does not.
func test7_14_8_OriginOfRelayed(t *T) {
	as := t.accounts(2)
	relayed, local := envelopeFor(as[1]), envelopeFor(as[1])
	if r := t.relay(t.fedConn(t.env.peer.c.Domain), relayed); r[0] != wire.CodeOK {
		t.Fatalf("relay result %s", r[0])
	}
	t.sendOK(t.connect(as[0]), local)
	for _, d := range t.waitFor(t.connect(as[1]), 5*time.Second, relayed.ID, local.ID) {
		switch {
		case bytes.Equal(d.ID, relayed.ID) && d.Origin != t.env.peer.c.Domain:
			t.Errorf("the relayed envelope's delivery has origin (key 5) %q, want the relaying domain %q", d.Origin, t.env.peer.c.Domain)
		case bytes.Equal(d.ID, local.ID) && d.Origin != "":
			t.Errorf("the delivery of a local send has origin (key 5) %q, want none", d.Origin)
		}
	}
}

// test7_15_1_AckedNotDelivered checks 7.15/1: an acknowledged envelope is not delivered again.
func test7_15_1_AckedNotDelivered(t *T) {
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
}

// test7_15_2_AckUnknownIDs checks 7.15/2: acknowledging unknown or already acknowledged identifiers is answered ack-ok.
func test7_15_2_AckUnknownIDs(t *T) {
	c := t.connect(t.account())
	ids := [][]byte{randomID(), randomID()}
	t.do(c, &wire.Ack{IDs: ids}, nil)
	t.do(c, &wire.Ack{IDs: ids}, nil)
}

// test7_15_3_AckOtherMailbox checks 7.15/3: a device cannot acknowledge another mailbox's envelope.
func test7_15_3_AckOtherMailbox(t *T) {
	as := t.accounts(2)
	e := envelopeFor(as[1])
	c := t.connect(as[0])
	t.sendOK(c, e)
	t.do(c, &wire.Ack{IDs: [][]byte{e.ID}}, nil)
	if n := countIDs(t.untilCaughtUp(t.connect(as[1])))[string(e.ID)]; n != 1 {
		t.Fatalf("delivered %d times after another device acknowledged it", n)
	}
}

// pushedWithin reports whether an envelope with id is pushed on c within d
// (a bounded wait, to observe that something does not happen).
func (t *T) pushedWithin(c *conn, d time.Duration, id []byte) bool {
	ctx, cancel := context.WithTimeout(t.ctx, d)
	defer cancel()
	for {
		it, err := c.pushes().next(ctx)
		if err != nil {
			return false
		}
		if m, ok := it.msg.(*wire.Deliver); ok {
			for _, x := range m.Deliveries {
				if bytes.Equal(x.ID, id) {
					return true
				}
			}
		}
	}
}

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

// test7_11_4_BudgetPerAccount checks 7.11/4: the request budget is the account's: spent on one device, it refuses the account's other device.
func test7_11_4_BudgetPerAccount(t *T) {
	as := t.accountsFirst(2, twoDevices)
	r, s := as[0], as[1]
	l := t.extraDevice(r, t.connect(r))
	c := t.connect(s)
	t.spendBudget(c, r)
	e := envelopeFor(r)
	e.To.Device, e.Token = l.id, nil
	t.sendCode(c, e, wire.CodeRateLimited)
}

// test7_12_11_LaneClosedBeforeBudget checks 7.12/11: a closed request lane is request_lane_closed also when the request budget is spent (step 4 before step 5).
func test7_12_11_LaneClosedBeforeBudget(t *T) {
	as := t.accounts(2)
	r := as[0] // accounts with a linked device come first: spend theirs
	c := t.connect(as[1])
	t.spendBudget(c, r)
	t.do(t.connect(r), &wire.SetDeliveryPolicy{Verifiers: [][]byte{r.verifier()}, RequestLaneOpen: false}, nil)
	e := envelopeFor(r)
	e.Token = nil
	t.sendCode(c, e, wire.CodeRequestLaneClosed)
}

// spendBudget sends request-lane envelopes to r's first device on c until
// the budget refuses one, and marks r's budget spent.
func (t *T) spendBudget(c *conn, r *account) {
	r.spent = true
	envs := make([]wire.Envelope, wire.RequestLaneBurst+1)
	for i := range envs {
		envs[i] = envelopeFor(r)
		envs[i].Token = nil
	}
	res := t.send(c, envs...)
	for i, x := range res {
		switch x {
		case wire.CodeOK:
		case wire.CodeRateLimited:
			return
		default:
			t.Fatalf("request-lane envelope %d: result %s", i, x)
		}
	}
	t.Fatalf("%d request-lane envelopes admitted at once, want at most %d", len(envs), wire.RequestLaneBurst)
}

// test7_13_2_RetentionAtMost30Days checks 7.13/2: the announced mailbox retention is at most the 30 days of the protocol.
func test7_13_2_RetentionAtMost30Days(t *T) {
	var info wire.ServerInfoOK
	t.do(t.dial(), &wire.ServerInfo{}, &info)
	max := uint64(wire.Retention / time.Second)
	if r := info.Limits.RetentionSeconds; r == 0 || r > max {
		t.Fatalf("server-info announces a retention of %d s, want 1 to %d", r, max)
	}
}

// test7_14_7_CaughtUpOnce checks 7.14/7: caught-up comes once per push stream: not again after waiting and new envelopes are pushed.
func test7_14_7_CaughtUpOnce(t *T) {
	as := t.accounts(2)
	s := t.connect(as[0])
	t.sendOK(s, envelopeFor(as[1]))
	r := t.connect(as[1])
	t.untilCaughtUp(r)
	last := envelopeFor(as[1])
	t.sendOK(s, envelopeFor(as[1]), last)
	ctx, cancel := context.WithTimeout(t.ctx, pushWait)
	defer cancel()
	for {
		it, err := r.pushes().next(ctx)
		t.must(err, "push")
		switch m := it.msg.(type) {
		case *wire.CaughtUp:
			t.Fatalf("a second caught-up on one push stream")
		case *wire.Deliver:
			if countIDs(m.Deliveries)[string(last.ID)] > 0 {
				return
			}
		}
	}
}

// test7_15_4_AckOwnDeviceOnly checks 7.15/4: an ack deletes from the acknowledging device's mailbox only, not from the account's other devices.
func test7_15_4_AckOwnDeviceOnly(t *T) {
	as := t.accountsFirst(2, twoDevices)
	r, s := as[0], as[1]
	c1 := t.connect(r)
	l := t.extraDevice(r, c1)
	both, second, only := envelopeFor(r), envelopeFor(r), envelopeFor(r)
	second.ID = both.ID
	second.To.Device, only.To.Device = l.id, l.id
	t.sendOK(t.connect(s), both, second, only)
	t.waitFor(c1, 5*time.Second, both.ID)
	t.do(c1, &wire.Ack{IDs: [][]byte{both.ID, only.ID}}, nil)
	n := countIDs(t.untilCaughtUp(t.connect(r.as(l))))
	if n[string(both.ID)] != 1 || n[string(only.ID)] != 1 {
		t.Fatalf("device %d acknowledged; device %d then got the shared identifier %d times and its own envelope %d times, want 1 and 1",
			r.id, l.id, n[string(both.ID)], n[string(only.ID)])
	}
}

// test7_3_4_StoredAgainAfterAck checks 7.3/4: an identifier sent again after the recipient acknowledged it is stored and delivered again.
func test7_3_4_StoredAgainAfterAck(t *T) {
	as := t.accounts(2)
	s := t.connect(as[0])
	e := envelopeFor(as[1])
	t.sendOK(s, e)
	r := t.connect(as[1])
	t.waitFor(r, 5*time.Second, e.ID)
	t.do(r, &wire.Ack{IDs: [][]byte{e.ID}}, nil)
	r.close()
	t.sendOK(s, e)
	if n := countIDs(t.untilCaughtUp(t.connect(as[1])))[string(e.ID)]; n != 1 {
		t.Fatalf("the identifier sent again after its acknowledgement was delivered %d times, want 1", n)
	}
}

// test7_15_5_NoticeAcked checks 7.15/5: a notice acknowledged by its delivery identifier is not delivered again.
func test7_15_5_NoticeAcked(t *T) {
	p := t.usePeer()
	a := t.account()
	e := t.remoteEnvelope()
	p.behave(func(p *peer) { p.onRelay = answerFor(e.ID, wire.CodeUnknownDevice) })
	c := t.connect(a)
	t.untilCaughtUp(c)
	t.sendOK(c, e)
	nid := wire.NoticeID(e.ID, e.To)
	t.waitFor(c, 15*time.Second, nid)
	t.do(c, &wire.Ack{IDs: [][]byte{nid}}, nil)
	c.close()
	if n := countIDs(t.untilCaughtUp(t.connect(a)))[string(nid)]; n != 0 {
		t.Fatalf("the acknowledged notice was delivered again")
	}
}
