package wire

import (
	"errors"
	"fmt"
	"time"
)

// Code is a protocol error code (spec/14-errors.md).
type Code uint64

// Protocol error codes. CodeOK appears only in per-envelope results.
const (
	CodeOK                   Code = 0
	CodeMalformed            Code = 1
	CodeFrameTooLarge        Code = 2
	CodeNoncanonical         Code = 3
	CodeUnknownRequest       Code = 4
	CodeUnauthenticated      Code = 5
	CodeInvalidAddress       Code = 6
	CodeWrongDomain          Code = 7
	CodeRegistrationClosed   Code = 8
	CodeInviteInvalid        Code = 9
	CodeAccountExists        Code = 10
	CodeUnknownAccount       Code = 11
	CodeUnknownDevice        Code = 12
	CodeAuthFailed           Code = 13
	CodeTokenInvalid         Code = 14
	CodeRequestLaneClosed    Code = 15
	CodeRateLimited          Code = 16
	CodeMailboxFull          Code = 17
	CodeEnvelopeTooLarge     Code = 18
	CodeBadPadding           Code = 19
	CodeNoKeyPackage         Code = 20
	CodeLimitExceeded        Code = 21
	CodeInternal             Code = 22
	CodeUnavailable          Code = 23
	CodeAlreadyAuthenticated Code = 24
	CodeDomainRefused        Code = 25
	CodePeerUnauthenticated  Code = 26
	CodeExpired              Code = 27
	CodeLinkInvalid          Code = 28
	CodeLastDevice           Code = 29
	CodeOutboundFull         Code = 30
	CodeQuotaExceeded        Code = 31
	CodeUnknownBlob          Code = 32
	CodeBadRange             Code = 33
	CodeBlobIncomplete       Code = 34
	CodeRoomDenied           Code = 35
	CodeCallFull             Code = 36
)

var codeNames = [...]string{
	"ok", "malformed", "frame_too_large", "noncanonical", "unknown_request",
	"unauthenticated", "invalid_address", "wrong_domain", "registration_closed",
	"invite_invalid", "account_exists", "unknown_account", "unknown_device",
	"auth_failed", "token_invalid", "request_lane_closed", "rate_limited",
	"mailbox_full", "envelope_too_large", "bad_padding", "no_key_package",
	"limit_exceeded", "internal", "unavailable", "already_authenticated",
	"domain_refused", "peer_unauthenticated", "expired", "link_invalid",
	"last_device", "outbound_full", "quota_exceeded", "unknown_blob",
	"bad_range", "blob_incomplete", "room_denied", "call_full",
}

// String returns the code's name from spec/14-errors.md, or "code_N".
func (c Code) String() string {
	if c < Code(len(codeNames)) {
		return codeNames[c]
	}
	return fmt.Sprintf("code_%d", uint64(c))
}

// Error is a protocol error: one received in an error frame, or one a
// decoder or handler produced to send in one.
type Error struct {
	Code       Code
	Message    string        // human-readable, never parsed
	RetryAfter time.Duration // zero when absent
}

func (e *Error) Error() string {
	if e.Message == "" {
		return e.Code.String()
	}
	return e.Code.String() + ": " + e.Message
}

// Is reports whether target is an *Error with the same code. The sentinel
// errors below let callers write errors.Is(err, wire.ErrAuthFailed).
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Code == e.Code
}

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the protocol code of err: the code of the *Error it wraps,
// or CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Sentinel errors, one per code, for errors.Is.
var (
	ErrMalformed            = &Error{Code: CodeMalformed}
	ErrFrameTooLarge        = &Error{Code: CodeFrameTooLarge}
	ErrNoncanonical         = &Error{Code: CodeNoncanonical}
	ErrUnknownRequest       = &Error{Code: CodeUnknownRequest}
	ErrUnauthenticated      = &Error{Code: CodeUnauthenticated}
	ErrInvalidAddress       = &Error{Code: CodeInvalidAddress}
	ErrWrongDomain          = &Error{Code: CodeWrongDomain}
	ErrRegistrationClosed   = &Error{Code: CodeRegistrationClosed}
	ErrInviteInvalid        = &Error{Code: CodeInviteInvalid}
	ErrAccountExists        = &Error{Code: CodeAccountExists}
	ErrUnknownAccount       = &Error{Code: CodeUnknownAccount}
	ErrUnknownDevice        = &Error{Code: CodeUnknownDevice}
	ErrAuthFailed           = &Error{Code: CodeAuthFailed}
	ErrTokenInvalid         = &Error{Code: CodeTokenInvalid}
	ErrRequestLaneClosed    = &Error{Code: CodeRequestLaneClosed}
	ErrRateLimited          = &Error{Code: CodeRateLimited}
	ErrMailboxFull          = &Error{Code: CodeMailboxFull}
	ErrEnvelopeTooLarge     = &Error{Code: CodeEnvelopeTooLarge}
	ErrBadPadding           = &Error{Code: CodeBadPadding}
	ErrNoKeyPackage         = &Error{Code: CodeNoKeyPackage}
	ErrLimitExceeded        = &Error{Code: CodeLimitExceeded}
	ErrInternal             = &Error{Code: CodeInternal}
	ErrUnavailable          = &Error{Code: CodeUnavailable}
	ErrAlreadyAuthenticated = &Error{Code: CodeAlreadyAuthenticated}
	ErrDomainRefused        = &Error{Code: CodeDomainRefused}
	ErrPeerUnauthenticated  = &Error{Code: CodePeerUnauthenticated}
	ErrExpired              = &Error{Code: CodeExpired}
	ErrLinkInvalid          = &Error{Code: CodeLinkInvalid}
	ErrLastDevice           = &Error{Code: CodeLastDevice}
	ErrOutboundFull         = &Error{Code: CodeOutboundFull}
	ErrQuotaExceeded        = &Error{Code: CodeQuotaExceeded}
	ErrUnknownBlob          = &Error{Code: CodeUnknownBlob}
	ErrBadRange             = &Error{Code: CodeBadRange}
	ErrBlobIncomplete       = &Error{Code: CodeBlobIncomplete}
	ErrRoomDenied           = &Error{Code: CodeRoomDenied}
	ErrCallFull             = &Error{Code: CodeCallFull}
)
