package welcome

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
	"github.com/xchat-im/xchat/client/mls/internal/message"
)

type welcomeVector struct {
	CipherSuite uint16   `json:"cipher_suite"`
	InitPriv    hexBytes `json:"init_priv"`
	SignerPub   hexBytes `json:"signer_pub"`
	KeyPackage  hexBytes `json:"key_package"`
	Welcome     hexBytes `json:"welcome"`
}

func decodeMLSMessage(t *testing.T, b []byte, wf message.WireFormat) *message.MLSMessage {
	t.Helper()
	var m message.MLSMessage
	if err := codec.UnmarshalAll(b, &m); err != nil {
		t.Fatalf("decode MLSMessage: %v", err)
	}
	if m.WireFormat != wf {
		t.Fatalf("wire format %d, want %d", m.WireFormat, wf)
	}
	return &m
}

func TestWelcomeVectors(t *testing.T) {
	var vs []welcomeVector
	loadVectors(t, "welcome.json", &vs)
	ran := 0
	for _, v := range vs {
		cs, ok := suiteOrSkip(t, v.CipherSuite)
		if !ok {
			continue
		}
		ran++
		kp := decodeMLSMessage(t, v.KeyPackage, message.WireFormatKeyPackage).KeyPackage
		w := decodeMLSMessage(t, v.Welcome, message.WireFormatWelcome).Welcome
		signer := func(*message.GroupInfo) ([]byte, error) { return v.SignerPub, nil }
		j, err := ProcessWelcome(cs, w, kp, v.InitPriv, signer, nil)
		if err != nil {
			t.Fatalf("suite %d: ProcessWelcome: %v", v.CipherSuite, err)
		}
		if j.GroupInfo.GroupContext.CipherSuite != cs.ID() {
			t.Fatalf("suite %d: group info suite %d", v.CipherSuite, j.GroupInfo.GroupContext.CipherSuite)
		}

		// A wrong signer key is rejected.
		_, otherPub, err := cs.GenerateSignatureKey()
		if err != nil {
			t.Fatal(err)
		}
		bad := func(*message.GroupInfo) ([]byte, error) { return otherPub, nil }
		if _, err := ProcessWelcome(cs, w, kp, v.InitPriv, bad, nil); !errors.Is(err, ciphersuite.ErrSignature) {
			t.Fatalf("suite %d: wrong signer: %v", v.CipherSuite, err)
		}
		// A wrong init key fails to decrypt.
		otherPriv, _, err := cs.GenerateHPKEKey()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ProcessWelcome(cs, w, kp, otherPriv, signer, nil); !errors.Is(err, ciphersuite.ErrDecryption) {
			t.Fatalf("suite %d: wrong init key: %v", v.CipherSuite, err)
		}
		// Another key package has no entry.
		kp2 := *kp
		kp2.Signature = append([]byte{1}, kp.Signature...)
		if _, err := ProcessWelcome(cs, w, &kp2, v.InitPriv, signer, nil); !errors.Is(err, ErrWelcomeNoMatch) {
			t.Fatalf("suite %d: other key package: %v", v.CipherSuite, err)
		}
		// A tampered group info fails to decrypt.
		w2 := *w
		w2.EncryptedGroupInfo = bytes.Clone(w.EncryptedGroupInfo)
		w2.EncryptedGroupInfo[len(w2.EncryptedGroupInfo)-1] ^= 1
		if _, err := ProcessWelcome(cs, &w2, kp, v.InitPriv, signer, nil); !errors.Is(err, ciphersuite.ErrDecryption) {
			t.Fatalf("suite %d: tampered group info: %v", v.CipherSuite, err)
		}
		// A Welcome for another suite is rejected.
		w3 := *w
		w3.CipherSuite++
		if _, err := ProcessWelcome(cs, &w3, kp, v.InitPriv, signer, nil); !errors.Is(err, ErrWelcomeSuite) {
			t.Fatalf("suite %d: suite mismatch: %v", v.CipherSuite, err)
		}
	}
	if ran == 0 {
		t.Skip("no supported cipher suite in welcome.json")
	}
}

// testKeyPackage returns a key package of cs with a fresh init key.
func testKeyPackage(t *testing.T, cs *ciphersuite.CipherSuite, id byte) (*message.KeyPackage, []byte) {
	t.Helper()
	priv, pub, err := cs.GenerateHPKEKey()
	if err != nil {
		t.Fatal(err)
	}
	return &message.KeyPackage{
		Version:     message.ProtocolVersionMLS10,
		CipherSuite: cs.ID(),
		InitKey:     pub,
		LeafNode: message.LeafNode{
			EncryptionKey: []byte{id},
			SignatureKey:  []byte{id},
			Credential:    message.Credential{Type: message.CredentialTypeBasic, Identity: []byte{id}},
			Source:        message.LeafNodeSourceKeyPackage,
		},
		Signature: []byte{id},
	}, priv
}

