package conformance

import (
	"encoding/hex"
	"strings"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// hx decodes hexadecimal written with optional spaces.
func hx(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// frameOf is a frame holding payload.
func frameOf(payload []byte) []byte { return wire.AppendFrame(nil, payload) }

// rawCode registers a test that sends the payload hexPayload, in a frame,
// on a fresh unauthenticated connection and expects an error code.
func rawCode(id string, level Level, summary, cite, hexPayload string, code wire.Code) {
	register(id, level, summary, cite, func(t *T) {
		t.expectRaw(t.dial(), frameOf(hx(hexPayload)), code)
	})
}

// rawOK registers a test that expects a success response for a payload.
func rawOK(id string, level Level, summary, cite, hexPayload string) {
	register(id, level, summary, cite, func(t *T) {
		t.expectRawOK(t.dial(), frameOf(hx(hexPayload)))
	})
}

func init() {
	const det = "Every receiver MUST verify it: a frame whose payload is not deterministically encoded is rejected (section 1.8)"
	rawCode("1.5/1", MUST, "an integer not in shortest form (the request type) is noncanonical",
		det, "a1 00 18 03", wire.CodeNoncanonical)
	rawCode("1.5/2", MUST, "map keys out of order are noncanonical",
		det, "a2 01 63 612462 00 04", wire.CodeNoncanonical)
	rawCode("1.5/3", MUST, "an indefinite-length map is noncanonical",
		det, "bf 00 03 ff", wire.CodeNoncanonical)
	rawCode("1.5/4", MUST, "a map with a duplicate key is malformed",
		"Two equal keys in one map are a duplicate key (malformed), not keys out of order", "a2 00 03 00 03", wire.CodeMalformed)
	rawCode("1.5/5", MUST, "a byte-string length not in shortest form, under an unknown key, is noncanonical",
		"These restrictions apply everywhere, including in values of map keys that the receiver does not know.", "a2 00 03 09 58 01 00", wire.CodeNoncanonical)

	const restricted = "On top of deterministic encoding, items MUST NOT contain: tags ...; floating-point numbers ...; undefined or any simple value other than false, true and null"
	rawCode("1.6/1", MUST, "a tag, even under an unknown key, is malformed", restricted, "a2 00 03 09 c1 00", wire.CodeMalformed)
	rawCode("1.6/2", MUST, "a half-precision float is malformed", restricted, "a2 00 03 09 f9 3c00", wire.CodeMalformed)
	rawCode("1.6/3", MUST, "undefined is malformed", restricted, "a2 00 03 09 f7", wire.CodeMalformed)
	rawCode("1.6/4", MUST, "a simple value other than false, true and null is malformed", restricted, "a2 00 03 09 f3", wire.CodeMalformed)
	rawCode("1.6/5", MUST, "a text string that is not valid UTF-8 is malformed",
		"Text strings MUST be valid UTF-8.", "a2 00 03 09 62 c328", wire.CodeMalformed)
	rawCode("1.6/6", MUST, "null in a defined field is malformed",
		"`null` appears in no defined field", "a2 00 04 01 f6", wire.CodeMalformed)

	rawCode("1.7/1", MUST, "arrays nested 9 deep are malformed",
		"Arrays and maps may be nested at most 8 deep.", "a2 00 03 09 81 81 81 81 81 81 81 80", wire.CodeMalformed)
	rawOK("1.7/2", MUST, "arrays nested 8 deep under an unknown key are accepted",
		"Receivers MUST ignore map keys that the rule they are validating against does not define, and accept the item otherwise", "a2 00 03 09 81 81 81 81 81 81 80")
	rawCode("1.7/3", MUST, "an array of 1025 elements is malformed",
		"At most 1024 elements per array.", "a2 00 03 09 99 0401"+strings.Repeat("00", 1025), wire.CodeMalformed)
	var m65 strings.Builder
	m65.WriteString("b8 41 00 03")
	for k := 1; k <= 64; k++ {
		if k < 24 {
			m65.WriteString(hex.EncodeToString([]byte{byte(k), 0}))
		} else {
			m65.WriteString(hex.EncodeToString([]byte{0x18, byte(k), 0}))
		}
	}
	rawCode("1.7/4", MUST, "a map of 65 pairs is malformed", "At most 64 key/value pairs per map.", m65.String(), wire.CodeMalformed)
	rawOK("1.7/5", MUST, "unknown map keys are ignored (server-info with key 99)",
		"Receivers MUST ignore map keys that the rule they are validating against does not define, and accept the item otherwise", "a2 00 03 18 63 63 616263")

	const reject = "A server that receives a request frame that violates sections 1.5 to 1.7 or its CDDL rule MUST reject the request with an error response"
	rawCode("1.8/1", MUST, "a truncated item is malformed", reject, "a2 00 03 09", wire.CodeMalformed)
	rawCode("1.8/2", MUST, "bytes after the item in a frame are malformed", reject, "a1 00 03 00", wire.CodeMalformed)
	rawCode("1.8/3", MUST, "a reserved initial byte is malformed", reject, "a2 00 03 09 1c", wire.CodeMalformed)
	rawCode("1.8/4", MUST, "a field of the wrong type (address as bytes) is malformed", reject, "a2 00 04 01 43 614062", wire.CodeMalformed)
	rawCode("1.8/5", MUST, "an invalid address is invalid_address, even before authentication",
		"an address that fails section 4, in any address position of a request ... gets invalid_address (6)", "a2 00 04 01 64 41406162", wire.CodeInvalidAddress)
	rawCode("1.8/6", MUST, "an ack with no identifiers is limit_exceeded",
		"a request array whose element count is outside the bounds of its request (... identifiers in ack: 1 to 1024 ...) gets limit_exceeded (21)", "a2 00 08 01 80", wire.CodeLimitExceeded)
	register("1.8/7", MUST, "an ack with 1025 identifiers breaks the general array limit: malformed",
		"unless the array also breaks the general limit of 1024 elements (section 1.7), which is malformed", func(t *T) {
			c := t.connect(t.account())
			p := hx("a2 00 08 01 99 0401")
			for range 1025 {
				p = append(p, 0x50)
				p = append(p, randomID()...)
			}
			t.expectRaw(c, frameOf(p), wire.CodeMalformed)
		})

	// 3.1 frames
	const lenRules = "A receiver MUST read and check length before it reads the payload. It MUST reject a length above the maximum as frame_too_large without reading or buffering the payload."
	register("3.1/1", MUST, "a zero length is malformed", "0 | invalid: malformed (1)", func(t *T) {
		t.expectRaw(t.dial(), hx("00"), wire.CodeMalformed)
	})
	register("3.1/2", MUST, "a length above 1 MiB is frame_too_large, answered before the payload arrives", lenRules, func(t *T) {
		// The stream stays open: a server that waits for the payload
		// never answers.
		c := t.dial()
		p, err := c.roundTripFin(t.ctx, hx("80100001 a1 00 03"), false)
		t.must(err, "request")
		t.wantCode(wire.DecodeResponse(p, &wire.OK{}), wire.CodeFrameTooLarge, "length 1,048,577")
	})
	register("3.1/3", MUST, "a too-large length in the 8-byte form is frame_too_large",
		"It checks the value before the form: a too-large length is frame_too_large", func(t *T) {
			t.expectRaw(t.dial(), hx("c000000000100001"), wire.CodeFrameTooLarge)
		})
	register("3.1/4", MUST, "a length in a longer form than necessary is noncanonical",
		"A length in a longer form than necessary is noncanonical (3).", func(t *T) {
			t.expectRaw(t.dial(), hx("4003 a10003"), wire.CodeNoncanonical)
		})
	register("3.1/5", MUST, "a zero length in the 2-byte form is malformed",
		"a zero length is malformed, whatever their form", func(t *T) {
			t.expectRaw(t.dial(), hx("4000"), wire.CodeMalformed)
		})
	register("3.1/6", MUST, "a payload of two CBOR items is malformed",
		"A payload that does not consist of exactly one well-formed CBOR item is malformed", func(t *T) {
			t.expectRaw(t.dial(), frameOf(hx("a10003 a10003")), wire.CodeMalformed)
		})
	register("3.1/7", MUST, "a frame of exactly 1 MiB is read and served", "1 – 1,048,576 | valid", func(t *T) {
		c := t.connect(t.account())
		n := wire.MaxFrame - 9
		p := append(hx("a2 00 03 09 5a"), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		p = append(p, make([]byte, n)...)
		t.expectRawOK(c, frameOf(p))
	})
	register("3.1/8", MUST, "a frame of 1 MiB and one byte is frame_too_large", lenRules, func(t *T) {
		c := t.connect(t.account())
		n := wire.MaxFrame - 8
		p := append(hx("a2 00 03 09 5a"), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
		p = append(p, make([]byte, n)...)
		t.expectRaw(c, frameOf(p), wire.CodeFrameTooLarge)
	})

	// 3.2 request streams
	register("3.2/1", MUST, "a request stream with no bytes is malformed",
		"FIN before a complete frame (including a stream with no bytes at all): malformed", func(t *T) {
			t.expectRaw(t.dial(), nil, wire.CodeMalformed)
		})
	register("3.2/2", MUST, "FIN in the middle of a frame is malformed",
		"FIN before a complete frame ...: malformed", func(t *T) {
			t.expectRaw(t.dial(), hx("05 a100"), wire.CodeMalformed)
		})
	register("3.2/3", MUST, "bytes after the request frame are malformed",
		"any bytes after the first frame: malformed", func(t *T) {
			t.expectRaw(t.dial(), hx("03 a10003 00"), wire.CodeMalformed)
		})
	register("3.2/4", MUST, "a request is not answered before its FIN",
		"The server MUST NOT act on a request before it has received the FIN that follows the frame.", func(t *T) {
			c := t.dial()
			st, err := c.qc.OpenStreamSync(t.ctx)
			t.must(err, "open stream")
			if _, err := st.Write(hx("03 a10003")); err != nil {
				t.Fatalf("write: %v", err)
			}
			// A bounded wait is the only way to observe that nothing
			// happens.
			st.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			var b [1]byte
			if n, _ := st.Read(b[:]); n > 0 {
				t.Fatalf("the server answered before the FIN")
			}
			st.SetReadDeadline(time.Time{})
			st.Close()
			p, err := readResponse(st)
			t.must(err, "response after the FIN")
			var ok wire.ServerInfoOK
			t.must(wire.DecodeResponse(p, &ok), "server-info")
		})

	// 3.3 requests and responses
	rawCode("3.3/1", MUST, "an unknown request type is unknown_request",
		"the type is known, else unknown_request (4)", "a1 00 18 63", wire.CodeUnknownRequest)
	rawCode("3.3/2", MUST, "a push type (32) sent as a request is unknown_request",
		"Types 12–31 are reserved for future requests and types 32–63 for push frames", "a1 00 18 20", wire.CodeUnknownRequest)
	rawCode("3.3/3", MUST, "a request that is not a map is malformed",
		"The payload is a map with an unsigned integer at key 0, else malformed", "82 00 03", wire.CodeMalformed)
	rawCode("3.3/4", MUST, "a request without key 0 is malformed",
		"The payload is a map with an unsigned integer at key 0, else malformed", "a1 01 00", wire.CodeMalformed)
	rawCode("3.3/5", MUST, "a request type given as text is malformed",
		"The payload is a map with an unsigned integer at key 0, else malformed", "a1 00 61 33", wire.CodeMalformed)
	rawCode("3.3/6", MUST, "fed-hello (64) on an xchat/1 connection is unknown_request",
		"Types 64–95 are requests of the server-to-server protocol xchat-fed/1 ...; on an xchat/1 connection they are unknown_request.",
		"a2 00 18 40 01 66 612e74657374", wire.CodeUnknownRequest)

	register("3.3/7", MUST, "an error response is {0: 1, 1: code, 2: message} with a code other than 0 and a message of at most 1024 bytes",
		"Error: {0: 1, 1: code, 2: message, ? 3: retry-after}: key 1, the error code from section 14; never 0; key 2, a human-readable UTF-8 message of at most 1024 bytes", func(t *T) {
			p, err := t.dial().roundTrip(t.ctx, frameOf(hx("a1 00 18 63")))
			t.must(err, "request")
			t.must(wire.CheckDeterministic(p), "error response encoding")
			var m map[uint64]any
			t.must(decodeLoose(p, &m), "error response")
			code, _ := m[1].(uint64)
			msg, ok := m[2].(string)
			if m[0] != uint64(1) || code != uint64(wire.CodeUnknownRequest) || !ok || len(msg) > wire.MaxErrorMessage {
				t.Fatalf("error response %v", m)
			}
			for k := range m {
				if k > 3 {
					t.Fatalf("error response with key %d", k)
				}
			}
		})

	// 3.3.1 processing order
	register("3.3.1/1", MUST, "every request but register, authenticate and server-info is unauthenticated before authentication",
		"a request not allowed before authentication on an unauthenticated connection gets unauthenticated (5)", func(t *T) {
			c := t.dial()
			addr := "nobody@" + t.env.c.Domain
			reqs := []wire.Request{
				&wire.GetDevices{Address: addr},
				&wire.PublishKeyPackages{OneTime: [][]byte{{1}}},
				&wire.ClaimKeyPackage{Address: addr, Device: 1},
				&wire.Send{Envelopes: []wire.Envelope{{ID: randomID(), To: wire.Mailbox{Address: addr, Device: 1}, Sealed: sealedOf(256)}}},
				&wire.Ack{IDs: [][]byte{randomID()}},
				&wire.SetDeliveryPolicy{Verifiers: [][]byte{}, RequestLaneOpen: true},
				&wire.GetSenderCert{},
				&wire.GetDomainKey{Domain: t.env.c.Domain},
				&wire.CreateLink{},
				&wire.RemoveDevice{Device: 1},
			}
			for _, r := range reqs {
				t.expectErr(c, r, wire.CodeUnauthenticated)
			}
		})
	register("3.3.1/2", MUST, "a CDDL failure is reported before the authentication state",
		"A server checks a request in this order and answers with the first failure", func(t *T) {
			t.expectRaw(t.dial(), frameOf(hx("a2 00 07 01 80")), wire.CodeLimitExceeded)
		})
	register("3.3.1/3", MUST, "register on an authenticated connection is already_authenticated",
		"register or authenticate on an authenticated connection gets already_authenticated (24)", func(t *T) {
			a := t.account()
			c := t.connect(a)
			req, err := c.registerReq(a.dev, t.env.newAddress(), nil)
			t.must(err, "exporter")
			t.expectErr(c, req, wire.CodeAlreadyAuthenticated)
		})
	register("3.3.1/4", MUST, "authenticate on an authenticated connection is already_authenticated",
		"register or authenticate on an authenticated connection gets already_authenticated (24)", func(t *T) {
			a := t.account()
			c := t.connect(a)
			req, err := c.authReq(a.dev, a.address, a.id)
			t.must(err, "exporter")
			t.expectErr(c, req, wire.CodeAlreadyAuthenticated)
		})
}
