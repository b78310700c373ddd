// Package ciphersuite provides the MLS cipher suites (RFC 9420 section
// 5.1 and 17.1) and their labelled cryptographic functions: hashing, HKDF
// with labels, signatures with labels, HPKE with labels, key derivation,
// the AEAD and the HPKE exporter of external commits.
package ciphersuite

import (
	"crypto"
	"crypto/ecdh"
	"crypto/elliptic"
	"crypto/hpke"
	"errors"
	"fmt"

	// Register the hash functions the suites use.
	_ "crypto/sha256"
	_ "crypto/sha512"
)

// CipherSuiteID is an MLS cipher suite code point (RFC 9420 section 17.1).
type CipherSuiteID uint16

// Cipher suites xchat implements.
const (
	// X25519AES128GCMSHA256Ed25519 is MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
	X25519AES128GCMSHA256Ed25519 CipherSuiteID = 0x0001
	// P256AES128GCMSHA256P256 is MLS_128_DHKEMP256_AES128GCM_SHA256_P256.
	P256AES128GCMSHA256P256 CipherSuiteID = 0x0002
	// X25519ChaCha20Poly1305SHA256Ed25519 is MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519.
	X25519ChaCha20Poly1305SHA256Ed25519 CipherSuiteID = 0x0003
	// P521AES256GCMSHA512P521 is MLS_256_DHKEMP521_AES256GCM_SHA512_P521.
	P521AES256GCMSHA512P521 CipherSuiteID = 0x0005
	// P384AES256GCMSHA384P384 is MLS_256_DHKEMP384_AES256GCM_SHA384_P384.
	P384AES256GCMSHA384P384 CipherSuiteID = 0x0007
	// XWingAES128GCMSHA256Ed25519 is xchat's default hybrid post-quantum
	// suite MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519 (HPKE KEM X-Wing
	// 0x647a), at a private-use code point until IANA assigns one
	// (spec/09-mls.md section 9.2).
	XWingAES128GCMSHA256Ed25519 CipherSuiteID = 0xF031
)

// ErrUnsupportedSuite reports a cipher suite xchat does not implement.
var ErrUnsupportedSuite = errors.New("mls: unsupported cipher suite")

// signatureKind names the signature algorithm of a suite.
type signatureKind uint8

const (
	sigEd25519 signatureKind = iota + 1
	sigECDSA
)

// suiteParams is one row of the read-only suite table.
type suiteParams struct {
	hash     crypto.Hash
	kemCurve ecdh.Curve // nil for X-Wing
	xwing    bool
	aeadID   uint16
	aeadNk   int
	aeadNn   int
	sig      signatureKind
	ecCurve  func() elliptic.Curve
}

// HPKE AEAD identifiers (RFC 9180 section 7.3).
const (
	aeadAES128GCM        = 0x0001
	aeadAES256GCM        = 0x0002
	aeadChaCha20Poly1305 = 0x0003
)

// suiteTable is read-only after initialisation.
var suiteTable = map[CipherSuiteID]suiteParams{
	X25519AES128GCMSHA256Ed25519:        {hash: crypto.SHA256, kemCurve: ecdh.X25519(), aeadID: aeadAES128GCM, aeadNk: 16, aeadNn: 12, sig: sigEd25519},
	P256AES128GCMSHA256P256:             {hash: crypto.SHA256, kemCurve: ecdh.P256(), aeadID: aeadAES128GCM, aeadNk: 16, aeadNn: 12, sig: sigECDSA, ecCurve: elliptic.P256},
	X25519ChaCha20Poly1305SHA256Ed25519: {hash: crypto.SHA256, kemCurve: ecdh.X25519(), aeadID: aeadChaCha20Poly1305, aeadNk: 32, aeadNn: 12, sig: sigEd25519},
	P521AES256GCMSHA512P521:             {hash: crypto.SHA512, kemCurve: ecdh.P521(), aeadID: aeadAES256GCM, aeadNk: 32, aeadNn: 12, sig: sigECDSA, ecCurve: elliptic.P521},
	P384AES256GCMSHA384P384:             {hash: crypto.SHA384, kemCurve: ecdh.P384(), aeadID: aeadAES256GCM, aeadNk: 32, aeadNn: 12, sig: sigECDSA, ecCurve: elliptic.P384},
	XWingAES128GCMSHA256Ed25519:         {hash: crypto.SHA256, xwing: true, aeadID: aeadAES128GCM, aeadNk: 16, aeadNn: 12, sig: sigEd25519},
}

// CipherSuite bundles the algorithms of one MLS cipher suite: hash, KDF
// (HKDF over the hash), AEAD, HPKE and signature scheme.
type CipherSuite struct {
	id   CipherSuiteID
	p    suiteParams
	kem  hpke.KEM
	kdf  hpke.KDF
	aead hpke.AEAD
}

// LookupSuite returns the cipher suite with code point id, or an error
// wrapping ErrUnsupportedSuite.
func LookupSuite(id CipherSuiteID) (*CipherSuite, error) {
	p, ok := suiteTable[id]
	if !ok {
		return nil, fmt.Errorf("%w: 0x%04x", ErrUnsupportedSuite, uint16(id))
	}
	cs := &CipherSuite{id: id, p: p}
	if p.xwing {
		cs.kem = hpke.MLKEM768X25519()
	} else {
		cs.kem = hpke.DHKEM(p.kemCurve)
	}
	switch p.hash {
	case crypto.SHA256:
		cs.kdf = hpke.HKDFSHA256()
	case crypto.SHA384:
		cs.kdf = hpke.HKDFSHA384()
	case crypto.SHA512:
		cs.kdf = hpke.HKDFSHA512()
	}
	aead, err := hpke.NewAEAD(p.aeadID)
	if err != nil {
		return nil, fmt.Errorf("mls: suite 0x%04x AEAD: %w", uint16(id), err)
	}
	cs.aead = aead
	return cs, nil
}

// ID returns the suite's code point.
func (cs *CipherSuite) ID() CipherSuiteID { return cs.id }

// Nh returns the output size of the suite's hash (and KDF) in bytes.
func (cs *CipherSuite) Nh() int { return cs.p.hash.Size() }

// AEADKeySize returns Nk, the AEAD key size in bytes.
func (cs *CipherSuite) AEADKeySize() int { return cs.p.aeadNk }

// AEADNonceSize returns Nn, the AEAD nonce size in bytes.
func (cs *CipherSuite) AEADNonceSize() int { return cs.p.aeadNn }

// KEM returns the suite's HPKE KEM.
func (cs *CipherSuite) KEM() hpke.KEM { return cs.kem }
