package mls

import (
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
	"github.com/xchat-im/xchat/client/mls/internal/message"
)

// MLSMessage is a decoded MLS message (RFC 9420 section 6): UnmarshalBinary
// decodes one, WireFormat says which of its body fields is set.
type MLSMessage = message.MLSMessage

// WireFormat is the wire format of an MLSMessage (RFC 9420 section 6).
type WireFormat = message.WireFormat

// Wire formats (RFC 9420 section 17.2).
const (
	WireFormatPublicMessage  = message.WireFormatPublicMessage
	WireFormatPrivateMessage = message.WireFormatPrivateMessage
	WireFormatWelcome        = message.WireFormatWelcome
	WireFormatGroupInfo      = message.WireFormatGroupInfo
	WireFormatKeyPackage     = message.WireFormatKeyPackage
)

// KeyPackage advertises a client so that others can add it to a group
// (RFC 9420 section 10). ParseKeyPackage decodes and verifies one.
type KeyPackage = message.KeyPackage

// Credential is the identity a leaf presents (RFC 9420 section 5.3). The
// Config's ValidateCredential hook decides which credentials are accepted.
type Credential = message.Credential

// CredentialTypeXchat is xchat's credential type: the credential's
// identity is the device's sender certificate (spec/09-mls.md section
// 9.3).
const CredentialTypeXchat = message.CredentialTypeXchat

// Extension is an MLS extension (RFC 9420 section 13): a type and its
// encoded data.
type Extension = message.Extension

// PreSharedKeyID names a pre-shared key a commit injects (RFC 9420
// section 8.4): Type 1 is an external PSK named by ID (its secret comes
// from Config.ExternalPSK), Type 2 a resumption PSK of GroupID at Epoch
// with Usage 1 (application).
type PreSharedKeyID = keyschedule.PreSharedKeyID
