package ciphersuite

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
)

// labelPrefix is prepended to every label of the labelled functions
// (RFC 9420 section 5.1.3 and 8).
const labelPrefix = "MLS 1.0 "

// ErrSignature reports a signature that does not verify.
var ErrSignature = errors.New("mls: invalid signature")

// Hash returns the suite's hash of data.
func (cs *CipherSuite) Hash(data []byte) []byte {
	h := cs.p.hash.New()
	h.Write(data)
	return h.Sum(nil)
}

// MAC returns the HMAC of data under key with the suite's hash.
func (cs *CipherSuite) MAC(key, data []byte) []byte {
	m := hmac.New(cs.p.hash.New, key)
	m.Write(data)
	return m.Sum(nil)
}

// Extract is KDF.Extract: HKDF-Extract with the given salt and input keying
// material.
func (cs *CipherSuite) Extract(salt, ikm []byte) ([]byte, error) {
	prk, err := hkdf.Extract(cs.p.hash.New, ikm, salt)
	if err != nil {
		return nil, fmt.Errorf("mls: extract: %w", err)
	}
	return prk, nil
}

// Expand is KDF.Expand: HKDF-Expand of prk with info to length bytes.
func (cs *CipherSuite) Expand(prk, info []byte, length int) ([]byte, error) {
	out, err := hkdf.Expand(cs.p.hash.New, prk, string(info), length)
	if err != nil {
		return nil, fmt.Errorf("mls: expand: %w", err)
	}
	return out, nil
}

// RefHash hashes value under label (RFC 9420 section 5.2):
// Hash(RefHashInput{label, value}). The label is used verbatim.
func (cs *CipherSuite) RefHash(label string, value []byte) ([]byte, error) {
	var w codec.Writer
	w.Opaque([]byte(label))
	w.Opaque(value)
	in, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: ref hash: %w", err)
	}
	return cs.Hash(in), nil
}

// ExpandWithLabel derives length bytes from secret under "MLS 1.0 "+label
// and context (RFC 9420 section 8).
func (cs *CipherSuite) ExpandWithLabel(secret []byte, label string, context []byte, length int) ([]byte, error) {
	if length < 0 || length > 0xffff {
		return nil, fmt.Errorf("mls: expand with label: length %d out of range", length)
	}
	var w codec.Writer
	w.Uint16(uint16(length))
	w.Opaque([]byte(labelPrefix + label))
	w.Opaque(context)
	info, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: expand with label: %w", err)
	}
	return cs.Expand(secret, info, length)
}

// DeriveSecret is ExpandWithLabel(secret, label, "", Nh).
func (cs *CipherSuite) DeriveSecret(secret []byte, label string) ([]byte, error) {
	return cs.ExpandWithLabel(secret, label, nil, cs.Nh())
}

// DeriveTreeSecret is ExpandWithLabel(secret, label, generation, length)
// with the generation as a big-endian uint32 (RFC 9420 section 9.1).
func (cs *CipherSuite) DeriveTreeSecret(secret []byte, label string, generation uint32, length int) ([]byte, error) {
	g := []byte{byte(generation >> 24), byte(generation >> 16), byte(generation >> 8), byte(generation)}
	return cs.ExpandWithLabel(secret, label, g, length)
}

// signContent encodes SignContent{"MLS 1.0 "+label, content}.
func signContent(label string, content []byte) ([]byte, error) {
	var w codec.Writer
	w.Opaque([]byte(labelPrefix + label))
	w.Opaque(content)
	return w.Bytes()
}

