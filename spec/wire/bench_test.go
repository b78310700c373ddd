package wire_test

import (
	"bytes"
	"fmt"
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

// BenchmarkReadFrame reads one 1.4 KiB frame, as a server reads a send
// request from its stream.
func BenchmarkReadFrame(b *testing.B) {
	frame, err := wire.EncodeRequest(benchSend())
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(frame)))
	b.ReportAllocs()
	var r bytes.Reader
	for b.Loop() {
		r.Reset(frame)
		if _, err := wire.ReadFrame(&r, wire.MaxFrame); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendFrame frames a 1.4 KiB payload into a reused buffer.
func BenchmarkAppendFrame(b *testing.B) {
	p := repeat(0x5e, 1400)
	buf := make([]byte, 0, 2048)
	b.SetBytes(int64(len(p)))
	b.ReportAllocs()
	for b.Loop() {
		buf = wire.AppendFrame(buf[:0], p)
	}
}

// BenchmarkEncodeDeliver encodes the push frame of 1 and of 16 waiting
// envelopes, as a server's pusher does.
func BenchmarkEncodeDeliver(b *testing.B) {
	for _, n := range []int{1, 16} {
		b.Run(fmt.Sprintf("deliveries=%d", n), func(b *testing.B) {
			ds := make([]wire.Delivery, n)
			for i := range ds {
				ds[i] = validDelivery(byte(i))
			}
			d := &wire.Deliver{Deliveries: ds}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := wire.EncodePush(d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkDecodeAck decodes an ack request of 16 ids.
func BenchmarkDecodeAck(b *testing.B) {
	ids := make([][]byte, 16)
	for i := range ids {
		ids[i] = repeat(byte(i), 16)
	}
	frame, err := wire.EncodeRequest(&wire.Ack{IDs: ids})
	if err != nil {
		b.Fatal(err)
	}
	p := readPayload(b, frame)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := wire.DecodeRequest(p); err != nil {
			b.Fatal(err)
		}
	}
}
