package vectors_test

import (
	"bytes"
	"crypto/ed25519"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

// checkDerivation recomputes a derived byte string from its inputs.
func checkDerivation(t *testing.T, f *file) {
	same := func(key string, got []byte) {
		t.Helper()
		if want := f.hex(t, key); !bytes.Equal(got, want) {
			t.Fatalf("%s %x, want %x", key, got, want)
		}
	}
	if f.get(t, "operation") == "message-id" {
		id := wire.MessageID(f.hex(t, "mls-message"))
		same("message-id", id[:])
		expectOutcome(t, f, nil)
		return
	}
	addr := f.get(t, "address")
	dev := uint32(f.uint(t, "device"))
	mb := wire.Mailbox{Address: addr, Device: dev}
	signs := func(msg []byte) {
		t.Helper()
		priv := ed25519.NewKeyFromSeed(f.hex(t, "signing-key-seed"))
		same("signature", ed25519.Sign(priv, msg))
	}
	switch op := f.get(t, "operation"); op {
	case "device-auth":
		msg := wire.DeviceAuthMessage(addr, dev, f.hex(t, "exporter"))
		same("message", msg)
		signs(msg)
	case "sender-cert":
		body, err := wire.Marshal(&wire.SenderCertBody{Address: addr, Device: dev, SigKey: f.hex(t, "device-signature-key"), Expires: f.uint(t, "expires")})
		if err != nil {
			t.Fatal(err)
		}
		same("body", body)
		msg := wire.SenderCertMessage(body)
		same("message", msg)
		dom := ed25519.NewKeyFromSeed(f.hex(t, "domain-key-seed"))
		sig := ed25519.Sign(dom, msg)
		same("signature", sig)
		cert, err := wire.Marshal(&wire.SenderCert{Body: body, Signature: sig})
		if err != nil {
			t.Fatal(err)
		}
		same("cert", cert)
	case "envelope-info":
		same("mailbox", mb.Encode())
		same("info", wire.EnvelopeInfo(f.hex(t, "envelope-id"), mb))
	case "sealed":
		msg := wire.SealedMessage(f.hex(t, "envelope-id"), mb, f.hex(t, "sender-cert"), f.hex(t, "payload"))
		same("message", msg)
		signs(msg)
	case "notice-id":
		same("delivery-id", wire.NoticeID(f.hex(t, "envelope-id"), mb))
	case "link-proof":
		same("proof", wire.LinkProof(f.hex(t, "secret"), addr, dev, f.hex(t, "signature-key")))
	default:
		t.Fatalf("unknown operation %q", op)
	}
	expectOutcome(t, f, nil)
}
