package wire

import "time"

// ErrorFrame is an error response (spec/xchat.cddl "error").
type ErrorFrame struct {
	Header
	Code       Code   `cbor:"1,keyasint"`
	Message    string `cbor:"2,keyasint"`
	RetryAfter uint64 `cbor:"3,keyasint,omitempty"` // milliseconds
}

// OK is the success response of requests that return nothing else.
type OK struct {
	Header
}

// RegisterOK answers Register.
type RegisterOK struct {
	Header
	Device uint32 `cbor:"1,keyasint"`
}

// Registration policies as announced in ServerInfoOK.
const (
	RegistrationOpen   = 0
	RegistrationInvite = 1
	RegistrationClosed = 2
)

// ServerInfoOK answers ServerInfo.
type ServerInfoOK struct {
	Header
	Domain       string `cbor:"1,keyasint"`
	CertKey      []byte `cbor:"2,keyasint"` // Ed25519 sender-certificate key
	Registration uint8  `cbor:"3,keyasint"`
	Limits       Limits `cbor:"4,keyasint"`
}

// Limits are the limits a server announces.
type Limits struct {
	MaxFrame            uint64 `cbor:"1,keyasint"`
	MaxSealed           uint64 `cbor:"2,keyasint"`
	MaxEnvelopesPerSend uint64 `cbor:"3,keyasint"`
	MaxIDsPerAck        uint64 `cbor:"4,keyasint"`
	MaxKeyPackages      uint64 `cbor:"5,keyasint"`
	MaxKeyPackageLen    uint64 `cbor:"6,keyasint"`
	RetentionSeconds    uint64 `cbor:"7,keyasint"`
	MailboxMaxEnvelopes uint64 `cbor:"8,keyasint"`
}

// GetDevicesOK answers GetDevices.
type GetDevicesOK struct {
	Header
	Devices []DeviceInfo `cbor:"1,keyasint"`
}

// PublishKeyPackagesOK answers PublishKeyPackages.
type PublishKeyPackagesOK struct {
	Header
	Stored uint64 `cbor:"1,keyasint"`
}

// ClaimKeyPackageOK answers ClaimKeyPackage.
type ClaimKeyPackageOK struct {
	Header
	KeyPackage []byte `cbor:"1,keyasint"`
	LastResort bool   `cbor:"2,keyasint"`
}

// SendOK answers Send with one result per envelope, in order.
type SendOK struct {
	Header
	Results []Code `cbor:"1,keyasint"`
}

// SenderCertOK answers GetSenderCert.
type SenderCertOK struct {
	Header
	Cert []byte `cbor:"1,keyasint"`
}

// EncodeSuccess returns the frame of a success response.
func EncodeSuccess(v interface{ header() *Header }) ([]byte, error) {
	v.header().Type = TypeSuccess
	return EncodeFrame(v)
}

// EncodeError returns the frame of an error response for err: its *Error,
// or internal.
func EncodeError(err error) []byte {
	e := &Error{Code: CodeInternal, Message: "internal error"}
	if pe, ok := err.(*Error); ok {
		e = pe
	} else if c := CodeOf(err); c != CodeInternal {
		e = &Error{Code: c, Message: err.Error()}
	}
	msg := e.Message
	if len(msg) > MaxErrorMessage {
		msg = msg[:MaxErrorMessage]
	}
	f := ErrorFrame{Header: Header{Type: TypeError}, Code: e.Code, Message: msg,
		RetryAfter: uint64(e.RetryAfter / time.Millisecond)}
	b, _ := EncodeFrame(&f) // cannot fail: bounded sizes
	return b
}

// DecodeResponse decodes a response payload: an error response becomes an
// *Error; a success response is decoded into ok.
func DecodeResponse(b []byte, ok any) error {
	t, err := peekType(b)
	if err != nil {
		return err
	}
	switch t {
	case TypeSuccess:
		return decodeChecked(b, ok)
	case TypeError:
		var f ErrorFrame
		if err := decodeChecked(b, &f); err != nil {
			return err
		}
		return &Error{Code: f.Code, Message: f.Message, RetryAfter: time.Duration(f.RetryAfter) * time.Millisecond}
	}
	return Errorf(CodeMalformed, "response type %d", t)
}
