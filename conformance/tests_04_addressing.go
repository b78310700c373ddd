package conformance

import (
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// addressingTests are the tests of section 4, addressing: addresses in
// normal form.
var addressingTests = []*Test{
	{ID: "4.3/1", Level: MUST, Summary: "an address with uppercase letters is invalid_address",
		Cite: "Every address in a frame MUST be in normal form. Servers do not normalise on behalf of clients: a server MUST reject a request containing an address that is not in normal form or is invalid with invalid_address (6)",
		run:  test4_3_1_UppercaseAddress},
	{ID: "4.3/2", Level: MUST, Summary: "an address with a trailing dot is invalid_address",
		Cite: "a server MUST reject a request containing an address that is not in normal form or is invalid with invalid_address (6)",
		run:  test4_3_2_TrailingDotAddress},
	{ID: "4.3/3", Level: MUST, Summary: "one envelope with an invalid recipient fails the whole send with invalid_address",
		Cite: "a server MUST reject a request containing an address that is not in normal form or is invalid with invalid_address (6). This applies to the whole request, also when the address is the recipient of one envelope of a send",
		run:  test4_3_3_InvalidRecipientFailsSend},
}

// test4_3_1_UppercaseAddress checks 4.3/1: an address with uppercase letters is invalid_address.
func test4_3_1_UppercaseAddress(t *T) {
	t.expectErr(t.connect(t.account()), &wire.GetDevices{Address: "Alice@" + t.env.c.Domain}, wire.CodeInvalidAddress)
}

// test4_3_2_TrailingDotAddress checks 4.3/2: an address with a trailing dot is invalid_address.
func test4_3_2_TrailingDotAddress(t *T) {
	t.expectErr(t.connect(t.account()), &wire.GetDevices{Address: "alice@" + t.env.c.Domain + "."}, wire.CodeInvalidAddress)
}

// test4_3_3_InvalidRecipientFailsSend checks 4.3/3: one envelope with an invalid recipient fails the whole send with invalid_address.
func test4_3_3_InvalidRecipientFailsSend(t *T) {
	a := t.account()
	c := t.connect(a)
	bad := envelopeFor(a)
	bad.To.Address = "al..ice@" + t.env.c.Domain
	good := envelopeFor(a)
	t.expectErr(c, &wire.Send{Envelopes: []wire.Envelope{good, bad}}, wire.CodeInvalidAddress)
	t.untilCaughtUp(c)
	if got := t.pushedWithin(c, 300*time.Millisecond, good.ID); got {
		t.Fatalf("the valid envelope of the refused request was stored")
	}
}
