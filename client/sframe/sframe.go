// Package sframe implements SFrame (RFC 9605) frame protection and the MLS key
// layout of spec section 12.7.
package sframe

import (
	"errors"
	"time"
)

// CipherSuite is an SFrame cipher suite identifier (RFC 9605 section 4.5).
type CipherSuite uint16

// Cipher suites of RFC 9605 section 8.1.
const (
	AES128CTRHMACSHA256_80 CipherSuite = 0x0001
	AES128CTRHMACSHA256_64 CipherSuite = 0x0002
	AES128CTRHMACSHA256_32 CipherSuite = 0x0003
	AES128GCMSHA256_128    CipherSuite = 0x0004
	AES256GCMSHA512_128    CipherSuite = 0x0005
)

// Sentinel errors; returned errors wrap them.
var (
	ErrAuth       = errors.New("sframe: authentication failed")
	ErrReplay     = errors.New("sframe: replayed counter")
	ErrUnknownKey = errors.New("sframe: unknown key")
	ErrMalformed  = errors.New("sframe: malformed")
)

var errTODO = errors.New("sframe: not implemented")

// Key is the SFrame key and salt of one KID.
type Key struct{}

// DeriveKey derives the key and salt of kid from baseKey.
func DeriveKey(cs CipherSuite, kid uint64, baseKey []byte) (*Key, error) { return nil, errTODO }

// Seal protects plaintext under counter ctr.
func (k *Key) Seal(ctr uint64, metadata, plaintext []byte) ([]byte, error) { return nil, errTODO }

// Open authenticates and decrypts an SFrame ciphertext.
func (k *Key) Open(metadata, sframeCiphertext []byte) (ctr uint64, plaintext []byte, err error) {
	return 0, nil, errTODO
}

// ParseHeader decodes an SFrame header.
func ParseHeader(b []byte) (kid, ctr uint64, headerLen int, err error) { return 0, 0, 0, errTODO }

// MLSKeyID returns the KID of a leaf in an epoch.
func MLSKeyID(leaf uint32, epoch uint64) uint64 { return uint64(leaf)<<8 | epoch&0xff }

// SplitMLSKeyID splits a KID.
func SplitMLSKeyID(kid uint64) (leaf uint32, epochLow uint8, err error) { return 0, 0, errTODO }

// MLSSender protects frames.
type MLSSender struct{}

// NewMLSSender returns a sender.
func NewMLSSender(leaf uint32) *MLSSender { return &MLSSender{} }

// SetEpoch sets the epoch.
func (s *MLSSender) SetEpoch(epoch uint64, baseKey []byte) error { return errTODO }

// Protect protects a frame.
func (s *MLSSender) Protect(metadata, plaintext []byte) ([]byte, error) { return nil, errTODO }

// MLSReceiver opens frames.
type MLSReceiver struct{}

// NewMLSReceiver returns a receiver.
func NewMLSReceiver() *MLSReceiver { return &MLSReceiver{} }

// AddEpoch adds an epoch.
func (r *MLSReceiver) AddEpoch(epoch uint64, baseKey []byte, now time.Time) {}

// Unprotect opens a frame.
func (r *MLSReceiver) Unprotect(metadata, ct []byte, now time.Time) (leaf uint32, epoch uint64, plaintext []byte, err error) {
	return 0, 0, nil, errTODO
}
