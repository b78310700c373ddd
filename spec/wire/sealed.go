package wire

import (
	"crypto/ed25519"
	"crypto/sha256"
)

// SenderCert is a domain-signed sender certificate.
type SenderCert struct {
	Body      []byte `cbor:"1,keyasint"` // encoded SenderCertBody
	Signature []byte `cbor:"2,keyasint"`
}

// SenderCertBody binds a sender device to its signature key.
type SenderCertBody struct {
	Address string `cbor:"1,keyasint"`
	Device  uint32 `cbor:"2,keyasint"`
	SigKey  []byte `cbor:"3,keyasint"`
	Expires uint64 `cbor:"4,keyasint"` // Unix seconds
}

// Inner is the sealed plaintext before padding.
type Inner struct {
	Cert      []byte `cbor:"1,keyasint"` // encoded SenderCert
	Signature []byte `cbor:"2,keyasint"` // by the sender device
	Payload   []byte `cbor:"3,keyasint"` // encoded Payload
}

func withContext(ctx string, parts ...[]byte) []byte {
	n := len(ctx) + 1
	for _, p := range parts {
		n += len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, ctx...)
	b = append(b, 0)
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

// DeviceAuthMessage returns the bytes a device signs to authenticate (with
// device 0 to register) on the TLS session whose exporter value is given.
func DeviceAuthMessage(address string, device uint32, exporter []byte) []byte {
	return withContext(ContextDeviceAuth, mustMarshal([]any{address, device}), exporter)
}

// SenderCertMessage returns the bytes a domain key signs for a certificate
// body.
func SenderCertMessage(body []byte) []byte {
	return withContext(ContextSenderCert, body)
}

// SealedMessage returns the bytes a sender device signs for a payload
// sealed with the envelope identifier id to the mailbox to: cert is the
// encoded sender certificate carried beside it (inner key 1), so that the
// signature binds the sender's identity claim.
func SealedMessage(id []byte, to Mailbox, cert, payload []byte) []byte {
	return withContext(ContextSealed, id, to.Encode(), cert, payload)
}

// EnvelopeInfo returns the HPKE info for sealing an envelope.
func EnvelopeInfo(id []byte, to Mailbox) []byte {
	return withContext(ContextEnvelope, id, to.Encode())
}

// TokenVerifier returns the verifier a server keeps for a delivery token.
func TokenVerifier(token []byte) [32]byte {
	return sha256.Sum256(withContext(ContextDeliveryToken, token))
}

// IssueSenderCert returns an encoded sender certificate for body, signed
// with the domain's sender-certificate key.
func IssueSenderCert(domainKey ed25519.PrivateKey, body SenderCertBody) ([]byte, error) {
	b, err := Marshal(&body)
	if err != nil {
		return nil, err
	}
	return Marshal(&SenderCert{Body: b, Signature: ed25519.Sign(domainKey, SenderCertMessage(b))})
}
