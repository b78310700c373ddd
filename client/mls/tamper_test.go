package mls

import (
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/framing"
	"github.com/xchat-im/xchat/client/mls/internal/message"
)

// reframe decodes an MLSMessage, lets f change it and re-encodes it.
func reframe(t *testing.T, msg []byte, f func(m *MLSMessage)) []byte {
	t.Helper()
	var m MLSMessage
	if err := m.UnmarshalBinary(append([]byte(nil), msg...)); err != nil {
		t.Fatal(err)
	}
	f(&m)
	b, err := m.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// retag recomputes a PublicMessage's membership tag with the receiver's
// key, so that a change behind it reaches the next check.
func retag(t *testing.T, g *Group, pm *message.PublicMessage) {
	t.Helper()
	base := g.cur()
	tag, err := framing.MembershipTag(g.cs, base.secrets.MembershipKey, &pm.Content, &pm.Auth, &base.gc)
	if err != nil {
		t.Fatal(err)
	}
	pm.MembershipTag = tag
}

func TestGroupTampering(t *testing.T) {
	forSuites(t, func(t *testing.T, cs *CipherSuite) {
		gs := newTestGroup(t, cs, 3, Config{ValidateCredential: acceptAnyCredential})
		a, b := gs[0], gs[1]

		// PrivateMessage: content ciphertext and sender data.
		m := mustEncrypt(t, a, "x")
		bad := append([]byte(nil), m...)
		bad[len(bad)-1] ^= 1
		_, err := b.Process(bad)
		expectErr(t, err, ErrTampered)
		bad = reframe(t, m, func(m *MLSMessage) { m.PrivateMessage.EncryptedSenderData[0] ^= 1 })
		_, err = b.Process(bad)
		expectErr(t, err, ErrTampered)
		bad = reframe(t, m, func(m *MLSMessage) { m.PrivateMessage.AuthenticatedData = []byte("other") })
		_, err = b.Process(bad)
		expectErr(t, err, ErrTampered)
		expectText(t, b, m, "x") // the genuine one still passes

		// PublicMessage commit: membership tag, signature, confirmation tag.
		cm, _ := commit(t, gs[2], CommitOptions{Update: true})
		bad = reframe(t, cm, func(m *MLSMessage) { m.PublicMessage.MembershipTag[0] ^= 1 })
		_, err = b.Process(bad)
		expectErr(t, err, framing.ErrMembershipTag, ErrTampered)
		bad = reframe(t, cm, func(m *MLSMessage) {
			m.PublicMessage.Auth.Signature[0] ^= 1
			retag(t, b, m.PublicMessage)
		})
		_, err = b.Process(bad)
		expectErr(t, err, ciphersuite.ErrSignature, ErrTampered)
		bad = reframe(t, cm, func(m *MLSMessage) {
			m.PublicMessage.Auth.ConfirmationTag[0] ^= 1
			retag(t, b, m.PublicMessage)
		})
		_, err = b.Process(bad)
		expectErr(t, err, errBadConfirmationTag, ErrTampered)
		bad = reframe(t, cm, func(m *MLSMessage) { m.PublicMessage.Content.GroupID = []byte("another group") })
		_, err = b.Process(bad)
		expectErr(t, err, ErrWrongGroup)
		deliver(t, cm, a, b)
		sameState(t, gs...)
	})
}

func TestGroupNonMembers(t *testing.T) {
	forSuites(t, func(t *testing.T, cs *CipherSuite) {
		gs := newTestGroup(t, cs, 3, Config{ValidateCredential: acceptAnyCredential})
		a, b := gs[0], gs[1]
		// Another group with the same id and epoch.
		other := newTestGroup(t, cs, 3, Config{ValidateCredential: acceptAnyCredential})
		_, err := a.Process(mustEncrypt(t, other[1], "intruder"))
		expectErr(t, err, ErrTampered)
		cm, _ := commit(t, other[0], CommitOptions{Update: true})
		_, err = a.Process(cm)
		expectErr(t, err, ErrTampered)

		// A member forging another member's leaf in the sender data.
		forge := func(leaf uint32) []byte {
			base := b.cur()
			c := &message.FramedContent{GroupID: base.gc.GroupID, Epoch: base.gc.Epoch, Sender: message.Sender{Type: message.SenderTypeMember, LeafIndex: leaf},
				AuthenticatedData: []byte("ad"), ContentType: message.ContentTypeApplication, ApplicationData: []byte("forged")}
			ac, err := framing.SignFramedContent(cs, b.sigPriv, WireFormatPrivateMessage, c, &base.gc)
			if err != nil {
				t.Fatal(err)
			}
			pm, err := base.keys.ProtectPrivate(ac, 32)
			if err != nil {
				t.Fatal(err)
			}
			out, err := (&MLSMessage{Version: message.ProtocolVersionMLS10, WireFormat: WireFormatPrivateMessage, PrivateMessage: pm}).MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			return out
		}
		_, err = a.Process(forge(2))
		expectErr(t, err, ciphersuite.ErrSignature, ErrTampered)
		// The forgery used generation 0 of leaf 2 without consuming it.
		expectText(t, a, mustEncrypt(t, gs[2], "real"), "real")
		_, err = a.Process(forge(3)) // a blank leaf
		expectErr(t, err, ErrNotMember)
		expectText(t, a, mustEncrypt(t, b, "genuine"), "genuine")
	})
}
