package conformance

import (
	"encoding/hex"
	"strings"

	"github.com/xchat-im/xchat/spec/wire"
)

// rawRequest is the data of a data-driven test (runner [testRaw]): a
// request payload, written in hexadecimal, and the error code the server
// must answer it with ([wire.CodeOK]: a success response).
type rawRequest struct {
	payload string
	code    wire.Code
}

// testRaw sends the payload of the test's rawRequest, in a frame, on a
// fresh unauthenticated connection and checks the response against its
// code.
func testRaw(t *T) {
	r := t.test.raw
	if r == nil {
		t.Fatalf("test %s has no raw request", t.test.ID)
	}
	if r.code == wire.CodeOK {
		t.expectRawOK(t.dial(), frameOf(hx(r.payload)))
		return
	}
	t.expectRaw(t.dial(), frameOf(hx(r.payload)), r.code)
}

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

// map65Hex is a request map of 65 pairs: server-info (key 0) and keys 1 to
// 64, in hexadecimal.
func map65Hex() string {
	var b strings.Builder
	b.WriteString("b8 41 00 03")
	for k := 1; k <= 64; k++ {
		if k < 24 {
			b.WriteString(hex.EncodeToString([]byte{byte(k), 0}))
		} else {
			b.WriteString(hex.EncodeToString([]byte{0x18, byte(k), 0}))
		}
	}
	return b.String()
}
