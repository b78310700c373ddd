package message

import (
	"github.com/xchat-im/xchat/client/mls/internal/codec"
)

// Extension types defined by RFC 9420 section 17.3.
const (
	ExtensionTypeApplicationID        uint16 = 1
	ExtensionTypeRatchetTree          uint16 = 2
	ExtensionTypeRequiredCapabilities uint16 = 3
	ExtensionTypeExternalPub          uint16 = 4
	ExtensionTypeExternalSenders      uint16 = 5
)

// ExternalSender is an entry of the external_senders extension.
type ExternalSender struct {
	SignatureKey []byte
	Credential   Credential
}

// Marshal writes the entry.
func (e *ExternalSender) Marshal(w *codec.Writer) {
	w.Opaque(e.SignatureKey)
	e.Credential.Marshal(w)
}

// Unmarshal reads the entry.
func (e *ExternalSender) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out ExternalSender
	out.SignatureKey = d.Opaque()
	d.Do(out.Credential.Unmarshal)
	if d.Err != nil {
		return d.Err
	}
	*e = out
	return nil
}
