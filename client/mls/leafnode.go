package mls

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
func (c *Credential) Marshal(w *Writer) {
	w.Uint16(c.Type)
	switch c.Type {
	case CredentialTypeBasic:
		w.Opaque(c.Identity)
	case CredentialTypeX509:
		writeOpaqueList(w, c.Certificates)
	default:
		if !isPrivateCredentialType(c.Type) {
			w.fail(invalid("credential type %d", c.Type))
			return
		}
		w.Opaque(c.Identity)
	}
}

// Unmarshal reads a credential, rejecting credential types that are
// neither defined by RFC 9420 nor private-use.
func (c *Credential) Unmarshal(r *Reader) error {
	d := dec{r: r}
	var out Credential
	out.Type = d.u16()
	switch {
	case d.err != nil:
	case out.Type == CredentialTypeBasic:
		out.Identity = d.opaque()
	case out.Type == CredentialTypeX509:
		out.Certificates = readOpaqueList(&d)
	case isPrivateCredentialType(out.Type):
		out.Identity = d.opaque()
	default:
		d.fail(invalid("credential type %d", out.Type))
	}
	if d.err != nil {
		return d.err
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
func (c *Capabilities) Marshal(w *Writer) {
	writeU16List(w, c.Versions)
	writeU16List(w, c.CipherSuites)
	writeU16List(w, c.Extensions)
	writeU16List(w, c.Proposals)
	writeU16List(w, c.Credentials)
}

// Unmarshal reads capabilities.
func (c *Capabilities) Unmarshal(r *Reader) error {
	d := dec{r: r}
	var out Capabilities
	out.Versions = readU16List(&d)
	out.CipherSuites = readU16List(&d)
	out.Extensions = readU16List(&d)
	out.Proposals = readU16List(&d)
	out.Credentials = readU16List(&d)
	if d.err != nil {
		return d.err
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
func (l *Lifetime) Marshal(w *Writer) {
	w.Uint64(l.NotBefore)
	w.Uint64(l.NotAfter)
}

// Unmarshal reads a lifetime.
func (l *Lifetime) Unmarshal(r *Reader) error {
	d := dec{r: r}
	nb, na := d.u64(), d.u64()
	if d.err != nil {
		return d.err
	}
	*l = Lifetime{NotBefore: nb, NotAfter: na}
	return nil
}

// Marshal writes the extension.
func (e *Extension) Marshal(w *Writer) {
	w.Uint16(e.Type)
	w.Opaque(e.Data)
}

// Unmarshal reads one extension. Unknown extension types are kept as
// opaque data, as RFC 9420 section 13 requires.
func (e *Extension) Unmarshal(r *Reader) error {
	d := dec{r: r}
	t := d.u16()
	data := d.opaque()
	if d.err != nil {
		return d.err
	}
	*e = Extension{Type: t, Data: data}
	return nil
}

// readExtensions reads an Extension list, rejecting duplicate types
// (RFC 9420 section 13.4).
func readExtensions(d *dec) []Extension {
	exts := readList[Extension](d)
	if d.err != nil {
		return nil
	}
	for i := range exts {
		for j := i + 1; j < len(exts); j++ {
			if exts[i].Type == exts[j].Type {
				d.fail(invalid("duplicate extension type %d", exts[i].Type))
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

// marshalContent writes the fields shared by the LeafNode and the
// LeafNodeTBS, up to and including the extensions.
func (n *LeafNode) marshalContent(w *Writer) {
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
		w.fail(invalid("leaf node source %d", n.Source))
	}
	writeList(w, n.Extensions)
}

// Marshal writes the leaf node.
func (n *LeafNode) Marshal(w *Writer) {
	n.marshalContent(w)
	w.Opaque(n.Signature)
}

// Unmarshal reads a leaf node, rejecting unknown leaf node sources.
func (n *LeafNode) Unmarshal(r *Reader) error {
	d := dec{r: r}
	var out LeafNode
	out.EncryptionKey = d.opaque()
	out.SignatureKey = d.opaque()
	d.do(out.Credential.Unmarshal)
	d.do(out.Capabilities.Unmarshal)
	out.Source = LeafNodeSource(d.u8())
	switch {
	case d.err != nil:
	case out.Source == LeafNodeSourceKeyPackage:
		d.do(out.Lifetime.Unmarshal)
	case out.Source == LeafNodeSourceUpdate:
	case out.Source == LeafNodeSourceCommit:
		out.ParentHash = d.opaque()
	default:
		d.fail(invalid("leaf node source %d", out.Source))
	}
	out.Extensions = readExtensions(&d)
	out.Signature = d.opaque()
	if d.err != nil {
		return d.err
	}
	*n = out
	return nil
}
