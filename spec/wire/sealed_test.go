package wire_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

func TestBucket(t *testing.T) {
	tests := []struct{ n, want int }{
		{0, 256}, {1, 256}, {256, 256}, {257, 512}, {512, 512}, {513, 1024},
		{4097, 8192}, {32768, 32768}, {32769, 65536}, {65536, 65536}, {65537, 0}, {1 << 20, 0},
	}
	for _, tt := range tests {
		if got := wire.Bucket(tt.n); got != tt.want {
			t.Errorf("Bucket(%d) = %d, want %d", tt.n, got, tt.want)
		}
	}
}

// The sealed lengths of spec/07-envelopes.md section 7.5.
func TestSealedLenOK(t *testing.T) {
	valid := map[int]bool{1392: true, 1648: true, 2160: true, 3184: true, 5232: true, 9328: true, 17520: true, 33904: true, 66672: true}
	for n := 0; n <= 70000; n++ {
		if got := wire.SealedLenOK(n, wire.XWingEncLen); got != valid[n] {
			t.Fatalf("SealedLenOK(%d) = %v", n, got)
		}
	}
	if !wire.SealedLenOK(32+256+16, 32) || wire.SealedLenOK(32+256+16, 0) || !wire.SealedLenOK(256+16, 0) {
		t.Error("other encapsulation lengths")
	}
	if wire.EncLen(wire.KEMXWing) != 1120 || wire.EncLen(0x20) != 0 {
		t.Error("EncLen")
	}
}

func TestTokenVerifier(t *testing.T) {
	token := repeat(0x7a, 32)
	want := sha256.Sum256(append([]byte("xchat/1 delivery-token\x00"), token...))
	if got := wire.TokenVerifier(token); got != want {
		t.Fatalf("TokenVerifier = %x, want %x", got, want)
	}
	if wire.TokenVerifier(repeat(0x7b, 32)) == want {
		t.Fatal("different tokens, same verifier")
	}
}

func TestContexts(t *testing.T) {
	id := repeat(0x1d, 16)
	to := wire.Mailbox{Address: "bob@example.org", Device: 2}
	mbox := unhex(t, "a2 01 6f 626f62406578616d706c652e6f7267 02 02")
	if !bytes.Equal(to.Encode(), mbox) {
		t.Fatalf("mailbox encoding %x", to.Encode())
	}
	info := wire.EnvelopeInfo(id, to)
	if want := append(append([]byte("xchat/1 envelope\x00"), id...), mbox...); !bytes.Equal(info, want) {
		t.Fatalf("EnvelopeInfo = %x\nwant %x", info, want)
	}
	payload := []byte("payload")
	cert := []byte{0xa2, 0x01, 0x40, 0x02, 0x40} // any encoded certificate, as carried
	msg := wire.SealedMessage(id, to, cert, payload)
	if want := append(append(append(append([]byte("xchat/1 sealed\x00"), id...), mbox...), cert...), payload...); !bytes.Equal(msg, want) {
		t.Fatalf("SealedMessage = %x\nwant %x", msg, want)
	}
	body := []byte{0xa0}
	if got := wire.SenderCertMessage(body); !bytes.Equal(got, []byte("xchat/1 sender-cert\x00\xa0")) {
		t.Fatalf("SenderCertMessage = %q", got)
	}
}

func TestIssueSenderCert(t *testing.T) {
	domain := ed25519.NewKeyFromSeed(repeat(0xd0, 32))
	body := wire.SenderCertBody{Address: "alice@example.org", Device: 1, SigKey: repeat(0x11, 32), Expires: 1767225600}
	b, err := wire.IssueSenderCert(domain, body)
	if err != nil {
		t.Fatal(err)
	}
	var c wire.SenderCert
	if err := wire.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(domain.Public().(ed25519.PublicKey), wire.SenderCertMessage(c.Body), c.Signature) {
		t.Fatal("certificate signature does not verify")
	}
	var got wire.SenderCertBody
	if err := wire.Unmarshal(c.Body, &got); err != nil {
		t.Fatal(err)
	}
	if got.Address != body.Address || got.Device != body.Device || !bytes.Equal(got.SigKey, body.SigKey) || got.Expires != body.Expires {
		t.Fatalf("body %+v", got)
	}
	// The body is the deterministic encoding of the body map.
	if want := mustMarshal(t, m(1, body.Address, 2, 1, 3, body.SigKey, 4, body.Expires)); !bytes.Equal(c.Body, want) {
		t.Fatalf("body %x\nwant %x", c.Body, want)
	}
}
