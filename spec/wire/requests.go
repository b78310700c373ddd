package wire

import "fmt"

// Request is a client request (spec/xchat.cddl "request").
type Request interface {
	header() *Header
	// Validate checks the fields a decoder cannot: lengths, counts,
	// addresses. Its errors are *Error.
	Validate() error
}

// Register creates an account with its first device.
type Register struct {
	Header
	Address   string     `cbor:"1,keyasint"`
	Keys      DeviceKeys `cbor:"2,keyasint"`
	Invite    []byte     `cbor:"3,keyasint,omitempty"`
	Signature []byte     `cbor:"4,keyasint"`
}

// Authenticate authenticates the connection as a device.
type Authenticate struct {
	Header
	Address   string `cbor:"1,keyasint"`
	Device    uint32 `cbor:"2,keyasint"`
	Signature []byte `cbor:"3,keyasint"`
}

// ServerInfo asks for the server's domain, key, policy and limits.
type ServerInfo struct {
	Header
}

// GetDevices asks for an account's devices and their public keys.
type GetDevices struct {
	Header
	Address string `cbor:"1,keyasint"`
}

// PublishKeyPackages uploads key packages for the authenticated device.
type PublishKeyPackages struct {
	Header
	OneTime    [][]byte `cbor:"1,keyasint,omitempty"`
	LastResort []byte   `cbor:"2,keyasint,omitempty"`
}

// ClaimKeyPackage takes one key package of a device.
type ClaimKeyPackage struct {
	Header
	Address string `cbor:"1,keyasint"`
	Device  uint32 `cbor:"2,keyasint"`
}

// Send submits sealed envelopes.
type Send struct {
	Header
	Envelopes []Envelope `cbor:"1,keyasint"`
}

// Ack acknowledges envelopes delivered to the authenticated device.
type Ack struct {
	Header
	IDs [][]byte `cbor:"1,keyasint"`
}

// SetDeliveryPolicy replaces the account's token verifiers and request-lane
// switch.
type SetDeliveryPolicy struct {
	Header
	Verifiers       [][]byte `cbor:"1,keyasint"`
	RequestLaneOpen bool     `cbor:"2,keyasint"`
}

// GetSenderCert asks for a sender certificate for the authenticated device.
type GetSenderCert struct {
	Header
}

// RequestType returns the message type of a request.
func RequestType(r Request) uint64 {
	switch r.(type) {
	case *Register:
		return TypeRegister
	case *Authenticate:
		return TypeAuthenticate
	case *ServerInfo:
		return TypeServerInfo
	case *GetDevices:
		return TypeGetDevices
	case *PublishKeyPackages:
		return TypePublishKeyPackages
	case *ClaimKeyPackage:
		return TypeClaimKeyPackage
	case *Send:
		return TypeSend
	case *Ack:
		return TypeAck
	case *SetDeliveryPolicy:
		return TypeSetDeliveryPolicy
	case *GetSenderCert:
		return TypeGetSenderCert
	}
	panic(fmt.Sprintf("wire: unknown request type %T", r))
}

// EncodeRequest sets the request's type and returns its frame.
func EncodeRequest(r Request) ([]byte, error) {
	r.header().Type = RequestType(r)
	return EncodeFrame(r)
}

