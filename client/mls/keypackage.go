package mls

// KeyPackage advertises a client so others can add it to a group (RFC 9420
// section 10).
type KeyPackage struct {
	Version     uint16
	CipherSuite CipherSuiteID
	InitKey     HPKEPublicKey
	LeafNode    LeafNode
	Extensions  []Extension
	Signature   []byte
}

// Marshal writes the key package.
func (k *KeyPackage) Marshal(w *Writer) {
	w.Uint16(k.Version)
	w.Uint16(uint16(k.CipherSuite))
	w.Opaque(k.InitKey)
	k.LeafNode.Marshal(w)
	writeList(w, k.Extensions)
	w.Opaque(k.Signature)
}

// Unmarshal reads a key package, rejecting protocol versions other than
// mls10.
func (k *KeyPackage) Unmarshal(r *Reader) error {
	d := dec{r: r}
	var out KeyPackage
	out.Version = d.u16()
	if d.err == nil && out.Version != ProtocolVersionMLS10 {
		d.fail(invalid("protocol version %d", out.Version))
	}
	out.CipherSuite = CipherSuiteID(d.u16())
	out.InitKey = d.opaque()
	d.do(out.LeafNode.Unmarshal)
	out.Extensions = readExtensions(&d)
	out.Signature = d.opaque()
	if d.err != nil {
		return d.err
	}
	*k = out
	return nil
}
