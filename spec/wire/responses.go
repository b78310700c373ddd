package wire

import (
	"errors"
	"math"
	"strings"
	"time"
	"unicode/utf8"
)

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

// CreateLinkOK answers CreateLink.
type CreateLinkOK struct {
	Header
	Token   []byte `cbor:"1,keyasint"` // LinkTokenLen bytes
	Expires uint64 `cbor:"2,keyasint"` // Unix seconds
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
	// RegistrationBurst and RegistrationIntervalMs announce the server's
	// limit on register attempts per source IP address: a burst, then one
	// more per interval (milliseconds). Zero (absent): not announced.
	RegistrationBurst      uint64 `cbor:"9,keyasint,omitempty"`
	RegistrationIntervalMs uint64 `cbor:"10,keyasint,omitempty"`
	// Keys 11 to 15 are the blob limits of a server that offers files
	// (spec/11-files.md section 11.8). MaxBlobSize zero (absent): the
	// server does not offer files. BlobQuota or MaxUnfinishedUploads zero
	// (absent): the server sets no such limit.

	// MaxBlobSize is the largest blob the server accepts, in bytes.
	MaxBlobSize uint64 `cbor:"11,keyasint,omitempty"`
	// BlobQuota is how many bytes of unexpired blobs one account may hold,
	// unfinished uploads counted at their full size.
	BlobQuota uint64 `cbor:"12,keyasint,omitempty"`
	// BlobRetentionSeconds is how long a finished blob is kept after
	// blob-finish; never less than RetentionSeconds.
	BlobRetentionSeconds uint64 `cbor:"13,keyasint,omitempty"`
	// UploadLifetimeSeconds is how long an unfinished upload is kept after
	// blob-create.
	UploadLifetimeSeconds uint64 `cbor:"14,keyasint,omitempty"`
	// MaxUnfinishedUploads is how many unfinished uploads one account may
	// have.
	MaxUnfinishedUploads uint64 `cbor:"15,keyasint,omitempty"`
	// Keys 16 and 17 are the call limits of a server that relays calls
	// (spec/12-calls.md section 12.10). MaxCallMembers zero (absent): the
	// server does not relay calls.
	// MaxCallMembers is how many devices of this server one room admits.
	MaxCallMembers uint64 `cbor:"16,keyasint,omitempty"`
	// MaxCallRooms is how many rooms the devices of one account may be in
	// at once.
	MaxCallRooms uint64 `cbor:"17,keyasint,omitempty"`
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

// DomainKeyOK answers GetDomainKey.
type DomainKeyOK struct {
	Header
	Key []byte `cbor:"1,keyasint"`
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

// EncodeError returns the frame of an error response for err: the code,
// message and retry-after of the *Error it is or wraps, or internal. The
// message is made valid UTF-8 and cut, on a character boundary, to
// MaxErrorMessage bytes; code 0, which never appears in an error response,
// becomes internal.
func EncodeError(err error) []byte {
	e := &Error{Code: CodeInternal, Message: "internal error"}
	var pe *Error
	if errors.As(err, &pe) && pe.Code != CodeOK {
		e = &Error{Code: pe.Code, Message: pe.Message, RetryAfter: pe.RetryAfter}
		if error(pe) != err {
			e.Message = err.Error() // keep the wrapping context
		}
	}
	var retry uint64
	if e.RetryAfter > 0 {
		retry = uint64((e.RetryAfter + time.Millisecond - 1) / time.Millisecond)
	}
	f := ErrorFrame{Header: Header{Type: TypeError}, Code: e.Code,
		Message: truncateUTF8(e.Message, MaxErrorMessage), RetryAfter: retry}
	b, _ := EncodeFrame(&f) // cannot fail: bounded sizes
	return b
}

// truncateUTF8 returns s as valid UTF-8, cut to at most n bytes without
// splitting a character.
func truncateUTF8(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
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
		if f.Code == CodeOK {
			return Errorf(CodeMalformed, "error response with code 0")
		}
		if len(f.Message) > MaxErrorMessage {
			return Errorf(CodeMalformed, "error message of %d bytes, limit %d", len(f.Message), MaxErrorMessage)
		}
		return &Error{Code: f.Code, Message: f.Message, RetryAfter: retryAfter(f.RetryAfter)}
	}
	return Errorf(CodeMalformed, "response type %d", t)
}

// retryAfter converts milliseconds to a duration, saturating instead of
// overflowing.
func retryAfter(ms uint64) time.Duration {
	if ms > math.MaxInt64/uint64(time.Millisecond) {
		return math.MaxInt64
	}
	return time.Duration(ms) * time.Millisecond
}
