package mls

import "github.com/xchat-im/xchat/client/mls/internal/ciphersuite"

// CipherSuiteID is an MLS cipher suite code point (RFC 9420 section 17.1).
type CipherSuiteID = ciphersuite.CipherSuiteID

// CipherSuite is one MLS cipher suite: its hash, KDF, AEAD, HPKE KEM and
// signature scheme. Get one with LookupSuite; ID returns its code point.
type CipherSuite = ciphersuite.CipherSuite

// Cipher suites. LookupSuite also knows the other suites of RFC 9420
// with X25519, P-256, P-384 or P-521 (code points 0x0001-0x0003, 0x0005,
// 0x0007).
const (
	// XWingAES128GCMSHA256Ed25519 is xchat's default suite: ML-KEM-768 with
	// X25519 (X-Wing), AES-128-GCM, SHA-256 and Ed25519, at a private-use
	// code point (spec/09-mls.md section 9.2).
	XWingAES128GCMSHA256Ed25519 = ciphersuite.XWingAES128GCMSHA256Ed25519
	// X25519AES128GCMSHA256Ed25519 is MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519,
	// the suite RFC 9420 makes mandatory to implement.
	X25519AES128GCMSHA256Ed25519 = ciphersuite.X25519AES128GCMSHA256Ed25519
)

// LookupSuite returns the cipher suite id, or an error when xchat does not
// implement it.
func LookupSuite(id CipherSuiteID) (*CipherSuite, error) { return ciphersuite.LookupSuite(id) }
