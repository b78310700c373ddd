// Package message holds the MLS wire structures of RFC 9420 and their
// encoding: MLSMessage and its framing (PublicMessage, PrivateMessage,
// FramedContent), key packages, leaf nodes and credentials, the ratchet
// tree, proposals, commits, GroupContext, GroupInfo and Welcome. Decoders
// reject values RFC 9420 does not define with codec.ErrInvalidValue.
package message

import (
	"fmt"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
)

// MLSMessage is the top-level MLS message (RFC 9420 section 6): a protocol
// version, a wire format and the body that wire format selects. Exactly
// the field matching WireFormat is set.
type MLSMessage struct {
	Version        uint16
	WireFormat     WireFormat
	PublicMessage  *PublicMessage
	PrivateMessage *PrivateMessage
	Welcome        *Welcome
	GroupInfo      *GroupInfo
	KeyPackage     *KeyPackage
}

// body returns the variant selected by WireFormat, or nil.
func (m *MLSMessage) body() interface {
	Marshal(*codec.Writer)
	Unmarshal(*codec.Reader) error
} {
	switch m.WireFormat {
	case WireFormatPublicMessage:
		if m.PublicMessage != nil {
			return m.PublicMessage
		}
	case WireFormatPrivateMessage:
		if m.PrivateMessage != nil {
			return m.PrivateMessage
		}
	case WireFormatWelcome:
		if m.Welcome != nil {
			return m.Welcome
		}
	case WireFormatGroupInfo:
		if m.GroupInfo != nil {
			return m.GroupInfo
		}
	case WireFormatKeyPackage:
		if m.KeyPackage != nil {
			return m.KeyPackage
		}
	}
	return nil
}

// Marshal writes the message.
func (m *MLSMessage) Marshal(w *codec.Writer) {
	if m.Version != ProtocolVersionMLS10 {
		w.Fail(codec.Invalid("protocol version %d", m.Version))
		return
	}
	b := m.body()
	if b == nil {
		w.Fail(codec.Invalid("wire format %d", m.WireFormat))
		return
	}
	w.Uint16(m.Version)
	w.Uint16(uint16(m.WireFormat))
	b.Marshal(w)
}

// Unmarshal reads a message, rejecting versions other than mls10 and
// unknown wire formats.
func (m *MLSMessage) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	out := MLSMessage{Version: d.U16(), WireFormat: WireFormat(d.U16())}
	if d.Err != nil {
		return d.Err
	}
	if out.Version != ProtocolVersionMLS10 {
		return codec.Invalid("protocol version %d", out.Version)
	}
	switch out.WireFormat {
	case WireFormatPublicMessage:
		out.PublicMessage = new(PublicMessage)
	case WireFormatPrivateMessage:
		out.PrivateMessage = new(PrivateMessage)
	case WireFormatWelcome:
		out.Welcome = new(Welcome)
	case WireFormatGroupInfo:
		out.GroupInfo = new(GroupInfo)
	case WireFormatKeyPackage:
		out.KeyPackage = new(KeyPackage)
	default:
		return codec.Invalid("wire format %d", out.WireFormat)
	}
	if err := out.body().Unmarshal(r); err != nil {
		return err
	}
	*m = out
	return nil
}

// MarshalBinary encodes the message.
func (m *MLSMessage) MarshalBinary() ([]byte, error) {
	b, err := codec.MarshalAll(m)
	if err != nil {
		return nil, fmt.Errorf("mls: message: %w", err)
	}
	return b, nil
}

// UnmarshalBinary decodes a complete message, rejecting trailing data.
func (m *MLSMessage) UnmarshalBinary(b []byte) error {
	if err := codec.UnmarshalAll(b, m); err != nil {
		return fmt.Errorf("mls: message: %w", err)
	}
	return nil
}
