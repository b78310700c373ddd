package wire_test

import (
	"bytes"
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"

	"github.com/xchat-im/xchat/spec/wire"
)

// Every fuzz target runs its seeds as an ordinary test under `go test`.

// addSmall adds a seed of at most 512 bytes. The fuzzer minimises every
// new interesting input by trying to remove each of its sub-ranges, which
// takes time quadratic in its length: inputs derived from seeds of a few
// KiB stall fuzzing for the whole minimisation limit (60 s by default).
func addSmall(f *testing.F, b []byte) {
	if len(b) <= 512 {
		f.Add(b)
	}
}

func must(b []byte, err error) []byte {
	if err != nil {
		panic(err)
	}
	return b
}

// protocolError fails unless err is an *wire.Error with one of codes.
func protocolError(t *testing.T, err error, codes ...wire.Code) {
	t.Helper()
	var e *wire.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v (%T) is not a *wire.Error", err, err)
	}
	for _, c := range codes {
		if e.Code == c {
			return
		}
	}
	t.Fatalf("error %v: code %s not in %v", err, e.Code, codes)
}

func FuzzReadFrame(f *testing.F) {
	for _, s := range []string{"", "00", "01a0", "4001a0", "4000", "05a1", "40", "c000000000100001",
		"ffffffffffffffff", "80100000", "03a10003", "0aa2000401636140", "03a1000301a0"} {
		f.Add(unhex(f, s))
	}
	f.Add(wire.AppendFrame(nil, repeat(0x41, 20000)))
	f.Fuzz(func(t *testing.T, b []byte) {
		r := bytes.NewReader(b)
		p, err := wire.ReadFrame(r, 0)
		if err != nil {
			if errors.Is(err, wire.ErrEndOfStream) {
				if len(b) != 0 {
					t.Fatalf("ErrEndOfStream on %d bytes", len(b))
				}
				return
			}
			protocolError(t, err, wire.CodeMalformed, wire.CodeNoncanonical, wire.CodeFrameTooLarge)
			return
		}
		if len(p) == 0 || len(p) > wire.MaxFrame {
			t.Fatalf("payload of %d bytes", len(p))
		}
		// The frame read is exactly the shortest encoding of its payload.
		used := len(b) - r.Len()
		if frame := wire.AppendFrame(nil, p); !bytes.Equal(frame, b[:used]) {
			t.Fatalf("read %x as a frame of %x", b[:used], p)
		}
	})
}

// The reference decoder for FuzzCheckDeterministic: fxamacker's, into any.
var refDecMode = func() cbor.DecMode {
	dm, err := cbor.DecOptions{MaxNestedLevels: 16}.DecMode()
	if err != nil {
		panic(err)
	}
	return dm
}()

var refEncMode = func() cbor.EncMode {
	em, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err)
	}
	return em
}()

// FuzzCheckDeterministic checks that whatever CheckDeterministic accepts
// decodes with fxamacker/cbor into an any and re-encodes, with the core
// deterministic options, to exactly the same bytes.
//
// The one exception is a map key that Go cannot use as a map key (an array
// or a map): such items are deterministic CBOR, and valid for
// CheckDeterministic, but cannot be decoded into map[any]any. Floats,
// undefined, simple values and tags, whose Go round trip is lossy, are
// rejected by CheckDeterministic, so they do not need an exception.
func FuzzCheckDeterministic(f *testing.F) {
	for _, c := range cborCases {
		f.Add(unhex(f, c.hex))
	}
	for _, b := range [][]byte{nest(8, []byte{0x01}), nest(8, []byte{0x80}), nestMaps(8, []byte{0xa0}), mapOf(64), mapOf(65), arrayOf(1024)} {
		f.Add(b)
	}
	f.Add(unhex(f, "a1 81 00 00"))    // array as a map key
	f.Add(unhex(f, "a1 a0 00"))       // map as a map key
	f.Add(unhex(f, "a1 41 00 00"))    // bstr as a map key
	f.Add(unhex(f, "a2 f4 00 f5 00")) // booleans as map keys
	f.Add(unhex(f, "a1 f6 f6"))       // null as a map key
	f.Fuzz(func(t *testing.T, b []byte) {
		err := wire.CheckDeterministic(b)
		if err != nil {
			protocolError(t, err, wire.CodeMalformed, wire.CodeNoncanonical)
			// noncanonical is only for bytes that are not the canonical
			// encoding of what they decode to; an item that re-encodes
			// to itself can only break the restricted data model or a
			// limit, which is malformed.
			var v any
			if refDecMode.Unmarshal(b, &v) == nil {
				if re, err2 := refEncMode.Marshal(v); err2 == nil && bytes.Equal(re, b) && wire.CodeOf(err) != wire.CodeMalformed {
					t.Fatalf("%x re-encodes to itself but was rejected: %v", b, err)
				}
			}
			return
		}
		var v any
		if err := refDecMode.Unmarshal(b, &v); err != nil {
			if strings.Contains(err.Error(), "invalid map key type") {
				return // see above
			}
			t.Fatalf("accepted %x, but fxamacker/cbor fails: %v", b, err)
		}
		re, err := refEncMode.Marshal(v)
		if err != nil {
			t.Fatalf("accepted %x, decoded to %#v, which does not encode: %v", b, v, err)
		}
		if !bytes.Equal(re, b) {
			t.Fatalf("accepted %x, but it re-encodes to %x", b, re)
		}
		// Unmarshal agrees.
		var w any
		if err := wire.Unmarshal(b, &w); err != nil {
			t.Fatalf("CheckDeterministic accepts %x, Unmarshal says %v", b, err)
		}
	})
}

