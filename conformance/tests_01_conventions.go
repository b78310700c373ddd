package conformance

import (
	"math/big"
	"slices"
	"strings"

	"github.com/xchat-im/xchat/spec/wire"
)

// Sentences that several tests of section 1 cite.
const (
	citeDeterministic = "Every receiver MUST verify it: a frame whose payload is not deterministically encoded is rejected (section 1.8)"
	citeRestricted    = "On top of deterministic encoding, items MUST NOT contain: tags ...; floating-point numbers ...; undefined or any simple value other than false, true and null"
	citeReject        = "A server that receives a request frame that violates sections 1.5 to 1.7 or its CDDL rule MUST reject the request with an error response"
)

// conventionsTests are the tests of section 1, conventions: deterministic
// CBOR and its restrictions, as every request frame must follow them.
var conventionsTests = []*Test{
	{ID: "1.5/1", Level: MUST, Summary: "an integer not in shortest form (the request type) is noncanonical",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "a1 00 18 03", code: wire.CodeNoncanonical}},
	{ID: "1.5/2", Level: MUST, Summary: "map keys out of order are noncanonical",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "a2 01 63 612462 00 04", code: wire.CodeNoncanonical}},
	{ID: "1.5/3", Level: MUST, Summary: "an indefinite-length map is noncanonical",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "bf 00 03 ff", code: wire.CodeNoncanonical}},
	{ID: "1.5/4", Level: MUST, Summary: "a map with a duplicate key is malformed",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 00 03", code: wire.CodeMalformed}},
	{ID: "1.5/5", Level: MUST, Summary: "a byte-string length not in shortest form, under an unknown key, is noncanonical",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 58 01 00", code: wire.CodeNoncanonical}},
	{ID: "1.5/6", Level: MUST, Summary: "an integer in the 2-byte form for a value below 24 (the request type) is noncanonical",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "a1 00 19 0003", code: wire.CodeNoncanonical}},
	{ID: "1.5/7", Level: MUST, Summary: "an integer in the 4-byte form for a value below 24 (the request type) is noncanonical",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "a1 00 1a 00000003", code: wire.CodeNoncanonical}},
	{ID: "1.5/8", Level: MUST, Summary: "an integer in the 8-byte form for a value below 24 (the request type) is noncanonical",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "a1 00 1b 0000000000000003", code: wire.CodeNoncanonical}},
	{ID: "1.5/9", Level: MUST, Summary: "an integer in the 8-byte form for a value that fits 4 bytes, under an unknown key, is noncanonical",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 1b 00000000ffffffff", code: wire.CodeNoncanonical}},
	{ID: "1.5/10", Level: MUST, Summary: "an integer that needs the 8-byte form, under an unknown key, is accepted",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 1b 0000000100000000", code: wire.CodeOK}},
	{ID: "1.5/11", Level: MUST, Summary: "a map length not in shortest form is noncanonical",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "b8 01 00 03", code: wire.CodeNoncanonical}},
	{ID: "1.5/12", Level: MUST, Summary: "an array length not in shortest form, under an unknown key, is noncanonical",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 98 01 00", code: wire.CodeNoncanonical}},
	{ID: "1.5/13", Level: MUST, Summary: "a text-string length not in shortest form, under an unknown key, is noncanonical",
		Cite: citeDeterministic,
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 78 03 616263", code: wire.CodeNoncanonical}},
	{ID: "1.6/1", Level: MUST, Summary: "a tag, even under an unknown key, is malformed",
		Cite: "items MUST NOT contain: tags (major type 6), of any number",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 c1 00", code: wire.CodeMalformed}},
	{ID: "1.6/2", Level: MUST, Summary: "a half-precision float is malformed",
		Cite: "items MUST NOT contain: ... floating-point numbers of any width",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 f9 3c00", code: wire.CodeMalformed}},
	{ID: "1.6/3", Level: MUST, Summary: "undefined is malformed",
		Cite: "items MUST NOT contain: ... undefined (0xf7) or any simple value other than false (0xf4), true (0xf5) and null (0xf6)",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 f7", code: wire.CodeMalformed}},
	{ID: "1.6/4", Level: MUST, Summary: "a simple value other than false, true and null is malformed",
		Cite: "items MUST NOT contain: ... undefined (0xf7) or any simple value other than false (0xf4), true (0xf5) and null (0xf6)",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 f3", code: wire.CodeMalformed}},
	{ID: "1.6/5", Level: MUST, Summary: "a text string that is not valid UTF-8 is malformed",
		Cite: "Text strings MUST be valid UTF-8.",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 62 c328", code: wire.CodeMalformed}},
	{ID: "1.6/6", Level: MUST, Summary: "null in a defined field is malformed",
		Cite: "null MUST NOT appear in any defined field",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 04 01 f6", code: wire.CodeMalformed}},
	{ID: "1.7/1", Level: MUST, Summary: "arrays nested 9 deep are malformed",
		Cite: "Arrays and maps MUST be nested at most 8 deep.",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 81 81 81 81 81 81 81 80", code: wire.CodeMalformed}},
	{ID: "1.7/2", Level: MUST, Summary: "arrays nested 8 deep under an unknown key are accepted",
		Cite: "Receivers MUST ignore map keys that the rule they are validating against does not define, and accept the item otherwise",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 81 81 81 81 81 81 80", code: wire.CodeOK}},
	{ID: "1.7/3", Level: MUST, Summary: "an array of 1025 elements is malformed",
		Cite: "An array MUST have at most 1024 elements.",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 99 0401" + strings.Repeat("00", 1025), code: wire.CodeMalformed}},
	{ID: "1.7/4", Level: MUST, Summary: "a map of 65 pairs is malformed",
		Cite: "A map MUST have at most 64 key/value pairs.",
		run:  testRaw, raw: &rawRequest{payload: map65Hex(), code: wire.CodeMalformed}},
	{ID: "1.7/5", Level: MUST, Summary: "unknown map keys are ignored (server-info with key 99)",
		Cite: "Receivers MUST ignore map keys that the rule they are validating against does not define, and accept the item otherwise",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 18 63 63 616263", code: wire.CodeOK}},
	{ID: "1.7/6", Level: MUST, Summary: "a text key \"1\" is not key 1: get-devices with only a text key \"1\" is malformed",
		Cite: "a text key (even \"1\") or a negative key never matches a defined key, so a receiver MUST ignore it like any other unknown key",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 04 61 31 68 7840612e74657374", code: wire.CodeMalformed}},
	{ID: "1.7/7", Level: MUST, Summary: "a negative key is not a defined key: get-devices with only key -2 is malformed",
		Cite: "a text key (even \"1\") or a negative key never matches a defined key, so a receiver MUST ignore it like any other unknown key",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 04 21 68 7840612e74657374", code: wire.CodeMalformed}},
	{ID: "1.7/8", Level: MUST, Summary: "text and negative keys are ignored: server-info with keys \"1\" and -1 is answered",
		Cite: "a text key (even \"1\") or a negative key never matches a defined key, so a receiver MUST ignore it like any other unknown key",
		run:  testRaw, raw: &rawRequest{payload: "a3 00 03 20 00 61 31 00", code: wire.CodeOK}},
	{ID: "1.11/1", Level: MUST, Summary: "an authenticate signature whose S is not reduced (S + L) is auth_failed",
		Cite: "Verifiers MUST reject a signature whose scalar S is not less than the group order.",
		run:  test1_11_1_NonCanonicalS},
	{ID: "1.8/1", Level: MUST, Summary: "a truncated item is malformed",
		Cite: citeReject,
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09", code: wire.CodeMalformed}},
	{ID: "1.8/2", Level: MUST, Summary: "bytes after the item in a frame are malformed",
		Cite: citeReject,
		run:  testRaw, raw: &rawRequest{payload: "a1 00 03 00", code: wire.CodeMalformed}},
	{ID: "1.8/3", Level: MUST, Summary: "a reserved initial byte is malformed",
		Cite: citeReject,
		run:  testRaw, raw: &rawRequest{payload: "a2 00 03 09 1c", code: wire.CodeMalformed}},
	{ID: "1.8/4", Level: MUST, Summary: "a field of the wrong type (address as bytes) is malformed",
		Cite: citeReject,
		run:  testRaw, raw: &rawRequest{payload: "a2 00 04 01 43 614062", code: wire.CodeMalformed}},
	{ID: "1.8/5", Level: MUST, Summary: "an invalid address is invalid_address, even before authentication",
		Cite: "an address that fails section 4, in any address position of a request ... gets invalid_address (6)",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 04 01 64 41406162", code: wire.CodeInvalidAddress}},
	{ID: "1.8/6", Level: MUST, Summary: "an ack with no identifiers is limit_exceeded",
		Cite: "a request array whose element count is outside the bounds of its request (... identifiers in ack: 1 to 1024 ...) gets limit_exceeded (21)",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 08 01 80", code: wire.CodeLimitExceeded}},
	{ID: "1.8/7", Level: MUST, Summary: "an ack with 1025 identifiers breaks the general array limit: malformed",
		Cite: "unless the array also breaks the general limit of 1024 elements (section 1.7), which is malformed",
		run:  test1_8_7_Ack1025IDs},
}

// test1_8_7_Ack1025IDs checks 1.8/7: an ack with 1025 identifiers breaks the general array limit: malformed.
func test1_8_7_Ack1025IDs(t *T) {
	c := t.connect(t.account())
	p := hx("a2 00 08 01 99 0401")
	for range 1025 {
		p = append(p, 0x50)
		p = append(p, randomID()...)
	}
	t.expectRaw(c, frameOf(p), wire.CodeMalformed)
}

// test1_11_1_NonCanonicalS checks 1.11/1: an authenticate signature whose S is not reduced (S + L) is auth_failed.
func test1_11_1_NonCanonicalS(t *T) {
	a := t.account()
	c := t.dial()
	req, err := c.authReq(a.dev, a.address, a.id)
	t.must(err, "exporter")
	bad := *req
	bad.Signature = unreducedS(req.Signature)
	t.expectErr(c, &bad, wire.CodeAuthFailed)
	t.do(c, req, nil) // the same signature with S reduced is good
}

// groupOrder is L, the order of the Ed25519 base point.
var groupOrder, _ = new(big.Int).SetString("7237005577332262213973186563042994240857116359379907606001950938285454250989", 10)

// unreducedS returns sig with its scalar S (the last 32 bytes, little
// endian) replaced by S + L, which fits in 32 bytes since S < L < 2^253.
func unreducedS(sig []byte) []byte {
	le := slices.Clone(sig[32:])
	slices.Reverse(le)
	s := new(big.Int).Add(new(big.Int).SetBytes(le), groupOrder)
	be := s.FillBytes(make([]byte, 32))
	slices.Reverse(be)
	return append(slices.Clone(sig[:32]), be...)
}