// SignWithLabel signs content under label with the suite's signature
// scheme (RFC 9420 section 5.1.2). priv is an Ed25519 seed (or full private
// key) or a raw big-endian ECDSA scalar.
func (cs *CipherSuite) SignWithLabel(priv []byte, label string, content []byte) ([]byte, error) {
	msg, err := signContent(label, content)
	if err != nil {
		return nil, fmt.Errorf("mls: sign: %w", err)
	}
	switch cs.p.sig {
	case sigEd25519:
		var key ed25519.PrivateKey
		switch len(priv) {
		case ed25519.SeedSize:
			key = ed25519.NewKeyFromSeed(priv)
		case ed25519.PrivateKeySize:
			key = ed25519.PrivateKey(priv)
		default:
			return nil, fmt.Errorf("mls: sign: Ed25519 private key of %d bytes", len(priv))
		}
		return ed25519.Sign(key, msg), nil
	case sigECDSA:
		// A scalar may come without its leading zero bytes (P-521 keys
		// often do); restore the curve's fixed length.
		if n := (cs.p.ecCurve().Params().BitSize + 7) / 8; len(priv) < n {
			priv = append(make([]byte, n-len(priv)), priv...)
		}
		key, err := ecdsa.ParseRawPrivateKey(cs.p.ecCurve(), priv)
		if err != nil {
			return nil, fmt.Errorf("mls: sign: %w", err)
		}
		sig, err := ecdsa.SignASN1(rand.Reader, key, cs.Hash(msg))
		if err != nil {
			return nil, fmt.Errorf("mls: sign: %w", err)
		}
		return sig, nil
	}
	return nil, fmt.Errorf("%w: no signature scheme", ErrUnsupportedSuite)
}

// VerifyWithLabel checks a SignWithLabel signature; pub is a raw Ed25519
// key or an uncompressed ECDSA point, and ECDSA signatures are ASN.1 DER.
func (cs *CipherSuite) VerifyWithLabel(pub []byte, label string, content, sig []byte) error {
	msg, err := signContent(label, content)
	if err != nil {
		return fmt.Errorf("mls: verify: %w", err)
	}
	switch cs.p.sig {
	case sigEd25519:
		if len(pub) != ed25519.PublicKeySize {
			return fmt.Errorf("mls: verify: Ed25519 public key of %d bytes", len(pub))
		}
		if !ed25519.Verify(ed25519.PublicKey(pub), msg, sig) {
			return ErrSignature
		}
		return nil
	case sigECDSA:
		key, err := ecdsa.ParseUncompressedPublicKey(cs.p.ecCurve(), pub)
		if err != nil {
			return fmt.Errorf("mls: verify: %w", err)
		}
		if !ecdsa.VerifyASN1(key, cs.Hash(msg), sig) {
			return ErrSignature
		}
		return nil
	}
	return fmt.Errorf("%w: no signature scheme", ErrUnsupportedSuite)
}

// GenerateSignatureKey returns a new signature key pair in the encodings
// SignWithLabel and VerifyWithLabel take.
func (cs *CipherSuite) GenerateSignatureKey() (priv, pub []byte, err error) {
	switch cs.p.sig {
	case sigEd25519:
		pk, sk, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("mls: generate signature key: %w", err)
		}
		return sk.Seed(), pk, nil
	case sigECDSA:
		sk, err := ecdsa.GenerateKey(cs.p.ecCurve(), rand.Reader)
		if err != nil {
			return nil, nil, fmt.Errorf("mls: generate signature key: %w", err)
		}
		priv, err := sk.Bytes()
		if err != nil {
			return nil, nil, fmt.Errorf("mls: generate signature key: %w", err)
		}
		pub, err := sk.PublicKey.Bytes()
		if err != nil {
			return nil, nil, fmt.Errorf("mls: generate signature key: %w", err)
		}
		return priv, pub, nil
	}
	return nil, nil, fmt.Errorf("%w: no signature scheme", ErrUnsupportedSuite)
}

// encryptContext encodes EncryptContext{"MLS 1.0 "+label, context}.
func encryptContext(label string, context []byte) ([]byte, error) {
	var w codec.Writer
	w.Opaque([]byte(labelPrefix + label))
	w.Opaque(context)
	return w.Bytes()
}

// EncryptWithLabel encrypts plaintext to an HPKE public key under label and
// context (RFC 9420 section 5.1.3), returning the KEM output and the
// ciphertext.
func (cs *CipherSuite) EncryptWithLabel(pub []byte, label string, context, plaintext []byte) (kemOutput, ciphertext []byte, err error) {
	info, err := encryptContext(label, context)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: encrypt: %w", err)
	}
	pk, err := cs.kem.NewPublicKey(pub)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: encrypt: public key: %w", err)
	}
	enc, s, err := hpke.NewSender(pk, cs.kdf, cs.aead, info)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: encrypt: %w", err)
	}
	ct, err := s.Seal(nil, plaintext)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: encrypt: %w", err)
	}
	return enc, ct, nil
}

