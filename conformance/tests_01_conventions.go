package conformance

import (
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
