package message

import (
	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
)

// KeyPackage advertises a client so others can add it to a group (RFC 9420
// section 10).
type KeyPackage struct {
	Version     uint16
	CipherSuite ciphersuite.CipherSuiteID
	InitKey     HPKEPublicKey
	LeafNode    LeafNode
	Extensions  []Extension
	Signature   []byte
}

// Marshal writes the key package.
func (k *KeyPackage) Marshal(w *codec.Writer) {
	w.Uint16(k.Version)
	w.Uint16(uint16(k.CipherSuite))
	w.Opaque(k.InitKey)
	k.LeafNode.Marshal(w)
	codec.WriteList(w, k.Extensions)
	w.Opaque(k.Signature)
}

// Unmarshal reads a key package, rejecting protocol versions other than
// mls10.
func (k *KeyPackage) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out KeyPackage
	out.Version = d.U16()
	if d.Err == nil && out.Version != ProtocolVersionMLS10 {
		d.Fail(codec.Invalid("protocol version %d", out.Version))
	}
	out.CipherSuite = ciphersuite.CipherSuiteID(d.U16())
	out.InitKey = d.Opaque()
	d.Do(out.LeafNode.Unmarshal)
	out.Extensions = readExtensions(&d)
	out.Signature = d.Opaque()
	if d.Err != nil {
		return d.Err
	}
	*k = out
	return nil
}
