package wire

import "crypto/mlkem"

// Message types: the value of key 0 in requests, responses and push frames.
const (
	TypeRegister           = 1
	TypeAuthenticate       = 2
	TypeServerInfo         = 3
	TypeGetDevices         = 4
	TypePublishKeyPackages = 5
	TypeClaimKeyPackage    = 6
	TypeSend               = 7
	TypeAck                = 8
	TypeSetDeliveryPolicy  = 9
	TypeGetSenderCert      = 10
	TypeGetDomainKey       = 11
	TypeCreateLink         = 12
	TypeRemoveDevice       = 13
	TypeBlobCreate         = 14
	TypeBlobPut            = 15
	TypeBlobStatus         = 16
	TypeBlobFinish         = 17
	TypeBlobGet            = 18
	TypeCallJoin           = 19
	TypeCallLeave          = 20

	TypeSuccess = 0 // response
	TypeError   = 1 // response

	TypeDeliver  = 32 // push
	TypeCaughtUp = 33 // push

	TypeFedHello     = 64 // federation request
	TypeRelay        = 65 // federation request
	TypeFedBlobGet   = 66 // federation request
	TypeFedCallJoin  = 67 // federation request
	TypeFedCallLeave = 68 // federation request
)

// Header is key 0 of every request, response and push frame: the message
// type. Encoders set it; it is embedded in every message struct.
type Header struct {
	Type uint64 `cbor:"0,keyasint"`
}

func (h *Header) header() *Header { return h }

// Mailbox names one device's mailbox.
type Mailbox struct {
	Address string `cbor:"1,keyasint"`
	Device  uint32 `cbor:"2,keyasint"`
}

// Validate checks that the device is not 0 (malformed), then the address
// (invalid_address).
func (m *Mailbox) Validate() error {
	if m.Device == 0 {
		return Errorf(CodeMalformed, "device id 0 is reserved")
	}
	return ValidateAddress(m.Address)
}

// Encode returns the deterministic encoding of the mailbox map, as used in
// signatures and the HPKE info.
func (m Mailbox) Encode() []byte { return mustMarshal(m) }

// DeviceKeys are a device's public keys.
type DeviceKeys struct {
	SigKey  []byte `cbor:"1,keyasint"` // Ed25519
	KEM     uint16 `cbor:"2,keyasint"` // HPKE KEM id
	HPKEKey []byte `cbor:"3,keyasint"`
}

// Validate checks key lengths and the KEM.
func (k *DeviceKeys) Validate() error {
	if len(k.SigKey) != 32 {
		return Errorf(CodeMalformed, "signature key of %d bytes, want 32", len(k.SigKey))
	}
	if k.KEM != KEMXWing {
		return Errorf(CodeMalformed, "KEM 0x%04x not supported, want 0x%04x (X-Wing)", k.KEM, KEMXWing)
	}
	if len(k.HPKEKey) != XWingPublicKeyLen {
		return Errorf(CodeMalformed, "X-Wing key of %d bytes, want %d", len(k.HPKEKey), XWingPublicKeyLen)
	}
	// The encapsulation key check of FIPS 203 (every coefficient below q)
	// on the ML-KEM-768 part (spec/05-accounts.md section 5.3); every 32
	// bytes are an X25519 public key.
	if _, err := mlkem.NewEncapsulationKey768(k.HPKEKey[:XWingPublicKeyLen-32]); err != nil {
		return Errorf(CodeMalformed, "X-Wing key: ML-KEM-768 part: %v", err)
	}
	return nil
}

// EncLen returns the HPKE encapsulation length of the KEM.
func (k *DeviceKeys) EncLen() int { return EncLen(k.KEM) }

// EncLen returns the HPKE encapsulation length of a KEM, 0 if unknown.
func EncLen(kem uint16) int {
	if kem == KEMXWing {
		return XWingEncLen
	}
	return 0
}

// DeviceInfo is one device in a get-devices response.
type DeviceInfo struct {
	ID   uint32     `cbor:"1,keyasint"`
	Keys DeviceKeys `cbor:"2,keyasint"`
}

// Envelope is a sealed envelope as sent.
type Envelope struct {
	ID     []byte  `cbor:"1,keyasint"`
	To     Mailbox `cbor:"2,keyasint"`
	Token  []byte  `cbor:"3,keyasint,omitempty"`
	Sealed []byte  `cbor:"4,keyasint"`
	// AcceptedAt is set only in a relay: when the origin server accepted
	// the envelope, Unix milliseconds. Servers ignore it in a send.
	AcceptedAt uint64 `cbor:"5,keyasint,omitempty"`
}

// Validate checks the envelope's fields, not its sealed length, which
// depends on the recipient's key.
func (e *Envelope) Validate() error {
	if err := e.validateFields(); err != nil {
		return err
	}
	return ValidateAddress(e.To.Address)
}

// validateFields checks everything Validate does except the address.
func (e *Envelope) validateFields() error {
	if len(e.ID) != 16 {
		return Errorf(CodeMalformed, "envelope id of %d bytes, want 16", len(e.ID))
	}
	if e.To.Device == 0 {
		return Errorf(CodeMalformed, "device id 0 is reserved")
	}
	if e.Token != nil && len(e.Token) != 32 {
		return Errorf(CodeMalformed, "delivery token of %d bytes, want 32", len(e.Token))
	}
	// An empty or odd-sized sealed value is the server's per-envelope
	// bad_padding (spec/07-envelopes.md), not a malformed request.
	return nil
}
