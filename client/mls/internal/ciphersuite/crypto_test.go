package ciphersuite

import (
	"bytes"
	"testing"
)

type cryptoBasicsCase struct {
	CipherSuite uint16 `json:"cipher_suite"`
	RefHash     struct {
		Label string   `json:"label"`
		Value hexBytes `json:"value"`
		Out   hexBytes `json:"out"`
	} `json:"ref_hash"`
	ExpandWithLabel struct {
		Secret  hexBytes `json:"secret"`
		Label   string   `json:"label"`
		Context hexBytes `json:"context"`
		Length  int      `json:"length"`
		Out     hexBytes `json:"out"`
	} `json:"expand_with_label"`
	DeriveSecret struct {
		Secret hexBytes `json:"secret"`
		Label  string   `json:"label"`
		Out    hexBytes `json:"out"`
	} `json:"derive_secret"`
	DeriveTreeSecret struct {
		Secret     hexBytes `json:"secret"`
		Label      string   `json:"label"`
		Generation uint32   `json:"generation"`
		Length     int      `json:"length"`
		Out        hexBytes `json:"out"`
	} `json:"derive_tree_secret"`
	SignWithLabel struct {
		Priv      hexBytes `json:"priv"`
		Pub       hexBytes `json:"pub"`
		Content   hexBytes `json:"content"`
		Label     string   `json:"label"`
		Signature hexBytes `json:"signature"`
	} `json:"sign_with_label"`
	EncryptWithLabel struct {
		Priv       hexBytes `json:"priv"`
		Pub        hexBytes `json:"pub"`
		Label      string   `json:"label"`
		Context    hexBytes `json:"context"`
		Plaintext  hexBytes `json:"plaintext"`
		KEMOutput  hexBytes `json:"kem_output"`
		Ciphertext hexBytes `json:"ciphertext"`
	} `json:"encrypt_with_label"`
}

func TestCryptoBasicsVectors(t *testing.T) {
	var cases []cryptoBasicsCase
	loadVectors(t, "crypto-basics.json", &cases)
	passed := 0
	for _, c := range cases {
		cs, ok := suiteOrSkip(t, c.CipherSuite)
		if !ok {
			continue
		}
		passed++
		if got, err := cs.RefHash(c.RefHash.Label, c.RefHash.Value); err != nil || !bytes.Equal(got, c.RefHash.Out) {
			t.Errorf("suite %d RefHash = %x, %v", c.CipherSuite, got, err)
		}
		e := c.ExpandWithLabel
		if got, err := cs.ExpandWithLabel(e.Secret, e.Label, e.Context, e.Length); err != nil || !bytes.Equal(got, e.Out) {
			t.Errorf("suite %d ExpandWithLabel = %x, %v", c.CipherSuite, got, err)
		}
		if got, err := cs.DeriveSecret(c.DeriveSecret.Secret, c.DeriveSecret.Label); err != nil || !bytes.Equal(got, c.DeriveSecret.Out) {
			t.Errorf("suite %d DeriveSecret = %x, %v", c.CipherSuite, got, err)
		}
		d := c.DeriveTreeSecret
		if got, err := cs.DeriveTreeSecret(d.Secret, d.Label, d.Generation, d.Length); err != nil || !bytes.Equal(got, d.Out) {
			t.Errorf("suite %d DeriveTreeSecret = %x, %v", c.CipherSuite, got, err)
		}
		s := c.SignWithLabel
		if err := cs.VerifyWithLabel(s.Pub, s.Label, s.Content, s.Signature); err != nil {
			t.Errorf("suite %d VerifyWithLabel(vector): %v", c.CipherSuite, err)
		}
		sig, err := cs.SignWithLabel(s.Priv, s.Label, s.Content)
		if err != nil {
			t.Errorf("suite %d SignWithLabel: %v", c.CipherSuite, err)
		} else if err := cs.VerifyWithLabel(s.Pub, s.Label, s.Content, sig); err != nil {
			t.Errorf("suite %d VerifyWithLabel(own): %v", c.CipherSuite, err)
		}
		if err := cs.VerifyWithLabel(s.Pub, s.Label+"x", s.Content, s.Signature); err == nil {
			t.Errorf("suite %d VerifyWithLabel accepted a wrong label", c.CipherSuite)
		}
		x := c.EncryptWithLabel
		pt, err := cs.DecryptWithLabel(x.Priv, x.Label, x.Context, x.KEMOutput, x.Ciphertext)
		if err != nil || !bytes.Equal(pt, x.Plaintext) {
			t.Errorf("suite %d DecryptWithLabel(vector) = %x, %v", c.CipherSuite, pt, err)
		}
		kem, ct, err := cs.EncryptWithLabel(x.Pub, x.Label, x.Context, x.Plaintext)
		if err != nil {
			t.Errorf("suite %d EncryptWithLabel: %v", c.CipherSuite, err)
			continue
		}
		pt, err = cs.DecryptWithLabel(x.Priv, x.Label, x.Context, kem, ct)
		if err != nil || !bytes.Equal(pt, x.Plaintext) {
			t.Errorf("suite %d DecryptWithLabel(own) = %x, %v", c.CipherSuite, pt, err)
		}
	}
	t.Logf("%d of %d cases checked", passed, len(cases))
}

// TestXWingSuite checks xchat's hybrid suite end to end: it has no
// official vectors.
func TestXWingSuite(t *testing.T) {
	cs, err := LookupSuite(XWingAES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	if cs.KEM().ID() != 0x647a {
		t.Fatalf("KEM id 0x%04x, want 0x647a", cs.KEM().ID())
	}
	priv, pub, err := cs.GenerateHPKEKey()
	if err != nil {
		t.Fatal(err)
	}
	kem, ct, err := cs.EncryptWithLabel(pub, "Welcome", []byte("ctx"), []byte("hello"))
	if err != nil {
		t.Fatal(err)
	}
	pt, err := cs.DecryptWithLabel(priv, "Welcome", []byte("ctx"), kem, ct)
	if err != nil || string(pt) != "hello" {
		t.Fatalf("round trip = %q, %v", pt, err)
	}
	if _, err := cs.DecryptWithLabel(priv, "Other", []byte("ctx"), kem, ct); err == nil {
		t.Fatal("decrypted under a different label")
	}
	sk, pk, err := cs.GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	sig, err := cs.SignWithLabel(sk, "X", []byte("m"))
	if err != nil {
		t.Fatal(err)
	}
	if err := cs.VerifyWithLabel(pk, "X", []byte("m"), sig); err != nil {
		t.Fatal(err)
	}
	for _, id := range []CipherSuiteID{P256AES128GCMSHA256P256, P384AES256GCMSHA384P384, P521AES256GCMSHA512P521} {
		cs, _ := LookupSuite(id)
		sk, pk, err := cs.GenerateSignatureKey()
		if err != nil {
			t.Fatal(err)
		}
		sig, err := cs.SignWithLabel(sk, "X", []byte("m"))
		if err != nil || cs.VerifyWithLabel(pk, "X", []byte("m"), sig) != nil {
			t.Fatalf("suite 0x%04x sign/verify: %v", uint16(id), err)
		}
	}
}
