package sframe

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"hash"
)

// CipherSuite is an SFrame cipher suite identifier (RFC 9605 section 4.5).
type CipherSuite uint16

// The cipher suites of RFC 9605 section 8.1 (0x0001 to 0x0005) and the
// AES-256-CTR suites of the SFrame working group's test vectors (0x0006 to
// 0x0008). Calls use AES128GCMSHA256_128 (spec 12.7).
const (
	AES128CTRHMACSHA256_80 CipherSuite = 0x0001
	AES128CTRHMACSHA256_64 CipherSuite = 0x0002
	AES128CTRHMACSHA256_32 CipherSuite = 0x0003
	AES128GCMSHA256_128    CipherSuite = 0x0004
	AES256GCMSHA512_128    CipherSuite = 0x0005
	AES256CTRHMACSHA512_80 CipherSuite = 0x0006
	AES256CTRHMACSHA512_64 CipherSuite = 0x0007
	AES256CTRHMACSHA512_32 CipherSuite = 0x0008
)

// nonceSize is Nn of every suite.
const nonceSize = 12

// suiteParams are the sizes and primitives of a cipher suite.
type suiteParams struct {
	hash   func() hash.Hash
	keyLen int // Nk: the whole key, encryption and authentication
	encLen int // Nka for the CTR suites; Nk for GCM
	tagLen int // Nt
	gcm    bool
}

// params returns the parameters of cs, or false for an unknown suite.
func (cs CipherSuite) params() (suiteParams, bool) {
	switch cs {
	case AES128CTRHMACSHA256_80:
		return suiteParams{sha256.New, 48, 16, 10, false}, true
	case AES128CTRHMACSHA256_64:
		return suiteParams{sha256.New, 48, 16, 8, false}, true
	case AES128CTRHMACSHA256_32:
		return suiteParams{sha256.New, 48, 16, 4, false}, true
	case AES128GCMSHA256_128:
		return suiteParams{sha256.New, 16, 16, 16, true}, true
	case AES256GCMSHA512_128:
		return suiteParams{sha512.New, 32, 32, 16, true}, true
	case AES256CTRHMACSHA512_80:
		return suiteParams{sha512.New, 96, 32, 10, false}, true
	case AES256CTRHMACSHA512_64:
		return suiteParams{sha512.New, 96, 32, 8, false}, true
	case AES256CTRHMACSHA512_32:
		return suiteParams{sha512.New, 96, 32, 4, false}, true
	}
	return suiteParams{}, false
}

// Overhead returns the tag length Nt of cs, or 0 for an unknown suite.
func (cs CipherSuite) Overhead() int {
	p, _ := cs.params()
	return p.tagLen
}

// String returns the suite's RFC 9605 name.
func (cs CipherSuite) String() string {
	switch cs {
	case AES128CTRHMACSHA256_80:
		return "AES_128_CTR_HMAC_SHA256_80"
	case AES128CTRHMACSHA256_64:
		return "AES_128_CTR_HMAC_SHA256_64"
	case AES128CTRHMACSHA256_32:
		return "AES_128_CTR_HMAC_SHA256_32"
	case AES128GCMSHA256_128:
		return "AES_128_GCM_SHA256_128"
	case AES256GCMSHA512_128:
		return "AES_256_GCM_SHA512_128"
	case AES256CTRHMACSHA512_80:
		return "AES_256_CTR_HMAC_SHA512_80"
	case AES256CTRHMACSHA512_64:
		return "AES_256_CTR_HMAC_SHA512_64"
	case AES256CTRHMACSHA512_32:
		return "AES_256_CTR_HMAC_SHA512_32"
	}
	return fmt.Sprintf("CipherSuite(0x%04x)", uint16(cs))
}

// newAEAD returns the AEAD of suite p keyed with key (Nk bytes). The result
// is safe for concurrent use.
func newAEAD(p suiteParams, key []byte) (cipher.AEAD, error) {
	if len(key) != p.keyLen {
		return nil, fmt.Errorf("%w: key of %d bytes, want %d", ErrMalformed, len(key), p.keyLen)
	}
	block, err := aes.NewCipher(key[:p.encLen])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformed, err)
	}
	if p.gcm {
		return cipher.NewGCM(block)
	}
	return &ctrHMAC{block: block, authKey: key[p.encLen:], hash: p.hash, tagLen: p.tagLen}, nil
}

// ctrHMAC is the AES-CTR with HMAC construction of RFC 9605 section 4.5.1.
type ctrHMAC struct {
	block   cipher.Block
	authKey []byte
	hash    func() hash.Hash
	tagLen  int
}

func (c *ctrHMAC) NonceSize() int { return nonceSize }
func (c *ctrHMAC) Overhead() int  { return c.tagLen }

// Seal appends AES-CTR(plaintext) and its truncated HMAC tag to dst.
func (c *ctrHMAC) Seal(dst, nonce, plaintext, aad []byte) []byte {
	if len(nonce) != nonceSize {
		panic("sframe: bad nonce length")
	}
	n := len(dst)
	out := append(dst, make([]byte, len(plaintext)+c.tagLen)...)
	ct := out[n : n+len(plaintext)]
	c.xor(ct, nonce, plaintext)
	c.tag(out[n+len(plaintext):], nonce, aad, ct)
	return out
}

// Open verifies the tag of ciphertext, then appends its decryption to dst.
func (c *ctrHMAC) Open(dst, nonce, ciphertext, aad []byte) ([]byte, error) {
	if len(nonce) != nonceSize {
		panic("sframe: bad nonce length")
	}
	if len(ciphertext) < c.tagLen {
		return nil, ErrAuth
	}
	ct, got := ciphertext[:len(ciphertext)-c.tagLen], ciphertext[len(ciphertext)-c.tagLen:]
	var want [64]byte
	c.tag(want[:c.tagLen], nonce, aad, ct)
	if subtle.ConstantTimeCompare(got, want[:c.tagLen]) != 1 {
		return nil, ErrAuth
	}
	n := len(dst)
	out := append(dst, make([]byte, len(ct))...)
	c.xor(out[n:], nonce, ct)
	return out, nil
}

// xor encrypts or decrypts src into dst with AES-CTR from nonce || 0^32.
func (c *ctrHMAC) xor(dst, nonce, src []byte) {
	var iv [aes.BlockSize]byte
	copy(iv[:], nonce)
	cipher.NewCTR(c.block, iv[:]).XORKeyStream(dst, src)
}

// tag writes the first len(dst) bytes of the HMAC of RFC 9605 section
// 4.5.1: the lengths of aad, ct and the tag, 8 bytes each, then nonce, aad
// and ct.
func (c *ctrHMAC) tag(dst, nonce, aad, ct []byte) {
	m := hmac.New(c.hash, c.authKey)
	var lens [24]byte
	binary.BigEndian.PutUint64(lens[0:], uint64(len(aad)))
	binary.BigEndian.PutUint64(lens[8:], uint64(len(ct)))
	binary.BigEndian.PutUint64(lens[16:], uint64(c.tagLen))
	m.Write(lens[:])
	m.Write(nonce)
	m.Write(aad)
	m.Write(ct)
	var sum [64]byte
	copy(dst, m.Sum(sum[:0]))
}
