// Package framing protects and unprotects MLS content (RFC 9420 section
// 6): the signature and membership tag of a PublicMessage, the sender-data
// and content encryption of a PrivateMessage with the epoch's message keys,
// and padding.
package framing

import (
	"bytes"
	"crypto/hmac"
	"errors"
	"fmt"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/message"
)

// Errors reported when unprotecting messages.
var (
	// ErrMembershipTag reports a missing or invalid PublicMessage
	// membership tag.
	ErrMembershipTag = errors.New("mls: invalid membership tag")
	// ErrWrongGroupEpoch reports a message for another group or epoch than
	// the GroupContext it is processed against.
	ErrWrongGroupEpoch = errors.New("mls: message for another group or epoch")
	// ErrSenderContent reports a sender type that may not send the
	// message's content type over the message's wire format.
	ErrSenderContent = errors.New("mls: sender not allowed for content")
)

// SignatureKeyLookup returns the signature public key of a message's
// sender, or an error if the sender is unknown.
type SignatureKeyLookup func(message.Sender) ([]byte, error)

// AuthenticatedContent is a FramedContent with its wire format and
// authentication data (RFC 9420 section 6.1).
type AuthenticatedContent struct {
	WireFormat message.WireFormat
	Content    message.FramedContent
	Auth       message.FramedContentAuthData
}

// Marshal writes the AuthenticatedContent.
func (a *AuthenticatedContent) Marshal(w *codec.Writer) {
	w.Uint16(uint16(a.WireFormat))
	a.Content.Marshal(w)
	a.Auth.Marshal(w, a.Content.ContentType)
}

// Unmarshal reads an AuthenticatedContent.
func (a *AuthenticatedContent) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out AuthenticatedContent
	out.WireFormat = message.WireFormat(d.U16())
	d.Do(out.Content.Unmarshal)
	d.Do(func(r *codec.Reader) error { return out.Auth.Unmarshal(r, out.Content.ContentType) })
	if d.Err != nil {
		return d.Err
	}
	*a = out
	return nil
}

// senderUsesContext reports whether FramedContentTBS carries the
// GroupContext for senders of type t.
func senderUsesContext(t message.SenderType) bool {
	return t == message.SenderTypeMember || t == message.SenderTypeNewMemberCommit
}

// FramedContentTBS encodes the to-be-signed FramedContentTBS structure
// (RFC 9420 section 6.1). ctx is required for member and new_member_commit
// senders and ignored otherwise.
func FramedContentTBS(wf message.WireFormat, c *message.FramedContent, ctx *message.GroupContext) ([]byte, error) {
	var w codec.Writer
	w.Uint16(message.ProtocolVersionMLS10)
	w.Uint16(uint16(wf))
	c.Marshal(&w)
	if senderUsesContext(c.Sender.Type) {
		if ctx == nil {
			return nil, fmt.Errorf("mls: framed content tbs: %w", codec.Invalid("group context required for sender type %d", c.Sender.Type))
		}
		gc, err := ctx.MarshalBinary()
		if err != nil {
			return nil, err
		}
		w.Raw(gc)
	}
	b, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: framed content tbs: %w", err)
	}
	return b, nil
}

// checkSenderContent enforces which senders may send which content over
// which wire format (RFC 9420 sections 6 and 6.2): application data only
// from members and only in a PrivateMessage, PrivateMessages only from
// members, external and new-member proposals only as proposals and
// new-member commits only as commits.
func checkSenderContent(wf message.WireFormat, c *message.FramedContent) error {
	if !c.ContentType.Valid() {
		return codec.Invalid("content type %d", c.ContentType)
	}
	switch wf {
	case message.WireFormatPublicMessage:
		if c.ContentType == message.ContentTypeApplication {
			return fmt.Errorf("%w: application data in a PublicMessage", ErrSenderContent)
		}
	case message.WireFormatPrivateMessage:
		if c.Sender.Type != message.SenderTypeMember {
			return fmt.Errorf("%w: PrivateMessage from sender type %d", ErrSenderContent, c.Sender.Type)
		}
	default:
		return codec.Invalid("wire format %d for framed content", wf)
	}
	switch c.Sender.Type {
	case message.SenderTypeMember:
	case message.SenderTypeExternal, message.SenderTypeNewMemberProposal:
		if c.ContentType != message.ContentTypeProposal {
			return fmt.Errorf("%w: sender type %d sent content type %d", ErrSenderContent, c.Sender.Type, c.ContentType)
		}
	case message.SenderTypeNewMemberCommit:
		if c.ContentType != message.ContentTypeCommit {
			return fmt.Errorf("%w: sender type %d sent content type %d", ErrSenderContent, c.Sender.Type, c.ContentType)
		}
	default:
		return codec.Invalid("sender type %d", c.Sender.Type)
	}
	return nil
}

