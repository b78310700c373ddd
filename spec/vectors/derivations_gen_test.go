package vectors_test

import (
	"crypto/ed25519"
	"strconv"

	"github.com/xchat-im/xchat/spec/wire"
)

// ------------------------------------------------------------ derivations

// derivationVectors are the byte strings that both sides of the protocol
// build from values and then sign, hash or bind (section 1.10): the
// device-authentication signature input (5.4), the sender certificate
// (5.9), the HPKE info of an envelope (7.4), the sender signature input
// (7.6), the delivery identifier of a notice (7.18), the device-link proof
// (9.5) and the identifier of an application message (10.2). Ed25519 is
// deterministic, so the signatures are fixed by the seeds.
func derivationVectors() []*vector {
	seq := func(n int, start byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i)
		}
		return b
	}
	devSeed := seq(32, 0x40)
	dev := ed25519.NewKeyFromSeed(devSeed)
	domSeed := seq(32, 0x80)
	dom := ed25519.NewKeyFromSeed(domSeed)
	exporter := seq(32, 0xa0)
	id := seq(16, 0x10)
	long := "a.b_c-d@" + "chat.example.org"
	var vs []*vector

	for _, c := range []struct {
		desc    string
		address string
		device  uint32
	}{
		{"device-auth input for register (device 0)", "alice@example.org", 0},
		{"device-auth input for device 1", "alice@example.org", 1},
		{"device-auth input for device 2^32-1", long, 4294967295},
		{"device-auth input for device 24", "bob@localhost", 24},
	} {
		msg := wire.DeviceAuthMessage(c.address, c.device, exporter)
		vs = append(vs, newVector("derivations", "5.4", "05-accounts.md", c.desc, "valid").
			add("operation", "device-auth").add("address", c.address).add("device", strconv.FormatUint(uint64(c.device), 10)).
			hex("exporter", exporter).hex("message", msg).
			hex("signing-key-seed", devSeed).hex("signature", ed25519.Sign(dev, msg)))
	}

	for _, c := range []struct {
		desc    string
		address string
		device  uint32
		expires uint64
	}{
		{"sender certificate", "alice@example.org", 1, 1798761600},
		{"sender certificate with a large device and expiry", long, 4294967295, 4102444800},
	} {
		body, err := wire.Marshal(&wire.SenderCertBody{Address: c.address, Device: c.device, SigKey: dev.Public().(ed25519.PublicKey), Expires: c.expires})
		if err != nil {
			panic(err)
		}
		msg := wire.SenderCertMessage(body)
		sig := ed25519.Sign(dom, msg)
		cert, err := wire.Marshal(&wire.SenderCert{Body: body, Signature: sig})
		if err != nil {
			panic(err)
		}
		vs = append(vs, newVector("derivations", "5.9", "05-accounts.md", c.desc, "valid").
			add("operation", "sender-cert").add("address", c.address).add("device", strconv.FormatUint(uint64(c.device), 10)).
			hex("device-signature-key", dev.Public().(ed25519.PublicKey)).add("expires", strconv.FormatUint(c.expires, 10)).
			hex("body", body).hex("message", msg).hex("domain-key-seed", domSeed).hex("signature", sig).hex("cert", cert))
	}

	for _, c := range []struct {
		desc    string
		address string
		device  uint32
	}{
		{"envelope info for device 1", "alice@example.org", 1},
		{"envelope info for device 2^32-1", long, 4294967295},
	} {
		mb := wire.Mailbox{Address: c.address, Device: c.device}
		vs = append(vs, newVector("derivations", "7.4", "07-envelopes.md", c.desc, "valid").
			add("operation", "envelope-info").hex("envelope-id", id).add("address", c.address).
			add("device", strconv.FormatUint(uint64(c.device), 10)).hex("mailbox", mb.Encode()).
			hex("info", wire.EnvelopeInfo(id, mb)))
	}

	payload := seq(40, 0x01)
	// The certificate the signing device carries beside the payload.
	senderCert, err := wire.IssueSenderCert(dom, wire.SenderCertBody{Address: "alice@example.org", Device: 2,
		SigKey: dev.Public().(ed25519.PublicKey), Expires: 1798761600})
	if err != nil {
		panic(err)
	}
	for _, c := range []struct {
		desc    string
		address string
		device  uint32
	}{
		{"sender signature input", "bob@example.org", 3},
		{"sender signature input for a long address", long, 65536},
	} {
		mb := wire.Mailbox{Address: c.address, Device: c.device}
		msg := wire.SealedMessage(id, mb, senderCert, payload)
		vs = append(vs, newVector("derivations", "7.6", "07-envelopes.md", c.desc, "valid").
			add("operation", "sealed").hex("envelope-id", id).add("address", c.address).
			add("device", strconv.FormatUint(uint64(c.device), 10)).hex("sender-cert", senderCert).
			hex("payload", payload).hex("message", msg).
			hex("signing-key-seed", devSeed).hex("signature", ed25519.Sign(dev, msg)))
	}

	for _, c := range []struct {
		desc    string
		address string
		device  uint32
	}{
		{"notice delivery identifier", "carol@c.example", 1},
		{"notice delivery identifier for device 2^32-1", long, 4294967295},
	} {
		mb := wire.Mailbox{Address: c.address, Device: c.device}
		vs = append(vs, newVector("derivations", "7.18", "07-envelopes.md", c.desc, "valid").
			add("operation", "notice-id").hex("envelope-id", id).add("address", c.address).
			add("device", strconv.FormatUint(uint64(c.device), 10)).hex("delivery-id", wire.NoticeID(id, mb)))
	}
	for _, c := range []struct {
		desc    string
		address string
		device  uint32
	}{
		{"link proof of device 2", "alice@example.org", 2},
		{"link proof of device 2^32-1", long, 4294967295},
	} {
		secret := seq(16, 0xc0)
		vs = append(vs, newVector("derivations", "9.5", "09-mls.md", c.desc, "valid").
			add("operation", "link-proof").hex("secret", secret).add("address", c.address).
			add("device", strconv.FormatUint(uint64(c.device), 10)).hex("signature-key", dev.Public().(ed25519.PublicKey)).
			hex("proof", wire.LinkProof(secret, c.address, c.device, dev.Public().(ed25519.PublicKey))))
	}

	for _, c := range []struct {
		desc string
		msg  []byte
	}{
		{"message identifier of a short MLS message", seq(40, 0x00)},
		{"message identifier of a 300-byte MLS message", seq(300, 0x00)},
	} {
		id := wire.MessageID(c.msg)
		vs = append(vs, newVector("derivations", "10.2", "10-content.md", c.desc, "valid").
			add("operation", "message-id").hex("mls-message", c.msg).hex("message-id", id[:]))
	}
	return vs
}
