// Package sframe protects media frames with SFrame (RFC 9605): the SFrame
// header, the derivation of a key and salt from a base key, and the
// authenticated encryption of every cipher suite of RFC 9605 section 4.5
// (and the AES-256-CTR-HMAC-SHA512 suites of its test vectors).
//
// MLSSender and MLSReceiver add the key layout of spec/12-calls.md section
// 12.7: one base key per MLS epoch, a KID per sender leaf and epoch, past
// epochs kept for frames in flight, and a replay window per KID.
package sframe

import "errors"

// Sentinel errors. Every error of the package wraps one of them; none holds
// key material.
var (
	// ErrAuth reports a ciphertext whose tag does not verify under the key.
	ErrAuth = errors.New("sframe: authentication failed")
	// ErrReplay reports a counter already accepted under a KID, or one
	// below the replay window.
	ErrReplay = errors.New("sframe: replayed counter")
	// ErrUnknownKey reports a KID the receiver holds no key for: another
	// KID than the key's, an epoch it does not know or no longer keeps, or
	// a KID outside the MLS layout.
	ErrUnknownKey = errors.New("sframe: unknown key")
	// ErrMalformed reports bytes that are not an SFrame ciphertext, or an
	// argument out of range (a cipher suite, a base key, a leaf index).
	ErrMalformed = errors.New("sframe: malformed")
)
