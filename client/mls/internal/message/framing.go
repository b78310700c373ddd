package message

import "github.com/xchat-im/xchat/client/mls/internal/codec"

// WireFormat is an MLS wire format code point (RFC 9420 section 6).
type WireFormat uint16

// Wire formats defined by RFC 9420.
const (
	WireFormatPublicMessage  WireFormat = 1
	WireFormatPrivateMessage WireFormat = 2
	WireFormatWelcome        WireFormat = 3
	WireFormatGroupInfo      WireFormat = 4
	WireFormatKeyPackage     WireFormat = 5
)

// ContentType is the type of a FramedContent body.
type ContentType uint8

// Content types.
const (
	ContentTypeApplication ContentType = 1
	ContentTypeProposal    ContentType = 2
	ContentTypeCommit      ContentType = 3
)

func (c ContentType) Valid() bool {
	return c >= ContentTypeApplication && c <= ContentTypeCommit
}

// SenderType says who sent a message (RFC 9420 section 6).
type SenderType uint8

// Sender types.
const (
	SenderTypeMember            SenderType = 1
	SenderTypeExternal          SenderType = 2
	SenderTypeNewMemberProposal SenderType = 3
	SenderTypeNewMemberCommit   SenderType = 4
)

// Sender identifies the sender of a message. LeafIndex is used for members,
// SenderIndex (into the external_senders extension) for external senders.
type Sender struct {
	Type        SenderType
	LeafIndex   uint32
	SenderIndex uint32
}

// Marshal writes the sender.
func (s *Sender) Marshal(w *codec.Writer) {
	w.Uint8(uint8(s.Type))
	switch s.Type {
	case SenderTypeMember:
		w.Uint32(s.LeafIndex)
	case SenderTypeExternal:
		w.Uint32(s.SenderIndex)
	case SenderTypeNewMemberProposal, SenderTypeNewMemberCommit:
	default:
		w.Fail(codec.Invalid("sender type %d", s.Type))
	}
}

// Unmarshal reads a sender, rejecting unknown sender types.
func (s *Sender) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out Sender
	out.Type = SenderType(d.U8())
	switch {
	case d.Err != nil:
	case out.Type == SenderTypeMember:
		out.LeafIndex = d.U32()
	case out.Type == SenderTypeExternal:
		out.SenderIndex = d.U32()
	case out.Type == SenderTypeNewMemberProposal, out.Type == SenderTypeNewMemberCommit:
	default:
		d.Fail(codec.Invalid("sender type %d", out.Type))
	}
	if d.Err != nil {
		return d.Err
	}
	*s = out
	return nil
}

// FramedContent is the authenticated content of a handshake or
// application message (RFC 9420 section 6). The field matching ContentType
// is set.
type FramedContent struct {
	GroupID           []byte
	Epoch             uint64
	Sender            Sender
	AuthenticatedData []byte
	ContentType       ContentType
	ApplicationData   []byte
	Proposal          *Proposal
	Commit            *Commit
}

// Marshal writes the content.
func (c *FramedContent) Marshal(w *codec.Writer) {
	w.Opaque(c.GroupID)
	w.Uint64(c.Epoch)
	c.Sender.Marshal(w)
	w.Opaque(c.AuthenticatedData)
	w.Uint8(uint8(c.ContentType))
	switch {
	case c.ContentType == ContentTypeApplication:
		w.Opaque(c.ApplicationData)
	case c.ContentType == ContentTypeProposal && c.Proposal != nil:
		c.Proposal.Marshal(w)
	case c.ContentType == ContentTypeCommit && c.Commit != nil:
		c.Commit.Marshal(w)
	default:
		w.Fail(codec.Invalid("content type %d", c.ContentType))
	}
}