// FuzzDecodeRequest checks that DecodeRequest never panics, fails only
// with protocol errors, and that a decoded request re-encodes (with
// EncodeRequest) to a frame that decodes to the same request. "The same"
// is compared on the deterministic encodings, so that an empty optional
// list read from the wire and the absent list it re-encodes as compare
// equal.
func FuzzDecodeRequest(f *testing.F) {
	// Seeds are kept small: the fuzzer spends long minimising large ones.
	for _, r := range validRequests() {
		frame, err := wire.EncodeRequest(r)
		if err != nil {
			f.Fatal(err)
		}
		addSmall(f, readPayload(f, frame))
	}
	for _, r := range badRequests() {
		if frame, err := wire.EncodeRequest(r.req); err == nil {
			addSmall(f, readPayload(f, frame))
		}
	}
	for _, r := range rawRequests(f) {
		addSmall(f, r.b)
	}
	e := validEnvelope(1)
	e.Sealed = []byte{1}
	f.Add(readPayload(f, must(wire.EncodeRequest(&wire.Send{Envelopes: []wire.Envelope{e, e}}))))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := wire.DecodeRequest(b)
		if err != nil {
			if r != nil {
				t.Fatalf("request and error %v", err)
			}
			protocolError(t, err, wire.CodeMalformed, wire.CodeNoncanonical, wire.CodeUnknownRequest,
				wire.CodeInvalidAddress, wire.CodeLimitExceeded)
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("decoded request does not validate: %v", err)
		}
		frame, err := wire.EncodeRequest(r)
		if err != nil {
			t.Fatalf("decoded request %#v does not encode: %v", r, err)
		}
		p := readPayload(t, frame)
		r2, err := wire.DecodeRequest(p)
		if err != nil {
			t.Fatalf("re-encoded %x: %v", p, err)
		}
		if reflect.TypeOf(r2) != reflect.TypeOf(r) {
			t.Fatalf("%T became %T", r, r2)
		}
		frame2, err := wire.EncodeRequest(r2)
		if err != nil || !bytes.Equal(frame2, frame) {
			t.Fatalf("request changed on the second round trip:\n%x\n%x", frame, frame2)
		}
		if len(p) > len(b) {
			t.Fatalf("re-encoding grew from %d to %d bytes", len(b), len(p))
		}
	})
}

func FuzzDecodePush(f *testing.F) {
	for _, p := range validPushes() {
		frame, err := wire.EncodePush(p)
		if err != nil {
			f.Fatal(err)
		}
		addSmall(f, readPayload(f, frame))
	}
	d := validDelivery(1)
	d.Sealed = []byte{1, 2, 3}
	f.Add(readPayload(f, must(wire.EncodePush(&wire.Deliver{Deliveries: []wire.Delivery{d, d}}))))
	f.Add(mustMarshal(f, m(0, 32, 1, []any{m(1, repeat(1, 16), 2, []byte{1}, 3, 5, 4, 2)})))
	f.Add(mustMarshal(f, m(0, 32, 1, []any{m(1, repeat(1, 16), 2, []byte{1}, 3, 5, 4, 0, 5, "b.example")})))
	f.Add(mustMarshal(f, m(0, 32, 1, []any{m(1, repeat(1, 16), 2, []byte{1}, 3, 5, 4, 0, 5, "B..example")})))
	f.Add(mustMarshal(f, m(0, 34, 1, nil)))
	f.Add(unhex(f, "a1 00 1900 21"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := wire.DecodePush(b)
		if err != nil {
			if p != nil {
				t.Fatalf("push and error %v", err)
			}
			protocolError(t, err, wire.CodeMalformed, wire.CodeNoncanonical)
			return
		}
		switch p := p.(type) {
		case *wire.Deliver:
			frame, err := wire.EncodePush(p)
			if err != nil {
				t.Fatal(err)
			}
			q, err := wire.DecodePush(readPayload(t, frame))
			if err != nil || !reflect.DeepEqual(p, q) {
				t.Fatalf("deliver round trip: %#v, %v\nwant %#v", q, err, p)
			}
		case *wire.CaughtUp:
			if p.Type != wire.TypeCaughtUp {
				t.Fatalf("caught-up of type %d", p.Type)
			}
		case *wire.UnknownPush:
			if p.Type == wire.TypeDeliver || p.Type == wire.TypeCaughtUp {
				t.Fatalf("known type %d as unknown", p.Type)
			}
		default:
			t.Fatalf("DecodePush returned %T", p)
		}
	})
}

