package sframe

import (
	"crypto/cipher"
	"crypto/hkdf"
	"encoding/binary"
	"errors"
	"fmt"
)

// Key is the SFrame key and salt of one KID in one cipher suite. It is safe
// for concurrent use; the caller chooses the counters (MLSSender does).
type Key struct {
	suite CipherSuite
	kid   uint64
	aead  cipher.AEAD
	salt  [nonceSize]byte
}

// DeriveKey derives the key and salt of kid from baseKey as RFC 9605
// section 4.4.2 says: sframe_secret = HKDF-Extract("", base_key), then
// HKDF-Expand with the labels "SFrame 1.0 Secret key " and "SFrame 1.0
// Secret salt " followed by the KID (8 bytes) and the suite (2 bytes).
func DeriveKey(cs CipherSuite, kid uint64, baseKey []byte) (*Key, error) {
	p, ok := cs.params()
	if !ok {
		return nil, fmt.Errorf("%w: unknown cipher suite 0x%04x", ErrMalformed, uint16(cs))
	}
	if len(baseKey) == 0 {
		return nil, fmt.Errorf("%w: empty base key", ErrMalformed)
	}
	key, salt, err := deriveKeySalt(p, cs, kid, baseKey)
	if err != nil {
		return nil, err
	}
	aead, err := newAEAD(p, key)
	if err != nil {
		return nil, err
	}
	k := &Key{suite: cs, kid: kid, aead: aead}
	copy(k.salt[:], salt)
	return k, nil
}

// deriveKeySalt returns sframe_key and sframe_salt.
func deriveKeySalt(p suiteParams, cs CipherSuite, kid uint64, baseKey []byte) (key, salt []byte, err error) {
	secret, err := hkdf.Extract(p.hash, baseKey, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("sframe: extract: %w", err)
	}
	label := func(s string) string {
		b := append([]byte(s), make([]byte, 10)...)
		binary.BigEndian.PutUint64(b[len(s):], kid)
		binary.BigEndian.PutUint16(b[len(s)+8:], uint16(cs))
		return string(b)
	}
	key, err = hkdf.Expand(p.hash, secret, label("SFrame 1.0 Secret key "), p.keyLen)
	if err != nil {
		return nil, nil, fmt.Errorf("sframe: expand: %w", err)
	}
	salt, err = hkdf.Expand(p.hash, secret, label("SFrame 1.0 Secret salt "), nonceSize)
	if err != nil {
		return nil, nil, fmt.Errorf("sframe: expand: %w", err)
	}
	return key, salt, nil
}

// KID returns the key identifier the key was derived for.
func (k *Key) KID() uint64 { return k.kid }

// Suite returns the key's cipher suite.
func (k *Key) Suite() CipherSuite { return k.suite }

// Overhead returns the bytes Seal adds to a plaintext of any length, not
// counting the header (whose length depends on the counter).
func (k *Key) Overhead() int { return k.aead.Overhead() }

// nonce returns the salt XOR the counter, as 12 bytes big-endian.
func (k *Key) nonce(ctr uint64) [nonceSize]byte {
	n := k.salt
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], ctr)
	for i := range c {
		n[nonceSize-8+i] ^= c[i]
	}
	return n
}

// Seal protects plaintext under counter ctr and returns the SFrame
// ciphertext: the header, then the encrypted plaintext and its tag. The
// header and metadata are authenticated. The caller must never use a
// counter twice with one key.
func (k *Key) Seal(ctr uint64, metadata, plaintext []byte) ([]byte, error) {
	out := make([]byte, 0, MaxHeaderLen+len(plaintext)+k.aead.Overhead())
	out = AppendHeader(out, k.kid, ctr)
	aad := make([]byte, 0, len(out)+len(metadata))
	aad = append(append(aad, out...), metadata...)
	nonce := k.nonce(ctr)
	return k.aead.Seal(out, nonce[:], plaintext, aad), nil
}

// Open authenticates an SFrame ciphertext with metadata and returns its
// counter and plaintext. Errors wrap ErrMalformed (not an SFrame
// ciphertext), ErrUnknownKey (another KID) or ErrAuth. Replays are the
// caller's concern (MLSReceiver checks them).
func (k *Key) Open(metadata, sframeCiphertext []byte) (ctr uint64, plaintext []byte, err error) {
	kid, ctr, hl, err := ParseHeader(sframeCiphertext)
	if err != nil {
		return 0, nil, err
	}
	if kid != k.kid {
		return 0, nil, fmt.Errorf("%w: KID %d, key is for KID %d", ErrUnknownKey, kid, k.kid)
	}
	return k.open(ctr, hl, metadata, sframeCiphertext)
}

// open decrypts b whose header (of hl bytes, counter ctr) is already parsed.
func (k *Key) open(ctr uint64, hl int, metadata, b []byte) (uint64, []byte, error) {
	body := b[hl:]
	if len(body) < k.aead.Overhead() {
		return 0, nil, fmt.Errorf("%w: ciphertext shorter than its tag", ErrMalformed)
	}
	aad := make([]byte, 0, hl+len(metadata))
	aad = append(append(aad, b[:hl]...), metadata...)
	nonce := k.nonce(ctr)
	pt, err := k.aead.Open(nil, nonce[:], body, aad)
	if err != nil {
		if !errors.Is(err, ErrAuth) {
			err = fmt.Errorf("%w: %v", ErrAuth, err)
		}
		return 0, nil, err
	}
	if pt == nil {
		pt = []byte{}
	}
	return ctr, pt, nil
}
