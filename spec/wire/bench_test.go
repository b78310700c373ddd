package wire_test

import (
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

// benchSend is a send request with one envelope whose sealed value is
// about 1.2 KiB (a bucket of 256 would be 1392 bytes; the exact length
// does not matter to the codec).
func benchSend() *wire.Send {
	return &wire.Send{Envelopes: []wire.Envelope{{
		ID:     repeat(0x1d, 16),
		To:     wire.Mailbox{Address: "bob@example.org", Device: 1},
		Token:  repeat(0x70, 32),
		Sealed: repeat(0x5e, 1200),
	}}}
}

func BenchmarkDecodeSend(b *testing.B) {
	frame, err := wire.EncodeRequest(benchSend())
	if err != nil {
		b.Fatal(err)
	}
	p := readPayload(b, frame)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.DecodeRequest(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeSend(b *testing.B) {
	r := benchSend()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.EncodeRequest(r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkCheckDeterministic(b *testing.B) {
	frame, err := wire.EncodeRequest(benchSend())
	if err != nil {
		b.Fatal(err)
	}
	p := readPayload(b, frame)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if err := wire.CheckDeterministic(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodePush(b *testing.B) {
	ds := make([]wire.Delivery, 16)
	for i := range ds {
		ds[i] = validDelivery(byte(i))
	}
	frame, err := wire.EncodePush(&wire.Deliver{Deliveries: ds})
	if err != nil {
		b.Fatal(err)
	}
	p := readPayload(b, frame)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.DecodePush(p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkTokenVerifier(b *testing.B) {
	token := repeat(0x70, 32)
	b.ReportAllocs()
	for b.Loop() {
		_ = wire.TokenVerifier(token)
	}
}
