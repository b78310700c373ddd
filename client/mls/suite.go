package mls

import "github.com/xchat-im/xchat/client/mls/internal/ciphersuite"

// CipherSuiteID is an MLS cipher suite code point (RFC 9420 section 17.1).
type CipherSuiteID = ciphersuite.CipherSuiteID

// CipherSuite is one MLS cipher suite: its hash, KDF, AEAD, HPKE KEM and
// signature scheme. Get one with LookupSuite; ID returns its code point.
type CipherSuite = ciphersuite.CipherSuite

// Cipher suites xchat implements.
const (
	// XWingAES128GCMSHA256Ed25519 is xchat's default suite: ML-KEM-768 with
	// X25519 (X-Wing), AES-128-GCM, SHA-256 and Ed25519, at a private-use
	// code point (spec/09-mls.md section 9.2).
	XWingAES128GCMSHA256Ed25519 = ciphersuite.XWingAES128GCMSHA256Ed25519
	// X25519AES128GCMSHA256Ed25519 is MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519.
	X25519AES128GCMSHA256Ed25519 = ciphersuite.X25519AES128GCMSHA256Ed25519
	// P256AES128GCMSHA256P256 is MLS_128_DHKEMP256_AES128GCM_SHA256_P256.
	P256AES128GCMSHA256P256 = ciphersuite.P256AES128GCMSHA256P256
	// X25519ChaCha20Poly1305SHA256Ed25519 is MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519.
	X25519ChaCha20Poly1305SHA256Ed25519 = ciphersuite.X25519ChaCha20Poly1305SHA256Ed25519
	// P384AES256GCMSHA384P384 is MLS_256_DHKEMP384_AES256GCM_SHA384_P384.
	P384AES256GCMSHA384P384 = ciphersuite.P384AES256GCMSHA384P384
	// P521AES256GCMSHA512P521 is MLS_256_DHKEMP521_AES256GCM_SHA512_P521.
	P521AES256GCMSHA512P521 = ciphersuite.P521AES256GCMSHA512P521
)

// LookupSuite returns the cipher suite id, or an error when xchat does not
// implement it.
func LookupSuite(id CipherSuiteID) (*CipherSuite, error) { return ciphersuite.LookupSuite(id) }
