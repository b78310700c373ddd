package message

import (
	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
)

// EncryptedGroupSecrets is a GroupSecrets encrypted to one new member's
// KeyPackage init key (RFC 9420 section 12.4.3.1).
type EncryptedGroupSecrets struct {
	NewMember             []byte
	EncryptedGroupSecrets HPKECiphertext
}

// Marshal writes the value.
func (e *EncryptedGroupSecrets) Marshal(w *codec.Writer) {
	w.Opaque(e.NewMember)
	e.EncryptedGroupSecrets.Marshal(w)
}

// Unmarshal reads the value.
func (e *EncryptedGroupSecrets) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out EncryptedGroupSecrets
	out.NewMember = d.Opaque()
	d.Do(out.EncryptedGroupSecrets.Unmarshal)
	if d.Err != nil {
		return d.Err
	}
	*e = out
	return nil
}

// Welcome brings new members into a group (RFC 9420 section 12.4.3.1).
type Welcome struct {
	CipherSuite        ciphersuite.CipherSuiteID
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

// Marshal writes the welcome.
func (m *Welcome) Marshal(w *codec.Writer) {
	w.Uint16(uint16(m.CipherSuite))
	codec.WriteList(w, m.Secrets)
	w.Opaque(m.EncryptedGroupInfo)
}

// Unmarshal reads a welcome.
func (m *Welcome) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out Welcome
	out.CipherSuite = ciphersuite.CipherSuiteID(d.U16())
	out.Secrets = codec.ReadList[EncryptedGroupSecrets](&d)
	out.EncryptedGroupInfo = d.Opaque()
	if d.Err != nil {
		return d.Err
	}
	*m = out
	return nil
}

// GroupSecrets is the plaintext of an EncryptedGroupSecrets. PathSecret is
// nil when absent.
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   []byte
	PSKs         []keyschedule.PreSharedKeyID
}

// Marshal writes the group secrets.
func (g *GroupSecrets) Marshal(w *codec.Writer) {
	w.Opaque(g.JoinerSecret)
	if g.PathSecret == nil {
		w.Uint8(0)
	} else {
		w.Uint8(1)
		w.Opaque(g.PathSecret)
	}
	codec.WriteList(w, g.PSKs)
}

// Unmarshal reads group secrets.
func (g *GroupSecrets) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out GroupSecrets
	out.JoinerSecret = d.Opaque()
	if d.Present() {
		out.PathSecret = d.Opaque()
		if out.PathSecret == nil {
			out.PathSecret = []byte{}
		}
	}
	out.PSKs = codec.ReadList[keyschedule.PreSharedKeyID](&d)
	if d.Err != nil {
		return d.Err
	}
	*g = out
	return nil
}
