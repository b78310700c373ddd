package framing

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/secrettree"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// ErrPadding reports PrivateMessageContent padding that is not all zeros.
var ErrPadding = errors.New("mls: non-zero padding")

// MaxPrivateMessagePadding bounds the padding ProtectPrivate adds.
const MaxPrivateMessagePadding = 1 << 16

// MessageKeys holds one epoch's secrets for PrivateMessage protection: the
// secret tree with the per-sender handshake and application ratchets taken
// from it, and the sender_data_secret. It is safe for concurrent use.
// A member uses one MessageKeys per epoch both for its own messages and
// for those of others; its own leaf's ratchets then serve encryption only.
type MessageKeys struct {
	cs               *ciphersuite.CipherSuite
	senderDataSecret []byte

	mu       sync.Mutex
	tree     *secrettree.SecretTree
	ratchets map[treemath.LeafIndex]*[2]*secrettree.HashRatchet // handshake, application
	// MaxSkip, when positive, lets messages arrive out of order: the keys
	// of up to maxSkip skipped generations are kept per ratchet, and a
	// message may skip at most maxSkip generations. Zero keeps no skipped
	// keys (strictly increasing generations).
	MaxSkip int
}

// NewMessageKeys returns the PrivateMessage keys of an epoch whose ratchet
// tree has nLeaves leaves (a power of two, RFC 9420 section 7).
func NewMessageKeys(cs *ciphersuite.CipherSuite, encryptionSecret, senderDataSecret []byte, nLeaves uint32) (*MessageKeys, error) {
	if nLeaves == 0 || nLeaves&(nLeaves-1) != 0 {
		return nil, fmt.Errorf("%w: secret tree of %d leaves", treemath.ErrTreeMath, nLeaves)
	}
	return &MessageKeys{
		cs:               cs,
		senderDataSecret: append([]byte(nil), senderDataSecret...),
		tree:             secrettree.NewSecretTree(cs, encryptionSecret, nLeaves),
		ratchets:         make(map[treemath.LeafIndex]*[2]*secrettree.HashRatchet),
	}, nil
}

// ratchet returns leaf l's ratchet for content type ct. k.mu must be held.
func (k *MessageKeys) ratchet(l treemath.LeafIndex, ct message.ContentType) (*secrettree.HashRatchet, error) {
	rs, ok := k.ratchets[l]
	if !ok {
		hs, app, err := k.tree.LeafRatchets(l)
		if err != nil {
			return nil, err
		}
		rs = &[2]*secrettree.HashRatchet{hs, app}
		k.ratchets[l] = rs
	}
	if ct == message.ContentTypeApplication {
		return rs[1], nil
	}
	return rs[0], nil
}

// applyReuseGuard XORs the reuse guard into the first bytes of nonce.
func applyReuseGuard(nonce []byte, guard [reuseGuardSize]byte) []byte {
	out := append([]byte(nil), nonce...)
	for i := range guard {
		out[i] ^= guard[i]
	}
	return out
}

// privateContentAAD encodes PrivateContentAAD.
func privateContentAAD(pm *message.PrivateMessage) ([]byte, error) {
	var w codec.Writer
	w.Opaque(pm.GroupID)
	w.Uint64(pm.Epoch)
	w.Uint8(uint8(pm.ContentType))
	w.Opaque(pm.AuthenticatedData)
	return w.Bytes()
}

// marshalPrivateContent encodes PrivateMessageContent with padding zero
// bytes.
func marshalPrivateContent(c *message.FramedContent, auth *message.FramedContentAuthData, padding int) ([]byte, error) {
	var w codec.Writer
	switch {
	case c.ContentType == message.ContentTypeApplication:
		w.Opaque(c.ApplicationData)
	case c.ContentType == message.ContentTypeProposal && c.Proposal != nil:
		c.Proposal.Marshal(&w)
	case c.ContentType == message.ContentTypeCommit && c.Commit != nil:
		c.Commit.Marshal(&w)
	default:
		return nil, codec.Invalid("content type %d", c.ContentType)
	}
	auth.Marshal(&w, c.ContentType)
	w.Raw(make([]byte, padding))
	return w.Bytes()
}

// unmarshalPrivateContent decodes PrivateMessageContent of content type
// ct into c and auth, requiring the padding to be all zeros.
func unmarshalPrivateContent(b []byte, ct message.ContentType, c *message.FramedContent, auth *message.FramedContentAuthData) error {
	r := codec.NewReader(b)
	d := codec.Dec{R: r}
	c.ContentType = ct
	switch ct {
	case message.ContentTypeApplication:
		c.ApplicationData = d.Opaque()
	case message.ContentTypeProposal:
		c.Proposal = new(message.Proposal)
		d.Do(c.Proposal.Unmarshal)
	case message.ContentTypeCommit:
		c.Commit = new(message.Commit)
		d.Do(c.Commit.Unmarshal)
	default:
		return codec.Invalid("content type %d", ct)
	}
	d.Do(func(r *codec.Reader) error { return auth.Unmarshal(r, ct) })
	if d.Err != nil {
		return d.Err
	}
	pad, _ := r.Raw(r.Len())
	for _, p := range pad {
		if p != 0 {
			return ErrPadding
		}
	}
	return nil
}