func FuzzDecodeResponse(f *testing.F) {
	for _, r := range successResponses() {
		addSmall(f, readPayload(f, encodeSuccess(f, r)))
	}
	k := validKeys()
	k.HPKEKey = []byte{1}
	f.Add(readPayload(f, encodeSuccess(f, &wire.GetDevicesOK{Devices: []wire.DeviceInfo{{ID: 1, Keys: k}}})))
	f.Add(readPayload(f, wire.EncodeError(&wire.Error{Code: wire.CodeRateLimited, Message: "slow", RetryAfter: time.Second})))
	f.Add(readPayload(f, wire.EncodeError(errors.New("x"))))
	f.Add(mustMarshal(f, m(0, 1, 1, 0, 2, "")))
	f.Add(mustMarshal(f, m(0, 1, 1, 5, 2, "", 3, uint64(math.MaxUint64))))
	f.Add(mustMarshal(f, m(0, 2)))
	f.Fuzz(func(t *testing.T, b []byte) {
		// Is b a valid error response?
		var ef wire.ErrorFrame
		isError := wire.Unmarshal(b, &ef) == nil && ef.Type == wire.TypeError &&
			ef.Code != wire.CodeOK && len(ef.Message) <= wire.MaxErrorMessage
		for _, into := range []any{&wire.OK{}, &wire.SendOK{}, &wire.ServerInfoOK{}, &wire.GetDevicesOK{}, &wire.CreateLinkOK{},
			&wire.BlobCreateOK{}, &wire.BlobStatusOK{}, &wire.BlobGetOK{}} {
			err := wire.DecodeResponse(b, into)
			if err == nil {
				if isError {
					t.Fatalf("error response %x decoded as success", b)
				}
				continue
			}
			var e *wire.Error
			if !errors.As(err, &e) {
				t.Fatalf("error %v (%T) is not a *wire.Error", err, err)
			}
			if e.RetryAfter < 0 {
				t.Fatalf("negative retry-after %v", e.RetryAfter)
			}
			if !isError {
				protocolError(t, err, wire.CodeMalformed, wire.CodeNoncanonical)
				continue
			}
			if e.Code != ef.Code || e.Message != ef.Message {
				t.Fatalf("error response %#v decoded as %#v", ef, e)
			}
			// EncodeError reproduces it.
			err2 := wire.DecodeResponse(readPayload(t, wire.EncodeError(e)), into)
			var e2 *wire.Error
			if !errors.As(err2, &e2) || e2.Code != e.Code || e2.Message != e.Message {
				t.Fatalf("error round trip: %#v\nwant %#v", err2, e)
			}
			if e.RetryAfter < math.MaxInt64 && e2.RetryAfter != e.RetryAfter {
				t.Fatalf("retry-after %v became %v", e.RetryAfter, e2.RetryAfter)
			}
		}
	})
}

func FuzzNormalizeAddress(f *testing.F) {
	for _, c := range addressCases {
		f.Add(c.in)
		f.Add(strings.ToUpper(c.in))
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := wire.NormalizeAddress(s)
		if err != nil {
			protocolError(t, err, wire.CodeInvalidAddress)
			if a != "" {
				t.Fatalf("%q and an error", a)
			}
			return
		}
		if err := wire.ValidateAddress(a); err != nil {
			t.Fatalf("NormalizeAddress(%q) = %q, invalid: %v", s, a, err)
		}
		if b, err := wire.NormalizeAddress(a); err != nil || b != a {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, a, b, err)
		}
		if len(a) != len(s) || !strings.EqualFold(a, s) || len(a) < 3 || len(a) > wire.MaxAddress {
			t.Fatalf("NormalizeAddress(%q) = %q", s, a)
		}
		if wire.ValidateAddress(s) == nil && a != s {
			t.Fatalf("valid address %q normalised to %q", s, a)
		}
	})
}
