package mls_test

import (
	"errors"
	"fmt"

	"github.com/xchat-im/xchat/client/mls"
)

// A group of two devices: Alice creates it and adds Bob, who joins from
// the Welcome; then they exchange a message.
func Example() {
	cs, _ := mls.LookupSuite(mls.XWingAES128GCMSHA256Ed25519)
	newDevice := func(name string) *mls.KeyPackageBundle {
		sigPriv, _, _ := cs.GenerateSignatureKey()
		cred := mls.Credential{Type: mls.CredentialTypeXchat, Identity: []byte(name)}
		b, err := mls.NewKeyPackage(cs, cred, sigPriv, mls.XchatKeyPackageOptions())
		if err != nil {
			panic(err)
		}
		return b
	}
	alice, bob := newDevice("alice"), newDevice("bob")
	// The policy decides which credentials may enter the group. xchat
	// verifies the sender certificate a credential carries; this example
	// only checks the credential's type.
	cfg := mls.Config{ValidateCredential: func(c mls.Credential, signatureKey []byte) error {
		if c.Type != mls.CredentialTypeXchat || len(c.Identity) == 0 {
			return errors.New("not an xchat credential")
		}
		return nil
	}}

	ga, _ := mls.CreateGroup(cs, []byte("0123456789abcdef"), alice, cfg)
	_, welcome, _ := ga.Commit(mls.CommitOptions{Add: []mls.KeyPackage{bob.KeyPackage}})
	gb, err := mls.JoinFromWelcome(welcome, func([]byte) *mls.KeyPackageBundle { return bob }, nil, cfg)
	if err != nil {
		panic(err)
	}

	msg, _ := ga.Encrypt([]byte("hello Bob"), nil)
	res, _ := gb.Process(msg)
	fmt.Printf("epoch %d, %d members, from %s: %s\n", gb.Epoch(), len(gb.Members()), res.Credential.Identity, res.Plaintext)
	// Output: epoch 1, 2 members, from alice: hello Bob
}