// ProtectPrivate encrypts content signed for the PrivateMessage wire
// format (see SignFramedContent) with the next key of the sender's ratchet.
// The plaintext is padded with zeros to a multiple of padTo bytes (no
// padding when padTo <= 1).
func (k *MessageKeys) ProtectPrivate(ac *AuthenticatedContent, padTo int) (*message.PrivateMessage, error) {
	c := &ac.Content
	if ac.WireFormat != message.WireFormatPrivateMessage {
		return nil, fmt.Errorf("mls: protect private: %w", codec.Invalid("content signed for wire format %d", ac.WireFormat))
	}
	if err := checkSenderContent(ac.WireFormat, c); err != nil {
		return nil, fmt.Errorf("mls: protect private: %w", err)
	}
	if (c.ContentType == message.ContentTypeCommit) != (ac.Auth.ConfirmationTag != nil) {
		return nil, fmt.Errorf("mls: protect private: %w", codec.Invalid("confirmation tag must be present exactly for commits"))
	}
	if padTo > MaxPrivateMessagePadding {
		return nil, fmt.Errorf("mls: protect private: padding to %d bytes", padTo)
	}
	plain, err := marshalPrivateContent(c, &ac.Auth, 0)
	if err != nil {
		return nil, fmt.Errorf("mls: protect private: %w", err)
	}
	if padTo > 1 {
		if n := len(plain) % padTo; n != 0 {
			plain = append(plain, make([]byte, padTo-n)...)
		}
	}
	pm := &message.PrivateMessage{
		GroupID:           c.GroupID,
		Epoch:             c.Epoch,
		ContentType:       c.ContentType,
		AuthenticatedData: c.AuthenticatedData,
	}
	aad, err := privateContentAAD(pm)
	if err != nil {
		return nil, fmt.Errorf("mls: protect private: %w", err)
	}
	sd := SenderData{LeafIndex: treemath.LeafIndex(c.Sender.LeafIndex)}
	if _, err := rand.Read(sd.ReuseGuard[:]); err != nil {
		return nil, err
	}

	k.mu.Lock()
	r, err := k.ratchet(sd.LeafIndex, c.ContentType)
	var key, nonce []byte
	if err == nil {
		key, nonce, sd.Generation, err = r.Next()
	}
	k.mu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("mls: protect private: %w", err)
	}

	pm.Ciphertext, err = k.cs.AeadSeal(key, applyReuseGuard(nonce, sd.ReuseGuard), aad, plain)
	if err != nil {
		return nil, err
	}
	pm.EncryptedSenderData, err = encryptSenderData(k.cs, k.senderDataSecret, &sd, pm)
	if err != nil {
		return nil, err
	}
	return pm, nil
}

// UnprotectPrivate decrypts and checks a PrivateMessage against the group
// context of the current epoch: group and epoch, sender data, the
// generation (keys already used or too far ahead are refused), the
// content (decoded according to the message's content type, padding all
// zeros) and the signature under the key lookup returns for the sender.
// The sender's ratchet only moves when the content decrypts and its
// signature verifies. Checking a
// commit's confirmation tag is left to the caller.
func (k *MessageKeys) UnprotectPrivate(pm *message.PrivateMessage, ctx *message.GroupContext, lookup SignatureKeyLookup) (*AuthenticatedContent, error) {
	if !bytes.Equal(pm.GroupID, ctx.GroupID) || pm.Epoch != ctx.Epoch {
		return nil, ErrWrongGroupEpoch
	}
	if !pm.ContentType.Valid() {
		return nil, fmt.Errorf("mls: unprotect private: %w", codec.Invalid("content type %d", pm.ContentType))
	}
	sd, err := decryptSenderData(k.cs, k.senderDataSecret, pm)
	if err != nil {
		return nil, err
	}
	aad, err := privateContentAAD(pm)
	if err != nil {
		return nil, fmt.Errorf("mls: unprotect private: %w", err)
	}

	// The ratchet moves (and skipped keys are kept) only once the content
	// decrypts and its signature verifies, so that a member forging
	// another's leaf cannot make the keys of that leaf be skipped.
	k.mu.Lock()
	defer k.mu.Unlock()
	plain, commit, err := k.open(sd, pm, aad)
	if err != nil {
		return nil, fmt.Errorf("mls: unprotect private: %w", err)
	}

	ac := &AuthenticatedContent{
		WireFormat: message.WireFormatPrivateMessage,
		Content: message.FramedContent{
			GroupID:           pm.GroupID,
			Epoch:             pm.Epoch,
			Sender:            message.Sender{Type: message.SenderTypeMember, LeafIndex: uint32(sd.LeafIndex)},
			AuthenticatedData: pm.AuthenticatedData,
		},
	}
	if err := unmarshalPrivateContent(plain, pm.ContentType, &ac.Content, &ac.Auth); err != nil {
		return nil, fmt.Errorf("mls: unprotect private: %w", err)
	}
	pub, err := lookup(ac.Content.Sender)
	if err != nil {
		return nil, fmt.Errorf("mls: unprotect private: %w", err)
	}
	if err := verifyAuthenticatedContent(k.cs, pub, ac, ctx); err != nil {
		return nil, err
	}
	commit()
	return ac, nil
}

// open decrypts pm's content with the key of sd's generation and returns
// the function that advances the sender's ratchet (or consumes a kept
// skipped key). k.mu must be held, until commit is called.
func (k *MessageKeys) open(sd *SenderData, pm *message.PrivateMessage, aad []byte) ([]byte, func(), error) {
	r, err := k.ratchet(sd.LeafIndex, pm.ContentType)
	if err != nil {
		return nil, nil, err
	}
	key, nonce, commit, err := r.Prepare(sd.Generation, k.MaxSkip)
	if err != nil {
		return nil, nil, err
	}
	plain, err := k.cs.AeadOpen(key, applyReuseGuard(nonce, sd.ReuseGuard), aad, pm.Ciphertext)
	if err != nil {
		return nil, nil, err
	}
	return plain, commit, nil
}
