package wire

import "fmt"

// Request is a client request (spec/xchat.cddl "request").
type Request interface {
	header() *Header
	// Validate checks the fields a decoder cannot: lengths, counts,
	// addresses. Its errors are *Error.
	Validate() error
}

// Register creates an account with its first device or, with a link
// token, adds a device to an existing account (spec/05-accounts.md
// sections 5.5 and 5.11).
type Register struct {
	Header
	Address   string     `cbor:"1,keyasint"`
	Keys      DeviceKeys `cbor:"2,keyasint"`
	Invite    []byte     `cbor:"3,keyasint,omitempty"`
	Signature []byte     `cbor:"4,keyasint"`
	Link      []byte     `cbor:"5,keyasint,omitempty"` // link token, LinkTokenLen bytes
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

// GetDomainKey asks for the sender-certificate key of a domain.
type GetDomainKey struct {
	Header
	Domain string `cbor:"1,keyasint"`
}

func (r *GetDomainKey) Validate() error { return ValidateDomain(r.Domain) }

// CreateLink asks for a link token that lets one new device join the
// authenticated device's account (spec/05-accounts.md section 5.11).
type CreateLink struct {
	Header
}

// RemoveDevice removes a device of the authenticated device's account,
// itself included.
type RemoveDevice struct {
	Header
	Device uint32 `cbor:"1,keyasint"`
}

func (r *CreateLink) Validate() error { return nil }

func (r *RemoveDevice) Validate() error {
	if r.Device == 0 {
		return Errorf(CodeMalformed, "device id 0 is reserved")
	}
	return nil
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
	case *GetDomainKey:
		return TypeGetDomainKey
	case *CreateLink:
		return TypeCreateLink
	case *RemoveDevice:
		return TypeRemoveDevice
	case *BlobCreate:
		return TypeBlobCreate
	case *BlobPut:
		return TypeBlobPut
	case *BlobStatus:
		return TypeBlobStatus
	case *BlobFinish:
		return TypeBlobFinish
	case *BlobGet:
		return TypeBlobGet
	case *FedBlobGet:
		return TypeFedBlobGet
	case *CallJoin:
		return TypeCallJoin
	case *CallLeave:
		return TypeCallLeave
	case *FedCallJoin:
		return TypeFedCallJoin
	case *FedCallLeave:
		return TypeFedCallLeave
	case *FedHello:
		return TypeFedHello
	case *Relay:
		return TypeRelay
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
	case TypeGetDomainKey:
		r = new(GetDomainKey)
	case TypeCreateLink:
		r = new(CreateLink)
	case TypeRemoveDevice:
		r = new(RemoveDevice)
	case TypeBlobCreate:
		r = new(BlobCreate)
	case TypeBlobPut:
		r = new(BlobPut)
	case TypeBlobStatus:
		r = new(BlobStatus)
	case TypeBlobFinish:
		r = new(BlobFinish)
	case TypeBlobGet:
		r = new(BlobGet)
	case TypeCallJoin:
		r = new(CallJoin)
	case TypeCallLeave:
		r = new(CallLeave)
	default:
		return nil, Errorf(CodeUnknownRequest, "request type %d", t)
	}
	return decodeRequest(b, r)
}

