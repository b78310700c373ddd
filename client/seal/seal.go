// Package seal seals and opens xchat envelopes (spec/07-envelopes.md):
// HPKE to the recipient device's key, with the sender's certificate and
// signature inside, padded to a bucket.
package seal

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// Errors of Open; each failure wraps one of them.
var (
	ErrDecrypt     = errors.New("seal: cannot decrypt")
	ErrPadding     = errors.New("seal: bad padding")
	ErrMalformed   = errors.New("seal: malformed content")
	ErrCertificate = errors.New("seal: sender certificate does not verify")
	ErrExpired     = errors.New("seal: sender certificate expired")
	ErrSignature   = errors.New("seal: sender signature does not verify")
	ErrTooLarge    = errors.New("seal: content too large for an envelope")
	// ErrNoDomainKey means the sender's domain key could not be had now;
	// the envelope may open later.
	ErrNoDomainKey = errors.New("seal: sender domain key unavailable")
)

// ClockSkew is the grace allowed on a sender certificate's expiry.
const ClockSkew = 5 * time.Minute

func suite() (hpke.KDF, hpke.AEAD) { return hpke.HKDFSHA256(), hpke.AES128GCM() }

// Sender is what a device needs to seal: its certificate and the signature
// key that certificate names.
type Sender struct {
	Cert   []byte // encoded wire.SenderCert
	SigKey ed25519.PrivateKey
}

// Seal returns the sealed value of an envelope with the given id to the
// recipient device, whose public keys are given.
func Seal(s Sender, id []byte, to wire.Mailbox, keys wire.DeviceKeys, payload []byte) ([]byte, error) {
	kem, err := hpke.NewKEM(keys.KEM)
	if err != nil {
		return nil, fmt.Errorf("seal: recipient KEM: %w", err)
	}
	pk, err := kem.NewPublicKey(keys.HPKEKey)
	if err != nil {
		return nil, fmt.Errorf("seal: recipient key: %w", err)
	}
	in := wire.Inner{
		Cert:      s.Cert,
		Signature: ed25519.Sign(s.SigKey, wire.SealedMessage(id, to, s.Cert, payload)),
		Payload:   payload,
	}
	plain, err := wire.Marshal(&in)
	if err != nil {
		return nil, err
	}
	bucket := wire.Bucket(len(plain) + 1)
	if bucket == 0 {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(plain)+1, wire.MaxBucket)
	}
	padded := make([]byte, bucket)
	copy(padded, plain)
	padded[len(plain)] = 0x80
	kdf, aead := suite()
	return hpke.Seal(pk, kdf, aead, wire.EnvelopeInfo(id, to), padded)
}

// Opened is a verified envelope.
type Opened struct {
	From    wire.Mailbox // the sender device, from its certificate
	Cert    wire.SenderCertBody
	Payload []byte // encoded payload, signed by the sender
}

// DomainKeys returns the sender-certificate key of a domain.
type DomainKeys func(domain string) (ed25519.PublicKey, error)

// Open decrypts a sealed value addressed to the device whose HPKE private
// key is priv, and verifies the sender's certificate (with the domain key
// from keys, valid at now) and signature.
func Open(priv hpke.PrivateKey, id []byte, to wire.Mailbox, sealed []byte, keys DomainKeys, now time.Time) (*Opened, error) {
	kdf, aead := suite()
	padded, err := hpke.Open(priv, kdf, aead, wire.EnvelopeInfo(id, to), sealed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrDecrypt, err)
	}
	end := len(bytes.TrimRight(padded, "\x00"))
	if end == 0 || padded[end-1] != 0x80 || wire.Bucket(len(padded)) != len(padded) {
		return nil, ErrPadding
	}
	var in wire.Inner
	if err := wire.Unmarshal(padded[:end-1], &in); err != nil {
		return nil, fmt.Errorf("%w: inner: %w", ErrMalformed, err)
	}
	body, err := VerifyCert(in.Cert, keys, now)
	if err != nil {
		return nil, err
	}
	if len(in.Signature) != ed25519.SignatureSize ||
		!ed25519.Verify(body.SigKey, wire.SealedMessage(id, to, in.Cert, in.Payload), in.Signature) {
		return nil, ErrSignature
	}
	return &Opened{
		From:    wire.Mailbox{Address: body.Address, Device: body.Device},
		Cert:    *body,
		Payload: in.Payload,
	}, nil
}

// VerifyCert decodes a sender certificate and checks its signature with its
// domain's key and its expiry at now.
func VerifyCert(cert []byte, keys DomainKeys, now time.Time) (*wire.SenderCertBody, error) {
	var c wire.SenderCert
	if err := wire.Unmarshal(cert, &c); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	var body wire.SenderCertBody
	if err := wire.Unmarshal(c.Body, &body); err != nil {
		return nil, fmt.Errorf("%w: body: %w", ErrMalformed, err)
	}
	m := wire.Mailbox{Address: body.Address, Device: body.Device}
	if err := m.Validate(); err != nil || len(body.SigKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: invalid sender", ErrMalformed)
	}
	_, domain := wire.SplitAddress(body.Address)
	dk, err := keys(domain)
	if err != nil {
		return nil, fmt.Errorf("%w: key of %s: %w", ErrNoDomainKey, domain, err)
	}
	if len(c.Signature) != ed25519.SignatureSize || !ed25519.Verify(dk, wire.SenderCertMessage(c.Body), c.Signature) {
		return nil, ErrCertificate
	}
	if expired(body.Expires, now) {
		return nil, ErrExpired
	}
	return &body, nil
}

// CheckOrigin applies the rest of spec/07-envelopes.md section 7.8 step
// 6 to an opened envelope that the domain origin relayed (origin empty: a
// local send): the received-at time its certificate was checked at is the
// relaying domain's word (section 8.8.1), which vouches only for that
// domain's own users, so the certificate must be of origin. Otherwise the
// error wraps ErrCertificate.
func CheckOrigin(o *Opened, origin string) error {
	if origin == "" {
		return nil
	}
	if _, domain := wire.SplitAddress(o.Cert.Address); domain != origin {
		return fmt.Errorf("%w: a certificate of %s relayed by %s", ErrCertificate, domain, origin)
	}
	return nil
}

// expired applies spec/07-envelopes.md section 7.8 step 6: a certificate
// is accepted when received-at ≤ expires × 1000 + 300,000, in Unix
// milliseconds, without overflow.
func expired(expires uint64, now time.Time) bool {
	ms := now.UnixMilli()
	if ms < 0 {
		return false
	}
	skew := uint64(ClockSkew / time.Millisecond)
	if expires > (math.MaxUint64-skew)/1000 {
		return false
	}
	return uint64(ms) > expires*1000+skew
}
