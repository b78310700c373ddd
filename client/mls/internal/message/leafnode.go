package message

import "github.com/xchat-im/xchat/client/mls/internal/codec"

// HPKEPublicKey is an encoded HPKE public key (opaque HPKEPublicKey<V>).
type HPKEPublicKey []byte

// SignaturePublicKey is an encoded signature public key.
type SignaturePublicKey []byte

// Credential types (RFC 9420 section 5.3).
const (
	CredentialTypeBasic uint16 = 1
	CredentialTypeX509  uint16 = 2
	// CredentialTypeXchat is xchat's private-use credential type: its
	// content (in Identity) is the device's xchat sender certificate
	// (spec/09-mls.md section 9.3).
	CredentialTypeXchat uint16 = 0xF0C1
)

// isPrivateCredentialType reports whether t lies in the private-use range
// 0xF000-0xFFFF, whose credentials xchat encodes as one opaque<V> vector.
func isPrivateCredentialType(t uint16) bool { return t >= 0xF000 }

// Credential binds an identity to a signature key (RFC 9420 section 5.3).
// Identity is set for basic credentials and for credentials of a
// private-use type (0xF000-0xFFFF, such as CredentialTypeXchat), whose
// content is one opaque<V> vector; Certificates (DER, leaf first) is set
// for x509 ones.
type Credential struct {
	Type         uint16
	Identity     []byte
	Certificates [][]byte
}

// Marshal writes the credential.
func (c *Credential) Marshal(w *codec.Writer) {
	w.Uint16(c.Type)
	switch c.Type {
	case CredentialTypeBasic:
		w.Opaque(c.Identity)
	case CredentialTypeX509:
		codec.WriteOpaqueList(w, c.Certificates)
	default:
		if !isPrivateCredentialType(c.Type) {
			w.Fail(codec.Invalid("credential type %d", c.Type))
			return
		}
		w.Opaque(c.Identity)
	}
}

// Unmarshal reads a credential, rejecting credential types that are
// neither defined by RFC 9420 nor private-use.
func (c *Credential) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out Credential
	out.Type = d.U16()
	switch {
	case d.Err != nil:
	case out.Type == CredentialTypeBasic:
		out.Identity = d.Opaque()
	case out.Type == CredentialTypeX509:
		out.Certificates = codec.ReadOpaqueList(&d)
	case isPrivateCredentialType(out.Type):
		out.Identity = d.Opaque()
	default:
		d.Fail(codec.Invalid("credential type %d", out.Type))
	}
	if d.Err != nil {
		return d.Err
	}
	*c = out
	return nil
}

// Capabilities lists what a client supports (RFC 9420 section 7.2).
type Capabilities struct {
	Versions     []uint16
	CipherSuites []uint16
	Extensions   []uint16
	Proposals    []uint16
	Credentials  []uint16
}

// Marshal writes the capabilities.
func (c *Capabilities) Marshal(w *codec.Writer) {
	codec.WriteU16List(w, c.Versions)
	codec.WriteU16List(w, c.CipherSuites)
	codec.WriteU16List(w, c.Extensions)
	codec.WriteU16List(w, c.Proposals)
	codec.WriteU16List(w, c.Credentials)
}

// Unmarshal reads capabilities.
func (c *Capabilities) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out Capabilities
	out.Versions = codec.ReadU16List(&d)
	out.CipherSuites = codec.ReadU16List(&d)
	out.Extensions = codec.ReadU16List(&d)
	out.Proposals = codec.ReadU16List(&d)
	out.Credentials = codec.ReadU16List(&d)
	if d.Err != nil {
		return d.Err
	}
	*c = out
	return nil
}

// Lifetime is the validity window of a KeyPackage leaf, in seconds since
// the Unix epoch.
type Lifetime struct {
	NotBefore uint64
	NotAfter  uint64
}

// Marshal writes the lifetime.
func (l *Lifetime) Marshal(w *codec.Writer) {
	w.Uint64(l.NotBefore)
	w.Uint64(l.NotAfter)
}

