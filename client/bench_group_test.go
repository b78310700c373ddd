package client

import (
	"crypto/ed25519"
	"crypto/hpke"
	"fmt"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/mls"
	"github.com/xchat-im/xchat/client/seal"
	"github.com/xchat-im/xchat/spec/wire"
)

// BenchmarkGroupMessage100 measures what a sender does for one text to a
// group of 100 members (one device each): encrypt it once with MLS (suite
// 0xF031), then seal the payload for each of the 99 other devices (X-Wing
// HPKE each, on all processors, as the client does). The brief's target
// is 20 ms. Sending is not included.
func BenchmarkGroupMessage100(b *testing.B) {
	const members = 100
	cs := suite()
	_, domainKey, _ := ed25519.GenerateKey(nil)
	var devs []sealTarget
	var bundles []*mls.KeyPackageBundle
	var sender seal.Sender
	for i := 0; i < members; i++ {
		pub, priv, _ := ed25519.GenerateKey(nil)
		mb := wire.Mailbox{Address: fmt.Sprintf("user%d@a.test", i), Device: 1}
		cert, err := wire.IssueSenderCert(domainKey, wire.SenderCertBody{Address: mb.Address, Device: 1, SigKey: pub, Expires: uint64(time.Now().Add(time.Hour).Unix())})
		if err != nil {
			b.Fatal(err)
		}
		kp, err := mls.NewKeyPackage(cs, mls.Credential{Type: mls.CredentialTypeXchat, Identity: cert}, priv.Seed(), mls.XchatKeyPackageOptions())
		if err != nil {
			b.Fatal(err)
		}
		bundles = append(bundles, kp)
		if i == 0 {
			sender = seal.Sender{Cert: cert, SigKey: priv}
			continue
		}
		hk, err := hpke.MLKEM768X25519().GenerateKey()
		if err != nil {
			b.Fatal(err)
		}
		devs = append(devs, sealTarget{To: mb, Keys: wire.DeviceKeys{SigKey: pub, KEM: wire.KEMXWing, HPKEKey: hk.PublicKey().Bytes()}})
	}
	g, err := mls.CreateGroup(cs, make([]byte, 16), bundles[0], mls.Config{ValidateCredential: acceptAnyCredential})
	if err != nil {
		b.Fatal(err)
	}
	var add []mls.KeyPackage
	for _, kp := range bundles[1:] {
		add = append(add, kp.KeyPackage)
	}
	if _, _, err := g.Commit(mls.CommitOptions{Add: add}); err != nil {
		b.Fatal(err)
	}
	text := "a message of ordinary length, about as long as a sentence or two in a chat"
	content, err := wire.Marshal(&wire.Content{Type: wire.ContentText, SentAt: 1, Text: &text})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		msg, err := g.Encrypt(content, nil)
		if err != nil {
			b.Fatal(err)
		}
		payload, err := wire.Marshal(&wire.MLSPayload{Mode: wire.PayloadMLS, Message: msg})
		if err != nil {
			b.Fatal(err)
		}
		if _, err := sealAll(sender, devs, payload); err != nil {
			b.Fatal(err)
		}
	}
}