// decodeRequest decodes the checked payload b into r and validates it.
func decodeRequest(b []byte, r Request) (Request, error) {
	if err := decodeChecked(b, r); err != nil {
		return nil, err
	}
	if err := r.Validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// peekType checks b and returns the value of its key 0. Map keys are in
// bytewise order of their encodings and 0x00 is the smallest encoding, so
// key 0, when present, is the first key.
func peekType(b []byte) (uint64, error) {
	if err := CheckDeterministic(b); err != nil {
		return 0, err
	}
	w := shapeWalker{b: b}
	major, n, next := w.head()
	if major != 5 {
		return 0, Errorf(CodeMalformed, "not a map")
	}
	if n == 0 || b[next] != 0x00 {
		return 0, Errorf(CodeMalformed, "no message type (key 0)")
	}
	w.pos = next + 1
	major, t, _ := w.head()
	if major != 0 {
		return 0, Errorf(CodeMalformed, "message type (key 0) is not an unsigned integer")
	}
	return t, nil
}

// The Validate methods check in the order of spec/03-framing.md section
// 3.3.1 step 4: the CDDL rule (malformed), then addresses
// (invalid_address), then array counts (limit_exceeded), then register's
// device keys (malformed).

func (r *Register) Validate() error {
	if len(r.Keys.SigKey) != 32 {
		return Errorf(CodeMalformed, "signature key of %d bytes, want 32", len(r.Keys.SigKey))
	}
	if r.Invite != nil && (len(r.Invite) == 0 || len(r.Invite) > MaxInviteToken) {
		return Errorf(CodeMalformed, "invite token of %d bytes, want 1 to %d", len(r.Invite), MaxInviteToken)
	}
	if r.Link != nil && len(r.Link) != LinkTokenLen {
		return Errorf(CodeMalformed, "link token of %d bytes, want %d", len(r.Link), LinkTokenLen)
	}
	if r.Invite != nil && r.Link != nil {
		return Errorf(CodeMalformed, "an invite token and a link token together")
	}
	if err := checkSig(r.Signature); err != nil {
		return err
	}
	if err := ValidateAddress(r.Address); err != nil {
		return err
	}
	return r.Keys.Validate() // spec/05-accounts.md section 5.3
}

func (r *Authenticate) Validate() error {
	if err := checkSig(r.Signature); err != nil {
		return err
	}
	m := Mailbox{Address: r.Address, Device: r.Device}
	return m.Validate()
}

func (r *ServerInfo) Validate() error { return nil }

func (r *GetDevices) Validate() error { return ValidateAddress(r.Address) }

func (r *PublishKeyPackages) Validate() error {
	for _, kp := range r.OneTime {
		if err := checkKeyPackage(kp); err != nil {
			return err
		}
	}
	if r.LastResort != nil {
		if err := checkKeyPackage(r.LastResort); err != nil {
			return err
		}
	}
	if len(r.OneTime) > MaxKeyPackagesPerPub {
		return Errorf(CodeLimitExceeded, "%d key packages, limit %d per request", len(r.OneTime), MaxKeyPackagesPerPub)
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
	// Every envelope's CDDL rule, then every address, then the count.
	for i := range r.Envelopes {
		if err := r.Envelopes[i].validateFields(); err != nil {
			return err
		}
	}
	for i := range r.Envelopes {
		if err := ValidateAddress(r.Envelopes[i].To.Address); err != nil {
			return err
		}
	}
	if len(r.Envelopes) == 0 || len(r.Envelopes) > MaxEnvelopesPerSend {
		return Errorf(CodeLimitExceeded, "%d envelopes, want 1 to %d", len(r.Envelopes), MaxEnvelopesPerSend)
	}
	return nil
}

func (r *Ack) Validate() error {
	for _, id := range r.IDs {
		if len(id) != 16 {
			return Errorf(CodeMalformed, "envelope id of %d bytes, want 16", len(id))
		}
	}
	if len(r.IDs) == 0 || len(r.IDs) > MaxIDsPerAck {
		return Errorf(CodeLimitExceeded, "%d ids, want 1 to %d", len(r.IDs), MaxIDsPerAck)
	}
	return nil
}

func (r *SetDeliveryPolicy) Validate() error {
	for _, v := range r.Verifiers {
		if len(v) != 32 {
			return Errorf(CodeMalformed, "verifier of %d bytes, want 32", len(v))
		}
	}
	if len(r.Verifiers) > MaxVerifiers {
		return Errorf(CodeLimitExceeded, "%d verifiers, limit %d", len(r.Verifiers), MaxVerifiers)
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
