package mls

import (
	"bytes"
	"testing"
)

func TestSmoke(t *testing.T) {
	cs, _ := LookupSuite(XWingAES128GCMSHA256Ed25519)
	mk := func(name string) *KeyPackageBundle {
		priv, _, _ := cs.GenerateSignatureKey()
		b, err := NewKeyPackage(cs, Credential{Type: CredentialTypeXchat, Identity: []byte(name)}, priv, nil)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	a := mk("a")
	ga, err := CreateGroup(cs, []byte("g"), a, Config{})
	if err != nil {
		t.Fatal(err)
	}
	b := mk("b")
	c, w, err := ga.Commit(CommitOptions{Add: []KeyPackage{b.KeyPackage}})
	if err != nil {
		t.Fatal(err)
	}
	_ = c
	gb, err := JoinFromWelcome(w, func([]byte) *KeyPackageBundle { return b }, nil, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ga.EpochAuthenticator(), gb.EpochAuthenticator()) {
		t.Fatal("auth")
	}
	m, err := ga.Encrypt([]byte("hi"), nil)
	if err != nil {
		t.Fatal(err)
	}
	p, err := gb.Process(m)
	if err != nil || string(p.Plaintext) != "hi" {
		t.Fatal(p, err)
	}
	c2, _, err := gb.Commit(CommitOptions{Update: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ga.Process(c2); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(ga.EpochAuthenticator(), gb.EpochAuthenticator()) {
		t.Fatal("auth2")
	}
}