// DecodeRequest decodes and validates a request frame payload.
func DecodeRequest(b []byte) (Request, error) {
	t, err := peekType(b)
	if err != nil {
		return nil, err
	}
	var r Request
	switch t {
	case TypeRegister:
		r = new(Register)
	case TypeAuthenticate:
		r = new(Authenticate)
	case TypeServerInfo:
		r = new(ServerInfo)
	case TypeGetDevices:
		r = new(GetDevices)
	case TypePublishKeyPackages:
		r = new(PublishKeyPackages)
	case TypeClaimKeyPackage:
		r = new(ClaimKeyPackage)
	case TypeSend:
		r = new(Send)
	case TypeAck:
		r = new(Ack)
	case TypeSetDeliveryPolicy:
		r = new(SetDeliveryPolicy)
	case TypeGetSenderCert:
		r = new(GetSenderCert)
	default:
		return nil, Errorf(CodeUnknownRequest, "request type %d", t)
	}
	if err := decodeChecked(b, r); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// peekType checks b and returns the value of its key 0.
func peekType(b []byte) (uint64, error) {
	var h struct {
		Type *uint64 `cbor:"0,keyasint"`
	}
	if err := Unmarshal(b, &h); err != nil {
		return 0, err
	}
	if h.Type == nil {
		return 0, Errorf(CodeMalformed, "no message type (key 0)")
	}
	return *h.Type, nil
}

// decodeChecked decodes b, already checked by CheckDeterministic, into v.
func decodeChecked(b []byte, v any) error {
	if err := decMode.Unmarshal(b, v); err != nil {
		return Errorf(CodeMalformed, "decode %T: %v", v, err)
	}
	return nil
}

func (r *Register) Validate() error {
	if err := ValidateAddress(r.Address); err != nil {
		return err
	}
	if err := r.Keys.Validate(); err != nil {
		return err
	}
	if r.Invite != nil && (len(r.Invite) == 0 || len(r.Invite) > MaxInviteToken) {
		return Errorf(CodeMalformed, "invite token of %d bytes, want 1 to %d", len(r.Invite), MaxInviteToken)
	}
	return checkSig(r.Signature)
}

func (r *Authenticate) Validate() error {
	m := Mailbox{Address: r.Address, Device: r.Device}
	if err := m.Validate(); err != nil {
		return err
	}
	return checkSig(r.Signature)
}

func (r *ServerInfo) Validate() error { return nil }

func (r *GetDevices) Validate() error { return ValidateAddress(r.Address) }

func (r *PublishKeyPackages) Validate() error {
	if len(r.OneTime) > MaxKeyPackagesPerPub {
		return Errorf(CodeLimitExceeded, "%d key packages, limit %d per request", len(r.OneTime), MaxKeyPackagesPerPub)
	}
	for _, kp := range r.OneTime {
		if err := checkKeyPackage(kp); err != nil {
			return err
		}
	}
	if r.LastResort != nil {
		return checkKeyPackage(r.LastResort)
	}
	return nil
}

func checkKeyPackage(kp []byte) error {
	if len(kp) == 0 || len(kp) > MaxKeyPackageLen {
		return Errorf(CodeMalformed, "key package of %d bytes, want 1 to %d", len(kp), MaxKeyPackageLen)
	}
	return nil
}

func (r *ClaimKeyPackage) Validate() error {
	m := Mailbox{Address: r.Address, Device: r.Device}
	return m.Validate()
}

func (r *Send) Validate() error {
	if len(r.Envelopes) == 0 || len(r.Envelopes) > MaxEnvelopesPerSend {
		return Errorf(CodeLimitExceeded, "%d envelopes, want 1 to %d", len(r.Envelopes), MaxEnvelopesPerSend)
	}
	for i := range r.Envelopes {
		if err := r.Envelopes[i].Validate(); err != nil {
			return err
		}
	}
	return nil
}

func (r *Ack) Validate() error {
	if len(r.IDs) == 0 || len(r.IDs) > MaxIDsPerAck {
		return Errorf(CodeLimitExceeded, "%d ids, want 1 to %d", len(r.IDs), MaxIDsPerAck)
	}
	for _, id := range r.IDs {
		if len(id) != 16 {
			return Errorf(CodeMalformed, "envelope id of %d bytes, want 16", len(id))
		}
	}
	return nil
}

func (r *SetDeliveryPolicy) Validate() error {
	if len(r.Verifiers) > MaxVerifiers {
		return Errorf(CodeLimitExceeded, "%d verifiers, limit %d", len(r.Verifiers), MaxVerifiers)
	}
	for _, v := range r.Verifiers {
		if len(v) != 32 {
			return Errorf(CodeMalformed, "verifier of %d bytes, want 32", len(v))
		}
	}
	return nil
}

func (r *GetSenderCert) Validate() error { return nil }

func checkSig(sig []byte) error {
	if len(sig) != 64 {
		return Errorf(CodeMalformed, "signature of %d bytes, want 64", len(sig))
	}
	return nil
}