// Unmarshal reads framed content, rejecting unknown content types.
func (c *FramedContent) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out FramedContent
	out.GroupID = d.Opaque()
	out.Epoch = d.U64()
	d.Do(out.Sender.Unmarshal)
	out.AuthenticatedData = d.Opaque()
	out.ContentType = ContentType(d.U8())
	switch {
	case d.Err != nil:
	case out.ContentType == ContentTypeApplication:
		out.ApplicationData = d.Opaque()
	case out.ContentType == ContentTypeProposal:
		out.Proposal = new(Proposal)
		d.Do(out.Proposal.Unmarshal)
	case out.ContentType == ContentTypeCommit:
		out.Commit = new(Commit)
		d.Do(out.Commit.Unmarshal)
	default:
		d.Fail(codec.Invalid("content type %d", out.ContentType))
	}
	if d.Err != nil {
		return d.Err
	}
	*c = out
	return nil
}

// FramedContentAuthData is the signature over a FramedContent and, for
// commits, the confirmation tag.
type FramedContentAuthData struct {
	Signature       []byte
	ConfirmationTag []byte
}

// Marshal writes the auth data of content of type ct.
func (a *FramedContentAuthData) Marshal(w *codec.Writer, ct ContentType) {
	w.Opaque(a.Signature)
	if ct == ContentTypeCommit {
		w.Opaque(a.ConfirmationTag)
	}
}

// Unmarshal reads the auth data of content of type ct.
func (a *FramedContentAuthData) Unmarshal(r *codec.Reader, ct ContentType) error {
	d := codec.Dec{R: r}
	var out FramedContentAuthData
	out.Signature = d.Opaque()
	if ct == ContentTypeCommit {
		out.ConfirmationTag = d.Opaque()
	}
	if d.Err != nil {
		return d.Err
	}
	*a = out
	return nil
}

// PublicMessage is a signed, unencrypted MLS message (RFC 9420
// section 6.2). MembershipTag is present when the sender is a member.
type PublicMessage struct {
	Content       FramedContent
	Auth          FramedContentAuthData
	MembershipTag []byte
}

// Marshal writes the message.
func (m *PublicMessage) Marshal(w *codec.Writer) {
	m.Content.Marshal(w)
	m.Auth.Marshal(w, m.Content.ContentType)
	if m.Content.Sender.Type == SenderTypeMember {
		w.Opaque(m.MembershipTag)
	}
}

// Unmarshal reads a public message.
func (m *PublicMessage) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out PublicMessage
	d.Do(out.Content.Unmarshal)
	d.Do(func(r *codec.Reader) error { return out.Auth.Unmarshal(r, out.Content.ContentType) })
	if d.Err == nil && out.Content.Sender.Type == SenderTypeMember {
		out.MembershipTag = d.Opaque()
	}
	if d.Err != nil {
		return d.Err
	}
	*m = out
	return nil
}

// PrivateMessage is an encrypted MLS message (RFC 9420 section 6.3).
type PrivateMessage struct {
	GroupID             []byte
	Epoch               uint64
	ContentType         ContentType
	AuthenticatedData   []byte
	EncryptedSenderData []byte
	Ciphertext          []byte
}

// Marshal writes the message.
func (m *PrivateMessage) Marshal(w *codec.Writer) {
	if !m.ContentType.Valid() {
		w.Fail(codec.Invalid("content type %d", m.ContentType))
		return
	}
	w.Opaque(m.GroupID)
	w.Uint64(m.Epoch)
	w.Uint8(uint8(m.ContentType))
	w.Opaque(m.AuthenticatedData)
	w.Opaque(m.EncryptedSenderData)
	w.Opaque(m.Ciphertext)
}

// Unmarshal reads a private message, rejecting unknown content types.
func (m *PrivateMessage) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out PrivateMessage
	out.GroupID = d.Opaque()
	out.Epoch = d.U64()
	out.ContentType = ContentType(d.U8())
	if d.Err == nil && !out.ContentType.Valid() {
		d.Fail(codec.Invalid("content type %d", out.ContentType))
	}
	out.AuthenticatedData = d.Opaque()
	out.EncryptedSenderData = d.Opaque()
	out.Ciphertext = d.Opaque()
	if d.Err != nil {
		return d.Err
	}
	*m = out
	return nil
}