// SignFramedContent signs content for wire format wf and returns the
// AuthenticatedContent. For commits the caller sets Auth.ConfirmationTag
// afterwards (it depends on the signature through the transcript hash).
func SignFramedContent(cs *ciphersuite.CipherSuite, priv []byte, wf message.WireFormat, c *message.FramedContent, ctx *message.GroupContext) (*AuthenticatedContent, error) {
	if err := checkSenderContent(wf, c); err != nil {
		return nil, fmt.Errorf("mls: sign framed content: %w", err)
	}
	tbs, err := FramedContentTBS(wf, c, ctx)
	if err != nil {
		return nil, err
	}
	sig, err := cs.SignWithLabel(priv, "FramedContentTBS", tbs)
	if err != nil {
		return nil, err
	}
	return &AuthenticatedContent{WireFormat: wf, Content: *c, Auth: message.FramedContentAuthData{Signature: sig}}, nil
}

// verifyAuthenticatedContent checks the signature of ac under the sender's
// signature public key pub.
func verifyAuthenticatedContent(cs *ciphersuite.CipherSuite, pub []byte, ac *AuthenticatedContent, ctx *message.GroupContext) error {
	tbs, err := FramedContentTBS(ac.WireFormat, &ac.Content, ctx)
	if err != nil {
		return err
	}
	return cs.VerifyWithLabel(pub, "FramedContentTBS", tbs, ac.Auth.Signature)
}

// MembershipTag computes MAC(membership_key, AuthenticatedContentTBM) of a
// PublicMessage's content (RFC 9420 section 6.2).
func MembershipTag(cs *ciphersuite.CipherSuite, membershipKey []byte, c *message.FramedContent, auth *message.FramedContentAuthData, ctx *message.GroupContext) ([]byte, error) {
	tbs, err := FramedContentTBS(message.WireFormatPublicMessage, c, ctx)
	if err != nil {
		return nil, err
	}
	w := codec.Writer{Buf: tbs}
	auth.Marshal(&w, c.ContentType)
	tbm, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: membership tag: %w", err)
	}
	return cs.MAC(membershipKey, tbm), nil
}

// ProtectPublic wraps signed content in a PublicMessage, adding the
// membership tag for member senders.
func ProtectPublic(cs *ciphersuite.CipherSuite, membershipKey []byte, ac *AuthenticatedContent, ctx *message.GroupContext) (*message.PublicMessage, error) {
	if ac.WireFormat != message.WireFormatPublicMessage {
		return nil, fmt.Errorf("mls: protect public: %w", codec.Invalid("content signed for wire format %d", ac.WireFormat))
	}
	if err := checkSenderContent(ac.WireFormat, &ac.Content); err != nil {
		return nil, fmt.Errorf("mls: protect public: %w", err)
	}
	if (ac.Content.ContentType == message.ContentTypeCommit) != (ac.Auth.ConfirmationTag != nil) {
		return nil, fmt.Errorf("mls: protect public: %w", codec.Invalid("confirmation tag must be present exactly for commits"))
	}
	pm := &message.PublicMessage{Content: ac.Content, Auth: ac.Auth}
	if ac.Content.Sender.Type == message.SenderTypeMember {
		tag, err := MembershipTag(cs, membershipKey, &ac.Content, &ac.Auth, ctx)
		if err != nil {
			return nil, err
		}
		pm.MembershipTag = tag
	}
	return pm, nil
}

// UnprotectPublic checks a PublicMessage against the group context of the
// current epoch: group and epoch, sender and content type, the membership
// tag for member senders and the signature under the key lookup returns
// for the sender. Checking a commit's confirmation tag is left to the
// caller, which holds the confirmation key of the new epoch.
func UnprotectPublic(cs *ciphersuite.CipherSuite, membershipKey []byte, pm *message.PublicMessage, ctx *message.GroupContext, lookup SignatureKeyLookup) (*AuthenticatedContent, error) {
	c := &pm.Content
	if !bytes.Equal(c.GroupID, ctx.GroupID) || c.Epoch != ctx.Epoch {
		return nil, ErrWrongGroupEpoch
	}
	if err := checkSenderContent(message.WireFormatPublicMessage, c); err != nil {
		return nil, fmt.Errorf("mls: unprotect public: %w", err)
	}
	if c.Sender.Type == message.SenderTypeMember {
		want, err := MembershipTag(cs, membershipKey, c, &pm.Auth, ctx)
		if err != nil {
			return nil, err
		}
		if !hmac.Equal(want, pm.MembershipTag) {
			return nil, ErrMembershipTag
		}
	}
	ac := &AuthenticatedContent{WireFormat: message.WireFormatPublicMessage, Content: *c, Auth: pm.Auth}
	pub, err := lookup(c.Sender)
	if err != nil {
		return nil, fmt.Errorf("mls: unprotect public: %w", err)
	}
	if err := verifyAuthenticatedContent(cs, pub, ac, ctx); err != nil {
		return nil, err
	}
	return ac, nil
}
