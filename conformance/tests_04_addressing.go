package conformance

import (
	"slices"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// addressingTests are the tests of section 4, addressing: addresses in
// normal form.
var addressingTests = []*Test{
	{ID: "4.4/1", Level: MUST, Summary: "a device linked after a removal gets a new identifier, not the removed one",
		Cite: "a server MUST NOT reuse the identifier of a removed device for the same account",
		run:  test4_4_1_RemovedIDNotReused},
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

// test4_4_1_RemovedIDNotReused checks 4.4/1: a device linked after a removal gets a new identifier, not the removed one.
func test4_4_1_RemovedIDNotReused(t *T) {
	a := t.accountsFirst(1, func(a *account) bool { return twoDevices(a) && canLink(1)(a) })[0]
	c := t.connect(a)
	l := t.extraDevice(a, c)
	t.do(c, &wire.RemoveDevice{Device: l.id}, nil)
	a.extra = slices.DeleteFunc(a.extra, func(x linked) bool { return x.id == l.id })
	want := a.maxID + 1
	nc, d, id := t.link(a, c)
	nc.close()
	a.extra = append(a.extra, linked{id: id, dev: d})
	if id <= l.id || id != want {
		t.Fatalf("the device linked after removing device %d got identifier %d, want %d", l.id, id, want)
	}
}
