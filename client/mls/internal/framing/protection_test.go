package framing

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/secrettree"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

type protectionCase struct {
	CipherSuite             uint16   `json:"cipher_suite"`
	GroupID                 hexBytes `json:"group_id"`
	Epoch                   uint64   `json:"epoch"`
	TreeHash                hexBytes `json:"tree_hash"`
	ConfirmedTranscriptHash hexBytes `json:"confirmed_transcript_hash"`
	SignaturePriv           hexBytes `json:"signature_priv"`
	SignaturePub            hexBytes `json:"signature_pub"`
	EncryptionSecret        hexBytes `json:"encryption_secret"`
	SenderDataSecret        hexBytes `json:"sender_data_secret"`
	MembershipKey           hexBytes `json:"membership_key"`
	Proposal                hexBytes `json:"proposal"`
	ProposalPriv            hexBytes `json:"proposal_priv"`
	ProposalPub             hexBytes `json:"proposal_pub"`
	Commit                  hexBytes `json:"commit"`
	CommitPriv              hexBytes `json:"commit_priv"`
	CommitPub               hexBytes `json:"commit_pub"`
	Application             hexBytes `json:"application"`
	ApplicationPriv         hexBytes `json:"application_priv"`
}

// protectionLeaves is the size of the group the message-protection
// vectors use; the sender is leaf 1.
const protectionLeaves = 2

func (c *protectionCase) context() *message.GroupContext {
	return &message.GroupContext{
		CipherSuite:             ciphersuite.CipherSuiteID(c.CipherSuite),
		GroupID:                 c.GroupID,
		Epoch:                   c.Epoch,
		TreeHash:                c.TreeHash,
		ConfirmedTranscriptHash: c.ConfirmedTranscriptHash,
	}
}

func (c *protectionCase) lookup(s message.Sender) ([]byte, error) {
	if s.Type != message.SenderTypeMember || s.LeafIndex != 1 {
		return nil, fmt.Errorf("unknown sender %+v", s)
	}
	return c.SignaturePub, nil
}