func TestWelcomeRoundTrip(t *testing.T) {
	for _, id := range []ciphersuite.CipherSuiteID{
		ciphersuite.X25519AES128GCMSHA256Ed25519, ciphersuite.P256AES128GCMSHA256P256, ciphersuite.X25519ChaCha20Poly1305SHA256Ed25519,
		ciphersuite.P521AES256GCMSHA512P521, ciphersuite.P384AES256GCMSHA384P384, ciphersuite.XWingAES128GCMSHA256Ed25519,
	} {
		cs, err := ciphersuite.LookupSuite(id)
		if err != nil {
			t.Fatal(err)
		}
		sigPriv, sigPub, err := cs.GenerateSignatureKey()
		if err != nil {
			t.Fatal(err)
		}
		joiner := make([]byte, cs.Nh())
		rand.Read(joiner)
		pskID := keyschedule.PreSharedKeyID{Type: keyschedule.PSKTypeExternal, ID: []byte("psk"), Nonce: make([]byte, cs.Nh())}
		psks := []keyschedule.PSK{{ID: pskID, Secret: []byte("secret")}}
		pskSecret, err := keyschedule.PSKSecret(cs, psks)
		if err != nil {
			t.Fatal(err)
		}
		gi := &message.GroupInfo{
			GroupContext: message.GroupContext{
				CipherSuite:             id,
				GroupID:                 []byte("group"),
				Epoch:                   3,
				TreeHash:                bytes.Repeat([]byte{1}, cs.Nh()),
				ConfirmedTranscriptHash: bytes.Repeat([]byte{2}, cs.Nh()),
			},
			Signer: 0,
		}
		gc, err := gi.GroupContext.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		ep, err := keyschedule.EpochFromJoiner(cs, joiner, pskSecret, gc)
		if err != nil {
			t.Fatal(err)
		}
		gi.ConfirmationTag = keyschedule.ConfirmationTag(cs, ep.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash)
		if err := SignGroupInfo(cs, sigPriv, gi); err != nil {
			t.Fatal(err)
		}
		kpA, privA := testKeyPackage(t, cs, 1)
		kpB, privB := testKeyPackage(t, cs, 2)
		path := []byte("path secret")
		w, err := SealWelcome(cs, gi, joiner, psks, []WelcomeRecipient{{KeyPackage: kpA}, {KeyPackage: kpB, PathSecret: path}})
		if err != nil {
			t.Fatalf("suite 0x%04x: SealWelcome: %v", id, err)
		}
		// Through the wire encoding.
		wb, err := codec.MarshalAll(&message.MLSMessage{Version: message.ProtocolVersionMLS10, WireFormat: message.WireFormatWelcome, Welcome: w})
		if err != nil {
			t.Fatal(err)
		}
		w = decodeMLSMessage(t, wb, message.WireFormatWelcome).Welcome

		signer := func(g *message.GroupInfo) ([]byte, error) {
			if g.Signer != 0 {
				return nil, errors.New("unknown signer")
			}
			return sigPub, nil
		}
		lookup := func(p *keyschedule.PreSharedKeyID) ([]byte, error) {
			if p.Type == keyschedule.PSKTypeExternal && string(p.ID) == "psk" {
				return []byte("secret"), nil
			}
			return nil, errors.New("unknown PSK")
		}
		for i, r := range []struct {
			kp   *message.KeyPackage
			priv []byte
			path []byte
		}{{kpA, privA, nil}, {kpB, privB, path}} {
			j, err := ProcessWelcome(cs, w, r.kp, r.priv, signer, lookup)
			if err != nil {
				t.Fatalf("suite 0x%04x: recipient %d: %v", id, i, err)
			}
			if !bytes.Equal(j.GroupSecrets.JoinerSecret, joiner) || !bytes.Equal(j.GroupSecrets.PathSecret, r.path) {
				t.Fatalf("suite 0x%04x: recipient %d: group secrets differ", id, i)
			}
			if !bytes.Equal(j.Epoch.EpochSecret, ep.EpochSecret) || !bytes.Equal(j.GroupInfo.Signature, gi.Signature) {
				t.Fatalf("suite 0x%04x: recipient %d: epoch differs", id, i)
			}
		}
		// Without the PSK the joiner cannot proceed.
		if _, err := ProcessWelcome(cs, w, kpA, privA, signer, nil); !errors.Is(err, ErrWelcomePSK) {
			t.Fatalf("suite 0x%04x: missing PSK: %v", id, err)
		}
		// A wrong PSK yields the wrong welcome key.
		wrong := func(*keyschedule.PreSharedKeyID) ([]byte, error) { return []byte("other"), nil }
		if _, err := ProcessWelcome(cs, w, kpA, privA, signer, wrong); !errors.Is(err, ciphersuite.ErrDecryption) {
			t.Fatalf("suite 0x%04x: wrong PSK: %v", id, err)
		}
		// A validly signed GroupInfo with a bad confirmation tag is rejected.
		badGI := *gi
		badGI.ConfirmationTag = bytes.Clone(gi.ConfirmationTag)
		badGI.ConfirmationTag[0] ^= 1
		if err := SignGroupInfo(cs, sigPriv, &badGI); err != nil {
			t.Fatal(err)
		}
		wBad, err := SealWelcome(cs, &badGI, joiner, psks, []WelcomeRecipient{{KeyPackage: kpA}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ProcessWelcome(cs, wBad, kpA, privA, signer, lookup); !errors.Is(err, ErrWelcomeConfirmation) {
			t.Fatalf("suite 0x%04x: bad confirmation tag: %v", id, err)
		}
		// A key package of another suite cannot be a recipient.
		kpOther := *kpA
		kpOther.CipherSuite ^= 0x0100
		if _, err := SealWelcome(cs, gi, joiner, psks, []WelcomeRecipient{{KeyPackage: &kpOther}}); !errors.Is(err, ErrWelcomeSuite) {
			t.Fatalf("suite 0x%04x: recipient suite: %v", id, err)
		}
	}
}