// Unmarshal reads a lifetime.
func (l *Lifetime) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	nb, na := d.U64(), d.U64()
	if d.Err != nil {
		return d.Err
	}
	*l = Lifetime{NotBefore: nb, NotAfter: na}
	return nil
}

// Marshal writes the extension.
func (e *Extension) Marshal(w *codec.Writer) {
	w.Uint16(e.Type)
	w.Opaque(e.Data)
}

// Unmarshal reads one extension. Unknown extension types are kept as
// opaque data, as RFC 9420 section 13 requires.
func (e *Extension) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	t := d.U16()
	data := d.Opaque()
	if d.Err != nil {
		return d.Err
	}
	*e = Extension{Type: t, Data: data}
	return nil
}

// readExtensions reads an Extension list, rejecting duplicate types
// (RFC 9420 section 13.4).
func readExtensions(d *codec.Dec) []Extension {
	exts := codec.ReadList[Extension](d)
	if d.Err != nil {
		return nil
	}
	for i := range exts {
		for j := i + 1; j < len(exts); j++ {
			if exts[i].Type == exts[j].Type {
				d.Fail(codec.Invalid("duplicate extension type %d", exts[i].Type))
				return nil
			}
		}
	}
	return exts
}

// LeafNodeSource says where a LeafNode came from (RFC 9420 section 7.2).
type LeafNodeSource uint8

// Leaf node sources.
const (
	LeafNodeSourceKeyPackage LeafNodeSource = 1
	LeafNodeSourceUpdate     LeafNodeSource = 2
	LeafNodeSourceCommit     LeafNodeSource = 3
)

// LeafNode is a member's leaf in the ratchet tree (RFC 9420 section 7.2).
// Lifetime is meaningful for the key_package source, ParentHash for the
// commit source.
type LeafNode struct {
	EncryptionKey HPKEPublicKey
	SignatureKey  SignaturePublicKey
	Credential    Credential
	Capabilities  Capabilities
	Source        LeafNodeSource
	Lifetime      Lifetime
	ParentHash    []byte
	Extensions    []Extension
	Signature     []byte
}

// MarshalContent writes the fields shared by the LeafNode and the
// LeafNodeTBS, up to and including the extensions.
func (n *LeafNode) MarshalContent(w *codec.Writer) {
	w.Opaque(n.EncryptionKey)
	w.Opaque(n.SignatureKey)
	n.Credential.Marshal(w)
	n.Capabilities.Marshal(w)
	w.Uint8(uint8(n.Source))
	switch n.Source {
	case LeafNodeSourceKeyPackage:
		n.Lifetime.Marshal(w)
	case LeafNodeSourceUpdate:
	case LeafNodeSourceCommit:
		w.Opaque(n.ParentHash)
	default:
		w.Fail(codec.Invalid("leaf node source %d", n.Source))
	}
	codec.WriteList(w, n.Extensions)
}

// Marshal writes the leaf node.
func (n *LeafNode) Marshal(w *codec.Writer) {
	n.MarshalContent(w)
	w.Opaque(n.Signature)
}

// Unmarshal reads a leaf node, rejecting unknown leaf node sources.
func (n *LeafNode) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out LeafNode
	out.EncryptionKey = d.Opaque()
	out.SignatureKey = d.Opaque()
	d.Do(out.Credential.Unmarshal)
	d.Do(out.Capabilities.Unmarshal)
	out.Source = LeafNodeSource(d.U8())
	switch {
	case d.Err != nil:
	case out.Source == LeafNodeSourceKeyPackage:
		d.Do(out.Lifetime.Unmarshal)
	case out.Source == LeafNodeSourceUpdate:
	case out.Source == LeafNodeSourceCommit:
		out.ParentHash = d.Opaque()
	default:
		d.Fail(codec.Invalid("leaf node source %d", out.Source))
	}
	out.Extensions = readExtensions(&d)
	out.Signature = d.Opaque()
	if d.Err != nil {
		return d.Err
	}
	*n = out
	return nil
}
