package wire_test

import (
	"reflect"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

func validDelivery(i byte) wire.Delivery {
	return wire.Delivery{ID: repeat(i, 16), Sealed: repeat(0x5e, 1392), ReceivedAt: 1767225600000 + uint64(i), Lane: i % 2}
}

func validPushes() []any {
	many := make([]wire.Delivery, wire.MaxDeliveriesPerPush)
	for i := range many {
		many[i] = validDelivery(byte(i))
		many[i].Sealed = []byte{byte(i)}
	}
	return []any{
		&wire.Deliver{Deliveries: []wire.Delivery{validDelivery(1)}},
		&wire.Deliver{Deliveries: many},
		&wire.CaughtUp{},
	}
}

func TestPushRoundTrip(t *testing.T) {
	for _, p := range validPushes() {
		frame, err := wire.EncodePush(p)
		if err != nil {
			t.Fatal(err)
		}
		got, err := wire.DecodePush(readPayload(t, frame))
		if err != nil {
			t.Fatalf("%T: %v", p, err)
		}
		if !reflect.DeepEqual(got, p) {
			t.Fatalf("got %#v\nwant %#v", got, p)
		}
	}
	if b, err := wire.EncodePush(&wire.CaughtUp{}); err != nil || string(b) != "\x04\xa1\x00\x18\x21" {
		t.Fatalf("caught-up frame %x, %v", b, err)
	}
}

func TestEncodePushRejectsOtherTypes(t *testing.T) {
	for _, v := range []any{&wire.OK{}, wire.CaughtUp{}, &wire.Send{}, nil} {
		_, err := wire.EncodePush(v)
		wantCode(t, err, wire.CodeInternal)
	}
}

func TestDecodePush(t *testing.T) {
	enc := func(v any) []byte { return mustMarshal(t, v) }
	d := func(kv ...any) map[uint64]any {
		x := m(1, repeat(1, 16), 2, repeat(2, 1392), 3, 1767225600000, 4, 0)
		for k, v := range m(kv...) {
			if v == "DELETE" {
				delete(x, k)
			} else {
				x[k] = v
			}
		}
		return x
	}
	deliveries := func(n int) []any {
		s := make([]any, n)
		for i := range s {
			s[i] = d()
		}
		return s
	}
	tests := []struct {
		name string
		b    []byte
		want wire.Code
	}{
		{"deliver", enc(m(0, 32, 1, []any{d()})), wire.CodeOK},
		{"deliver lane 1", enc(m(0, 32, 1, []any{d(4, 1)})), wire.CodeOK},
		{"deliver 64", enc(m(0, 32, 1, deliveries(64))), wire.CodeOK},
		{"deliver with unknown keys", enc(m(0, 32, 1, []any{d(6, nil)}, 2, "x")), wire.CodeOK},
		{"deliver with an origin", enc(m(0, 32, 1, []any{d(5, "b.example")})), wire.CodeOK},
		{"delivery origin not a domain", enc(m(0, 32, 1, []any{d(5, "B..example")})), wire.CodeMalformed},
		{"delivery origin not text", enc(m(0, 32, 1, []any{d(5, 7)})), wire.CodeMalformed},
		{"caught-up", enc(m(0, 33)), wire.CodeOK},
		{"caught-up with unknown key", enc(m(0, 33, 1, nil)), wire.CodeOK},
		{"deliver none", enc(m(0, 32, 1, []any{})), wire.CodeMalformed},
		{"deliver 65", enc(m(0, 32, 1, deliveries(65))), wire.CodeMalformed},
		{"deliver without list", enc(m(0, 32)), wire.CodeMalformed},
		{"deliver list null", enc(m(0, 32, 1, nil)), wire.CodeMalformed},
		{"delivery null", enc(m(0, 32, 1, []any{nil})), wire.CodeMalformed},
		{"delivery id 15 bytes", enc(m(0, 32, 1, []any{d(1, repeat(1, 15))})), wire.CodeMalformed},
		{"delivery empty sealed", enc(m(0, 32, 1, []any{d(2, []byte{})})), wire.CodeMalformed},
		{"delivery lane 3", enc(m(0, 32, 1, []any{d(4, 3)})), wire.CodeMalformed},
		{"delivery lane 256", enc(m(0, 32, 1, []any{d(4, 256)})), wire.CodeMalformed},
		{"delivery without received-at", enc(m(0, 32, 1, []any{d(3, "DELETE")})), wire.CodeMalformed},
		{"delivery without lane", enc(m(0, 32, 1, []any{d(4, "DELETE")})), wire.CodeMalformed},
		{"delivery received-at null", enc(m(0, 32, 1, []any{d(3, nil)})), wire.CodeMalformed},
		{"delivery received-at negative", enc(m(0, 32, 1, []any{d(3, -1)})), wire.CodeMalformed},
		{"delivery sealed as tstr", enc(m(0, 32, 1, []any{d(2, "x")})), wire.CodeMalformed},
		{"no type", enc(m(1, 1)), wire.CodeMalformed},
		{"not a map", enc([]any{32}), wire.CodeMalformed},
		{"noncanonical", unhex(t, "a1 00 1900 21"), wire.CodeNoncanonical},
		{"float", unhex(t, "a1 00 f9 5000"), wire.CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := wire.DecodePush(tt.b)
			wantCode(t, err, tt.want)
			if (p == nil) == (err == nil) {
				t.Fatalf("push %#v with error %v", p, err)
			}
		})
	}
}

// Push frames of unknown types are well formed and ignored (spec 3.4).
func TestDecodePushUnknownType(t *testing.T) {
	for _, typ := range []uint64{34, 63, 7, 0, 1 << 40} {
		p, err := wire.DecodePush(mustMarshal(t, m(0, typ, 1, []any{"future", nil})))
		u, ok := p.(*wire.UnknownPush)
		if err != nil || !ok || u.Type != typ {
			t.Fatalf("type %d: %#v, %v", typ, p, err)
		}
	}
	// Still checked as CBOR.
	_, err := wire.DecodePush(unhex(t, "a2 00 18 22 01 f7"))
	wantCode(t, err, wire.CodeMalformed)
}
