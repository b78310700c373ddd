package ciphersuite

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"
)

// ErrDecryption reports a PrivateMessage (content or sender data) that
// does not decrypt or authenticate.
var ErrDecryption = errors.New("mls: decryption failed")

// newAEAD returns the suite's AEAD keyed with key.
func (cs *CipherSuite) newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != cs.AEADKeySize() {
		return nil, fmt.Errorf("mls: AEAD key of %d bytes, want %d", len(key), cs.AEADKeySize())
	}
	switch cs.p.aeadID {
	case aeadAES128GCM, aeadAES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	case aeadChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("%w: AEAD 0x%04x", ErrUnsupportedSuite, cs.p.aeadID)
}

// AeadSeal encrypts plaintext with the suite's AEAD.
func (cs *CipherSuite) AeadSeal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := cs.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("mls: AEAD nonce of %d bytes", len(nonce))
	}
	return a.Seal(nil, nonce, plaintext, aad), nil
}

// AeadOpen decrypts ciphertext with the suite's AEAD, returning an error
// wrapping ErrDecryption when it does not authenticate.
func (cs *CipherSuite) AeadOpen(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := cs.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("mls: AEAD nonce of %d bytes", len(nonce))
	}
	pt, err := a.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrDecryption
	}
	return pt, nil
}