// DecryptWithLabel opens an EncryptWithLabel ciphertext with the HPKE
// private key priv.
func (cs *CipherSuite) DecryptWithLabel(priv []byte, label string, context, kemOutput, ciphertext []byte) ([]byte, error) {
	info, err := encryptContext(label, context)
	if err != nil {
		return nil, fmt.Errorf("mls: decrypt: %w", err)
	}
	sk, err := cs.kem.NewPrivateKey(cs.padHPKEPriv(priv))
	if err != nil {
		return nil, fmt.Errorf("mls: decrypt: private key: %w", err)
	}
	r, err := hpke.NewRecipient(kemOutput, sk, cs.kdf, cs.aead, info)
	if err != nil {
		return nil, fmt.Errorf("mls: decrypt: %w", err)
	}
	pt, err := r.Open(nil, ciphertext)
	if err != nil {
		return nil, fmt.Errorf("mls: decrypt: %w", err)
	}
	return pt, nil
}

// DeriveKeyPair derives an HPKE key pair from ikm (RFC 9180 DeriveKeyPair)
// and returns the serialised private and public keys.
func (cs *CipherSuite) DeriveKeyPair(ikm []byte) (priv, pub []byte, err error) {
	sk, err := cs.kem.DeriveKeyPair(ikm)
	if err != nil {
		return nil, nil, fmt.Errorf("mls: derive key pair: %w", err)
	}
	priv, err = sk.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("mls: derive key pair: %w", err)
	}
	return priv, sk.PublicKey().Bytes(), nil
}

// GenerateHPKEKey returns a new HPKE key pair for the suite's KEM.
func (cs *CipherSuite) GenerateHPKEKey() (priv, pub []byte, err error) {
	sk, err := cs.kem.GenerateKey()
	if err != nil {
		return nil, nil, fmt.Errorf("mls: generate HPKE key: %w", err)
	}
	priv, err = sk.Bytes()
	if err != nil {
		return nil, nil, fmt.Errorf("mls: generate HPKE key: %w", err)
	}
	return priv, sk.PublicKey().Bytes(), nil
}

// padHPKEPriv restores the fixed length of a NIST-curve HPKE private
// scalar given without its leading zero bytes (P-521 keys often are).
func (cs *CipherSuite) padHPKEPriv(priv []byte) []byte {
	if cs.p.kemCurve == nil || cs.p.ecCurve == nil {
		return priv
	}
	if n := (cs.p.ecCurve().Params().BitSize + 7) / 8; len(priv) < n {
		return append(make([]byte, n-len(priv)), priv...)
	}
	return priv
}

// SignaturePublicKey returns the public key of a signature private key in
// the suite's encoding.
func (cs *CipherSuite) SignaturePublicKey(priv []byte) ([]byte, error) {
	switch cs.p.sig {
	case sigEd25519:
		switch len(priv) {
		case ed25519.SeedSize:
			return slices.Clone(ed25519.NewKeyFromSeed(priv).Public().(ed25519.PublicKey)), nil
		case ed25519.PrivateKeySize:
			return slices.Clone(priv[32:]), nil
		}
		return nil, fmt.Errorf("mls: Ed25519 private key of %d bytes", len(priv))
	case sigECDSA:
		if n := (cs.p.ecCurve().Params().BitSize + 7) / 8; len(priv) < n {
			priv = append(make([]byte, n-len(priv)), priv...)
		}
		k, err := ecdsa.ParseRawPrivateKey(cs.p.ecCurve(), priv)
		if err != nil {
			return nil, fmt.Errorf("mls: signature key: %w", err)
		}
		return k.PublicKey.Bytes()
	}
	return nil, fmt.Errorf("%w: no signature scheme", ErrUnsupportedSuite)
}
