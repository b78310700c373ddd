package mls

import (
	"errors"
	"testing"
)

// acceptAnyCredential is a credential policy for tests that accepts every
// credential; real callers verify what the credential names.
func acceptAnyCredential(Credential, []byte) error { return nil }

// A group cannot be created, joined or loaded without a credential
// validator.
func TestConfigRequiresCredentialValidator(t *testing.T) {
	t.Parallel()
	cs, _ := LookupSuite(X25519AES128GCMSHA256Ed25519)
	a, b := newBundle(t, cs, "a"), newBundle(t, cs, "b")
	if _, err := CreateGroup(cs, []byte("group"), a, Config{}); !errors.Is(err, ErrNoCredentialValidator) {
		t.Fatalf("CreateGroup without validator: %v, want ErrNoCredentialValidator", err)
	}
	g, err := CreateGroup(cs, []byte("group"), a, Config{ValidateCredential: acceptAnyCredential})
	if err != nil {
		t.Fatal(err)
	}
	_, welcome, err := g.Commit(CommitOptions{Add: []KeyPackage{b.KeyPackage}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := JoinFromWelcome(welcome, bundleLookup(b), nil, Config{}); !errors.Is(err, ErrNoCredentialValidator) {
		t.Fatalf("JoinFromWelcome without validator: %v, want ErrNoCredentialValidator", err)
	}
	state, err := g.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnmarshalGroup(state, Config{}); !errors.Is(err, ErrNoCredentialValidator) {
		t.Fatalf("UnmarshalGroup without validator: %v, want ErrNoCredentialValidator", err)
	}
	gi, err := g.GroupInfo(true)
	if err != nil {
		t.Fatal(err)
	}
	c := newBundle(t, cs, "c")
	if _, _, err := JoinExternal(cs, gi, c, nil, Config{}); !errors.Is(err, ErrNoCredentialValidator) {
		t.Fatalf("JoinExternal without validator: %v, want ErrNoCredentialValidator", err)
	}
}