func (c *protectionCase) keys(t *testing.T, cs *ciphersuite.CipherSuite) *MessageKeys {
	t.Helper()
	k, err := NewMessageKeys(cs, c.EncryptionSecret, c.SenderDataSecret, protectionLeaves)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newTestKeys(t *testing.T, cs *ciphersuite.CipherSuite, enc, sd []byte, n uint32) *MessageKeys {
	t.Helper()
	k, err := NewMessageKeys(cs, enc, sd, n)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// contentBody encodes the proposal, commit or application data of c.
func contentBody(t *testing.T, c *message.FramedContent) []byte {
	t.Helper()
	var w codec.Writer
	switch c.ContentType {
	case message.ContentTypeApplication:
		w.Raw(c.ApplicationData)
	case message.ContentTypeProposal:
		c.Proposal.Marshal(&w)
	case message.ContentTypeCommit:
		c.Commit.Marshal(&w)
	}
	b, err := w.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeMessage(t *testing.T, b []byte) *message.MLSMessage {
	t.Helper()
	var m message.MLSMessage
	if err := m.UnmarshalBinary(b); err != nil {
		t.Fatalf("decode message: %v", err)
	}
	return &m
}

func TestMessageProtectionVectors(t *testing.T) {
	var cases []protectionCase
	loadVectors(t, "message-protection.json", &cases)
	passed := 0
	for i := range cases {
		c := &cases[i]
		cs, ok := suiteOrSkip(t, c.CipherSuite)
		if !ok {
			continue
		}
		t.Run(fmt.Sprintf("%d/suite%d", i, c.CipherSuite), func(t *testing.T) {
			ctx := c.context()
			pub := func(name string, msg, want []byte) {
				m := decodeMessage(t, msg)
				if m.WireFormat != message.WireFormatPublicMessage {
					t.Fatalf("%s: wire format %d", name, m.WireFormat)
				}
				ac, err := UnprotectPublic(cs, c.MembershipKey, m.PublicMessage, ctx, c.lookup)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got := contentBody(t, &ac.Content); !bytes.Equal(got, want) {
					t.Fatalf("%s: content %x, want %x", name, got, want)
				}
			}
			priv := func(name string, msg, want []byte) {
				m := decodeMessage(t, msg)
				if m.WireFormat != message.WireFormatPrivateMessage {
					t.Fatalf("%s: wire format %d", name, m.WireFormat)
				}
				ac, err := c.keys(t, cs).UnprotectPrivate(m.PrivateMessage, ctx, c.lookup)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				if got := contentBody(t, &ac.Content); !bytes.Equal(got, want) {
					t.Fatalf("%s: content %x, want %x", name, got, want)
				}
			}
			pub("proposal_pub", c.ProposalPub, c.Proposal)
			pub("commit_pub", c.CommitPub, c.Commit)
			priv("proposal_priv", c.ProposalPriv, c.Proposal)
			priv("commit_priv", c.CommitPriv, c.Commit)
			priv("application_priv", c.ApplicationPriv, c.Application)

			// Protect our own messages and unprotect them again. The
			// vectors strip leading zeros of P-521 scalars, which
			// SignWithLabel wants at full length (66 bytes).
			sigPriv := c.SignaturePriv
			if c.CipherSuite == uint16(ciphersuite.P521AES256GCMSHA512P521) && len(sigPriv) < 66 {
				sigPriv = append(make([]byte, 66-len(sigPriv)), sigPriv...)
			}
			var proposal message.Proposal
			if err := codec.UnmarshalAll(c.Proposal, &proposal); err != nil {
				t.Fatal(err)
			}
			var commit message.Commit
			if err := codec.UnmarshalAll(c.Commit, &commit); err != nil {
				t.Fatal(err)
			}
			contents := []message.FramedContent{
				{ContentType: message.ContentTypeProposal, Proposal: &proposal},
				{ContentType: message.ContentTypeCommit, Commit: &commit},
				{ContentType: message.ContentTypeApplication, ApplicationData: c.Application},
			}
			sendKeys, recvKeys := c.keys(t, cs), c.keys(t, cs)
			for j := range contents {
				fc := &contents[j]
				fc.GroupID, fc.Epoch = c.GroupID, c.Epoch
				fc.Sender = message.Sender{Type: message.SenderTypeMember, LeafIndex: 1}
				fc.AuthenticatedData = []byte("aad")
				want := contentBody(t, fc)
				for _, wf := range []message.WireFormat{message.WireFormatPublicMessage, message.WireFormatPrivateMessage} {
					if wf == message.WireFormatPublicMessage && fc.ContentType == message.ContentTypeApplication {
						continue
					}
					ac, err := SignFramedContent(cs, sigPriv, wf, fc, ctx)
					if err != nil {
						t.Fatal(err)
					}
					if fc.ContentType == message.ContentTypeCommit {
						ac.Auth.ConfirmationTag = cs.MAC([]byte("confirmation key"), c.ConfirmedTranscriptHash)
					}
					m := &message.MLSMessage{Version: message.ProtocolVersionMLS10, WireFormat: wf}
					if wf == message.WireFormatPublicMessage {
						m.PublicMessage, err = ProtectPublic(cs, c.MembershipKey, ac, ctx)
					} else {
						m.PrivateMessage, err = sendKeys.ProtectPrivate(ac, 32)
					}
					if err != nil {
						t.Fatal(err)
					}
					enc, err := m.MarshalBinary()
					if err != nil {
						t.Fatal(err)
					}
					m = decodeMessage(t, enc)
					var got *AuthenticatedContent
					if wf == message.WireFormatPublicMessage {
						got, err = UnprotectPublic(cs, c.MembershipKey, m.PublicMessage, ctx, c.lookup)
					} else {
						got, err = recvKeys.UnprotectPrivate(m.PrivateMessage, ctx, c.lookup)
					}
					if err != nil {
						t.Fatalf("wire format %d content %d: %v", wf, fc.ContentType, err)
					}
					if b := contentBody(t, &got.Content); !bytes.Equal(b, want) {
						t.Fatalf("round trip content %x, want %x", b, want)
					}
					if !bytes.Equal(got.Content.AuthenticatedData, fc.AuthenticatedData) ||
						!bytes.Equal(got.Auth.ConfirmationTag, ac.Auth.ConfirmationTag) {
						t.Fatal("round trip auth data mismatch")
					}
				}
			}
			passed++
		})
	}
	t.Logf("%d message-protection cases passed", passed)
}

// protectionFixture returns a suite, a context, keys and a signed
// application message for the negative tests.
func protectionFixture(t *testing.T) (cs *ciphersuite.CipherSuite, ctx *message.GroupContext, priv, pub []byte) {
	t.Helper()
	cs, err := ciphersuite.LookupSuite(ciphersuite.X25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	priv, pub, err = cs.GenerateSignatureKey()
	if err != nil {
		t.Fatal(err)
	}
	ctx = &message.GroupContext{
		CipherSuite:             ciphersuite.X25519AES128GCMSHA256Ed25519,
		GroupID:                 []byte("group"),
		Epoch:                   7,
		TreeHash:                make([]byte, 32),
		ConfirmedTranscriptHash: make([]byte, 32),
	}
	return cs, ctx, priv, pub
}

func TestPrivateMessageChecks(t *testing.T) {
	cs, ctx, sigPriv, sigPub := protectionFixture(t)
	lookup := func(message.Sender) ([]byte, error) { return sigPub, nil }
	encSecret, sdSecret := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	fc := &message.FramedContent{
		GroupID: ctx.GroupID, Epoch: ctx.Epoch,
		Sender:      message.Sender{Type: message.SenderTypeMember, LeafIndex: 2},
		ContentType: message.ContentTypeApplication, ApplicationData: []byte("hello"),
	}
	ac, err := SignFramedContent(cs, sigPriv, message.WireFormatPrivateMessage, fc, ctx)
	if err != nil {
		t.Fatal(err)
	}
	send := newTestKeys(t, cs, encSecret, sdSecret, 4)
	pm, err := send.ProtectPrivate(ac, 0)
	if err != nil {
		t.Fatal(err)
	}

	t.Run("tampered ciphertext", func(t *testing.T) {
		recv := newTestKeys(t, cs, encSecret, sdSecret, 4)
		bad := *pm
		bad.Ciphertext = append([]byte(nil), pm.Ciphertext...)
		bad.Ciphertext[len(bad.Ciphertext)-1] ^= 1
		if _, err := recv.UnprotectPrivate(&bad, ctx, lookup); !errors.Is(err, ciphersuite.ErrDecryption) {
			t.Fatalf("got %v, want ErrDecryption", err)
		}
		// A failed decryption does not consume the generation.
		if _, err := recv.UnprotectPrivate(pm, ctx, lookup); err != nil {
			t.Fatal(err)
		}
		// Replay is refused.
		if _, err := recv.UnprotectPrivate(pm, ctx, lookup); !errors.Is(err, secrettree.ErrGeneration) {
			t.Fatalf("replay: got %v, want ErrGeneration", err)
		}
	})
	t.Run("tampered authenticated data", func(t *testing.T) {
		recv := newTestKeys(t, cs, encSecret, sdSecret, 4)
		bad := *pm
		bad.AuthenticatedData = []byte("x")
		if _, err := recv.UnprotectPrivate(&bad, ctx, lookup); !errors.Is(err, ciphersuite.ErrDecryption) {
			t.Fatalf("got %v, want ErrDecryption", err)
		}
	})
	t.Run("content type mismatch", func(t *testing.T) {
		recv := newTestKeys(t, cs, encSecret, sdSecret, 4)
		bad := *pm
		bad.ContentType = message.ContentTypeProposal
		if _, err := recv.UnprotectPrivate(&bad, ctx, lookup); !errors.Is(err, ciphersuite.ErrDecryption) {
			t.Fatalf("got %v, want ErrDecryption", err)
		}
	})
	t.Run("wrong epoch", func(t *testing.T) {
		recv := newTestKeys(t, cs, encSecret, sdSecret, 4)
		other := *ctx
		other.Epoch++
		if _, err := recv.UnprotectPrivate(pm, &other, lookup); !errors.Is(err, ErrWrongGroupEpoch) {
			t.Fatalf("got %v, want ErrWrongGroupEpoch", err)
		}
	})
	t.Run("wrong signer", func(t *testing.T) {
		recv := newTestKeys(t, cs, encSecret, sdSecret, 4)
		_, otherPub, err := cs.GenerateSignatureKey()
		if err != nil {
			t.Fatal(err)
		}
		wrong := func(message.Sender) ([]byte, error) { return otherPub, nil }
		if _, err := recv.UnprotectPrivate(pm, ctx, wrong); !errors.Is(err, ciphersuite.ErrSignature) {
			t.Fatalf("got %v, want ErrSignature", err)
		}
	})
	t.Run("padding", func(t *testing.T) {
		plain, err := marshalPrivateContent(fc, &ac.Auth, 5)
		if err != nil {
			t.Fatal(err)
		}
		var c message.FramedContent
		var a message.FramedContentAuthData
		if err := unmarshalPrivateContent(plain, fc.ContentType, &c, &a); err != nil {
			t.Fatal(err)
		}
		plain[len(plain)-2] = 1
		if err := unmarshalPrivateContent(plain, fc.ContentType, &c, &a); !errors.Is(err, ErrPadding) {
			t.Fatalf("got %v, want ErrPadding", err)
		}
	})
	t.Run("padded length", func(t *testing.T) {
		s := newTestKeys(t, cs, encSecret, sdSecret, 4)
		p, err := s.ProtectPrivate(ac, 64)
		if err != nil {
			t.Fatal(err)
		}
		if n := len(p.Ciphertext) - 16; n%64 != 0 {
			t.Fatalf("padded plaintext of %d bytes", n)
		}
	})
	t.Run("public sender", func(t *testing.T) {
		if _, err := SignFramedContent(cs, sigPriv, message.WireFormatPublicMessage, fc, ctx); !errors.Is(err, ErrSenderContent) {
			t.Fatalf("application PublicMessage: got %v", err)
		}
		ext := *fc
		ext.Sender = message.Sender{Type: message.SenderTypeExternal}
		if _, err := SignFramedContent(cs, sigPriv, message.WireFormatPrivateMessage, &ext, ctx); !errors.Is(err, ErrSenderContent) {
			t.Fatalf("external PrivateMessage: got %v", err)
		}
	})
}

func TestPublicMessageChecks(t *testing.T) {
	cs, ctx, sigPriv, sigPub := protectionFixture(t)
	lookup := func(message.Sender) ([]byte, error) { return sigPub, nil }
	key := bytes.Repeat([]byte{3}, 32)
	fc := &message.FramedContent{
		GroupID: ctx.GroupID, Epoch: ctx.Epoch,
		Sender:      message.Sender{Type: message.SenderTypeMember, LeafIndex: 0},
		ContentType: message.ContentTypeProposal, Proposal: &message.Proposal{Type: message.ProposalTypeRemove, Remove: &message.Remove{Removed: 1}},
	}
	ac, err := SignFramedContent(cs, sigPriv, message.WireFormatPublicMessage, fc, ctx)
	if err != nil {
		t.Fatal(err)
	}
	pm, err := ProtectPublic(cs, key, ac, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnprotectPublic(cs, key, pm, ctx, lookup); err != nil {
		t.Fatal(err)
	}
	bad := *pm
	bad.MembershipTag = append([]byte(nil), pm.MembershipTag...)
	bad.MembershipTag[0] ^= 1
	if _, err := UnprotectPublic(cs, key, &bad, ctx, lookup); !errors.Is(err, ErrMembershipTag) {
		t.Fatalf("tag: got %v", err)
	}
	other := *ctx
	other.TreeHash = bytes.Repeat([]byte{9}, 32)
	if _, err := UnprotectPublic(cs, key, pm, &other, lookup); !errors.Is(err, ErrMembershipTag) {
		t.Fatalf("context: got %v", err)
	}
	bad = *pm
	bad.Auth.Signature = append([]byte(nil), pm.Auth.Signature...)
	bad.Auth.Signature[0] ^= 1
	bad.MembershipTag, err = MembershipTag(cs, key, &bad.Content, &bad.Auth, ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnprotectPublic(cs, key, &bad, ctx, lookup); !errors.Is(err, ciphersuite.ErrSignature) {
		t.Fatalf("signature: got %v", err)
	}

	// External senders carry no membership tag and sign without context.
	ext := *fc
	ext.Sender = message.Sender{Type: message.SenderTypeExternal, SenderIndex: 0}
	ac, err = SignFramedContent(cs, sigPriv, message.WireFormatPublicMessage, &ext, nil)
	if err != nil {
		t.Fatal(err)
	}
	pm, err = ProtectPublic(cs, key, ac, nil)
	if err != nil {
		t.Fatal(err)
	}
	if pm.MembershipTag != nil {
		t.Fatal("membership tag for external sender")
	}
	if _, err := UnprotectPublic(cs, nil, pm, ctx, lookup); err != nil {
		t.Fatal(err)
	}
}

func TestNewMessageKeysLeaves(t *testing.T) {
	cs, err := ciphersuite.LookupSuite(ciphersuite.X25519AES128GCMSHA256Ed25519)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range []uint32{0, 3, 6} {
		if _, err := NewMessageKeys(cs, make([]byte, 32), make([]byte, 32), n); !errors.Is(err, treemath.ErrTreeMath) {
			t.Errorf("%d leaves: got %v", n, err)
		}
	}
}
