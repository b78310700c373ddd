package conformance

import (
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// citeLengthRules is the sentence that tests of frame lengths cite.
const citeLengthRules = "A receiver MUST read and check length before it reads the payload. It MUST reject a length above the maximum as frame_too_large without reading or buffering the payload."

// framingTests are the tests of section 3, framing: frame lengths, request
// streams, requests and responses, the processing order.
var framingTests = []*Test{
	{ID: "3.1/1", Level: MUST, Summary: "a zero length is malformed",
		Cite: "Rules for length, which a receiver MUST apply: ... 0 | invalid: malformed (1)",
		run:  test3_1_1_ZeroLength},
	{ID: "3.1/2", Level: MUST, Summary: "a length above 1 MiB is frame_too_large, answered before the payload arrives",
		Cite: citeLengthRules,
		run:  test3_1_2_LengthAbove1MiB},
	{ID: "3.1/3", Level: MUST, Summary: "a too-large length in the 8-byte form is frame_too_large",
		Cite: "It MUST check the value before the form: a too-large length is frame_too_large",
		run:  test3_1_3_TooLarge8ByteForm},
	{ID: "3.1/4", Level: MUST, Summary: "a length in a longer form than necessary is noncanonical",
		Cite: "length MUST be encoded in the shortest form that holds its value",
		run:  test3_1_4_LongerLengthForm},
	{ID: "3.1/5", Level: MUST, Summary: "a zero length in the 2-byte form is malformed",
		Cite: "a zero length is malformed, whatever their form",
		run:  test3_1_5_ZeroLength2ByteForm},
	{ID: "3.1/6", Level: MUST, Summary: "a payload of two CBOR items is malformed",
		Cite: "A payload that does not consist of exactly one well-formed CBOR item MUST be rejected as malformed",
		run:  test3_1_6_TwoItemsInPayload},
	{ID: "3.1/7", Level: MUST, Summary: "a frame of exactly 1 MiB is read and served",
		Cite: "Rules for length, which a receiver MUST apply: ... 1 - 1,048,576 | valid",
		run:  test3_1_7_Frame1MiBServed},
	{ID: "3.1/8", Level: MUST, Summary: "a frame of 1 MiB and one byte is frame_too_large",
		Cite: citeLengthRules,
		run:  test3_1_8_Frame1MiBPlusOne},
	{ID: "3.2/1", Level: MUST, Summary: "a request stream with no bytes is malformed",
		Cite: "FIN before a complete frame (including a stream with no bytes at all): malformed",
		run:  test3_2_1_EmptyStream},
	{ID: "3.2/2", Level: MUST, Summary: "FIN in the middle of a frame is malformed",
		Cite: "FIN before a complete frame ...: malformed",
		run:  test3_2_2_FINInFrame},
	{ID: "3.2/3", Level: MUST, Summary: "bytes after the request frame are malformed",
		Cite: "any bytes after the first frame: malformed",
		run:  test3_2_3_BytesAfterFrame},
	{ID: "3.2/4", Level: MUST, Summary: "a request is not answered before its FIN",
		Cite: "The server MUST NOT act on a request before it has received the FIN that follows the frame.",
		run:  test3_2_4_NoAnswerBeforeFIN},
	{ID: "3.3/1", Level: MUST, Summary: "an unknown request type is unknown_request",
		Cite: "A request MUST be a map whose key 0 holds the request type",
		run:  testRaw, raw: &rawRequest{payload: "a1 00 18 63", code: wire.CodeUnknownRequest}},
	{ID: "3.3/2", Level: MUST, Summary: "a push type (32) sent as a request is unknown_request",
		Cite: "A request MUST be a map whose key 0 holds the request type",
		run:  testRaw, raw: &rawRequest{payload: "a1 00 18 20", code: wire.CodeUnknownRequest}},
	{ID: "3.3/3", Level: MUST, Summary: "a request that is not a map is malformed",
		Cite: "A request MUST be a map whose key 0 holds the request type",
		run:  testRaw, raw: &rawRequest{payload: "82 00 03", code: wire.CodeMalformed}},
	{ID: "3.3/4", Level: MUST, Summary: "a request without key 0 is malformed",
		Cite: "A request MUST be a map whose key 0 holds the request type",
		run:  testRaw, raw: &rawRequest{payload: "a1 01 00", code: wire.CodeMalformed}},
	{ID: "3.3/5", Level: MUST, Summary: "a request type given as text is malformed",
		Cite: "A request MUST be a map whose key 0 holds the request type",
		run:  testRaw, raw: &rawRequest{payload: "a1 00 61 33", code: wire.CodeMalformed}},
	{ID: "3.3/6", Level: MUST, Summary: "fed-hello (64) on an xchat/1 connection is unknown_request",
		Cite: "Types 64-95 are requests of the server-to-server protocol xchat-fed/1 ...; on an xchat/1 connection they MUST get unknown_request.",
		run:  testRaw, raw: &rawRequest{payload: "a2 00 18 40 01 66 612e74657374", code: wire.CodeUnknownRequest}},
	{ID: "3.3/7", Level: MUST, Summary: "an error response is {0: 1, 1: code, 2: message} with a code other than 0 and a message of at most 1024 bytes",
		Cite: "Error: {0: 1, 1: code, 2: message, ? 3: retry-after}: ... key 1, the error code from section 14; never 0; ... key 2, a human-readable UTF-8 message of at most 1024 bytes",
		run:  test3_3_7_ErrorResponseShape},
	{ID: "3.3.1/1", Level: MUST, Summary: "every request but register, authenticate and server-info is unauthenticated before authentication",
		Cite: "a request not allowed before authentication on an unauthenticated connection gets unauthenticated (5)",
		run:  test3_3_1_1_UnauthenticatedRequests},
	{ID: "3.3.1/2", Level: MUST, Summary: "a CDDL failure is reported before the authentication state",
		Cite: "A server MUST check a request in this order and answer with the first failure",
		run:  test3_3_1_2_CDDLBeforeAuthentication},
	{ID: "3.3.1/3", Level: MUST, Summary: "register on an authenticated connection is already_authenticated",
		Cite: "register or authenticate on an authenticated connection gets already_authenticated (24)",
		run:  test3_3_1_3_RegisterWhenAuthenticated},
	{ID: "3.3.1/4", Level: MUST, Summary: "authenticate on an authenticated connection is already_authenticated",
		Cite: "register or authenticate on an authenticated connection gets already_authenticated (24)",
		run:  test3_3_1_4_AuthenticateWhenAuthenticated},
	{ID: "3.3.1/5", Level: MUST, Summary: "on an authenticated connection, a register or authenticate that fails step 4 gets that failure, not already_authenticated",
		Cite: "A server MUST check a request in this order and answer with the first failure",
		run:  test3_3_1_5_SyntaxBeforeAuthenticationState},
	{ID: "3.3.1/6", Level: MUST, Summary: "blob requests outside their CDDL bounds (size 0, part or range of 0 or over 512 KiB, identifier not 16 bytes) are malformed",
		Cite: "The map is valid for the request's CDDL rule, else malformed",
		run:  test3_3_1_6_BlobCDDLBounds},
}

// test3_1_1_ZeroLength checks 3.1/1: a zero length is malformed.
func test3_1_1_ZeroLength(t *T) {
	t.expectRaw(t.dial(), hx("00"), wire.CodeMalformed)
}

// test3_1_2_LengthAbove1MiB checks 3.1/2: a length above 1 MiB is frame_too_large, answered before the payload arrives.
func test3_1_2_LengthAbove1MiB(t *T) {
	// The stream stays open: a server that waits for the payload
	// never answers.
	c := t.dial()
	p, err := c.roundTripFin(t.ctx, hx("80100001 a1 00 03"), false)
	t.must(err, "request")
	t.wantCode(wire.DecodeResponse(p, &wire.OK{}), wire.CodeFrameTooLarge, "length 1,048,577")
}

// test3_1_3_TooLarge8ByteForm checks 3.1/3: a too-large length in the 8-byte form is frame_too_large.
func test3_1_3_TooLarge8ByteForm(t *T) {
	t.expectRaw(t.dial(), hx("c000000000100001"), wire.CodeFrameTooLarge)
}

// test3_1_4_LongerLengthForm checks 3.1/4: a length in a longer form than necessary is noncanonical.
func test3_1_4_LongerLengthForm(t *T) {
	t.expectRaw(t.dial(), hx("4003 a10003"), wire.CodeNoncanonical)
}

// test3_1_5_ZeroLength2ByteForm checks 3.1/5: a zero length in the 2-byte form is malformed.
func test3_1_5_ZeroLength2ByteForm(t *T) {
	t.expectRaw(t.dial(), hx("4000"), wire.CodeMalformed)
}

// test3_1_6_TwoItemsInPayload checks 3.1/6: a payload of two CBOR items is malformed.
func test3_1_6_TwoItemsInPayload(t *T) {
	t.expectRaw(t.dial(), frameOf(hx("a10003 a10003")), wire.CodeMalformed)
}

// test3_1_7_Frame1MiBServed checks 3.1/7: a frame of exactly 1 MiB is read and served.
func test3_1_7_Frame1MiBServed(t *T) {
	c := t.connect(t.account())
	n := wire.MaxFrame - 9
	p := append(hx("a2 00 03 09 5a"), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	p = append(p, make([]byte, n)...)
	t.expectRawOK(c, frameOf(p))
}

// test3_1_8_Frame1MiBPlusOne checks 3.1/8: a frame of 1 MiB and one byte is frame_too_large.
func test3_1_8_Frame1MiBPlusOne(t *T) {
	c := t.connect(t.account())
	n := wire.MaxFrame - 8
	p := append(hx("a2 00 03 09 5a"), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	p = append(p, make([]byte, n)...)
	t.expectRaw(c, frameOf(p), wire.CodeFrameTooLarge)
}

// test3_2_1_EmptyStream checks 3.2/1: a request stream with no bytes is malformed.
func test3_2_1_EmptyStream(t *T) {
	t.expectRaw(t.dial(), nil, wire.CodeMalformed)
}

// test3_2_2_FINInFrame checks 3.2/2: FIN in the middle of a frame is malformed.
func test3_2_2_FINInFrame(t *T) {
	t.expectRaw(t.dial(), hx("05 a100"), wire.CodeMalformed)
}

// test3_2_3_BytesAfterFrame checks 3.2/3: bytes after the request frame are malformed.
func test3_2_3_BytesAfterFrame(t *T) {
	t.expectRaw(t.dial(), hx("03 a10003 00"), wire.CodeMalformed)
}

// test3_2_4_NoAnswerBeforeFIN checks 3.2/4: a request is not answered before its FIN.
func test3_2_4_NoAnswerBeforeFIN(t *T) {
	c := t.dial()
	st, err := c.qc.OpenStreamSync(t.ctx)
	t.must(err, "open stream")
	if _, err := st.Write(hx("03 a10003")); err != nil {
		t.Fatalf("write: %v", err)
	}
	// A bounded wait is the only way to observe that nothing
	// happens.
	st.SetReadDeadline(time.Now().Add(time.Second))
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
}

// test3_3_7_ErrorResponseShape checks 3.3/7: an error response is {0: 1, 1: code, 2: message} with a code other than 0 and a message of at most 1024 bytes.
func test3_3_7_ErrorResponseShape(t *T) {
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
}

// test3_3_1_1_UnauthenticatedRequests checks 3.3.1/1: every request but register, authenticate and server-info is unauthenticated before authentication.
func test3_3_1_1_UnauthenticatedRequests(t *T) {
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
		&wire.BlobCreate{Size: wire.MinBlobSize},
		&wire.BlobPut{ID: randomID(), Index: 0, Data: make([]byte, wire.MinBlobSize)},
		&wire.BlobStatus{ID: randomID()},
		&wire.BlobFinish{ID: randomID()},
		&wire.BlobGet{Domain: t.env.c.Domain, ID: randomID(), Offset: 0, Length: 1},
	}
	for _, r := range reqs {
		t.expectErr(c, r, wire.CodeUnauthenticated)
	}
}

// test3_3_1_2_CDDLBeforeAuthentication checks 3.3.1/2: a CDDL failure is reported before the authentication state.
func test3_3_1_2_CDDLBeforeAuthentication(t *T) {
	t.expectRaw(t.dial(), frameOf(hx("a2 00 07 01 80")), wire.CodeLimitExceeded)
}

// test3_3_1_6_BlobCDDLBounds checks 3.3.1/6: blob requests outside their CDDL bounds (size 0, part or range of 0 or over 512 KiB, identifier not 16 bytes) are malformed.
func test3_3_1_6_BlobCDDLBounds(t *T) {
	c := t.connect(t.account())
	id, short := randomID(), randomID()[:15]
	dom := t.env.c.Domain
	for _, m := range []map[uint64]any{
		{0: uint64(wire.TypeBlobCreate), 1: uint64(0)},
		{0: uint64(wire.TypeBlobPut), 1: id, 2: uint64(0), 3: []byte{}},
		{0: uint64(wire.TypeBlobPut), 1: id, 2: uint64(0), 3: make([]byte, wire.BlobPartSize+1)},
		{0: uint64(wire.TypeBlobPut), 1: short, 2: uint64(0), 3: make([]byte, wire.MinBlobSize)},
		{0: uint64(wire.TypeBlobStatus), 1: short},
		{0: uint64(wire.TypeBlobFinish), 1: append(id, 0)},
		{0: uint64(wire.TypeBlobGet), 1: dom, 2: id, 3: uint64(0), 4: uint64(0)},
		{0: uint64(wire.TypeBlobGet), 1: dom, 2: id, 3: uint64(0), 4: uint64(wire.BlobPartSize + 1)},
		{0: uint64(wire.TypeBlobGet), 1: dom, 2: id, 3: uint64(0), 4: uint64(1<<64 - 1)},
		{0: uint64(wire.TypeBlobGet), 1: "NOT A DOMAIN", 2: short, 3: uint64(0), 4: uint64(1)}, // the CDDL before the domain
	} {
		raw, err := wire.Marshal(m)
		t.must(err, "encode")
		t.expectRaw(c, frameOf(raw), wire.CodeMalformed)
	}
}

// test3_3_1_3_RegisterWhenAuthenticated checks 3.3.1/3: register on an authenticated connection is already_authenticated.
func test3_3_1_3_RegisterWhenAuthenticated(t *T) {
	a := t.account()
	c := t.connect(a)
	req, err := c.registerReq(a.dev, t.env.newAddress(), nil)
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeAlreadyAuthenticated)
}

// test3_3_1_4_AuthenticateWhenAuthenticated checks 3.3.1/4: authenticate on an authenticated connection is already_authenticated.
func test3_3_1_4_AuthenticateWhenAuthenticated(t *T) {
	a := t.account()
	c := t.connect(a)
	req, err := c.authReq(a.dev, a.address, a.id)
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeAlreadyAuthenticated)
}

// test3_3_1_5_SyntaxBeforeAuthenticationState checks 3.3.1/5: on an authenticated connection, a register or authenticate that fails step 4 gets that failure, not already_authenticated.
func test3_3_1_5_SyntaxBeforeAuthenticationState(t *T) {
	a := t.account()
	c := t.connect(a)
	req, err := c.authReq(a.dev, a.address, 0)
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeMalformed) // device 0
	req, err = c.authReq(a.dev, "Upper@"+t.env.c.Domain, a.id)
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeInvalidAddress)
	reg, err := c.registerReq(a.dev, t.env.newAddress(), nil)
	t.must(err, "exporter")
	reg.Keys.KEM = 0x0020
	t.expectErr(c, reg, wire.CodeMalformed)
}
