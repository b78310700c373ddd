package mls

// EncryptedGroupSecrets is a GroupSecrets encrypted to one new member's
// KeyPackage init key (RFC 9420 section 12.4.3.1).
type EncryptedGroupSecrets struct {
	NewMember             []byte
	EncryptedGroupSecrets HPKECiphertext
}

// Marshal writes the value.
func (e *EncryptedGroupSecrets) Marshal(w *Writer) {
	w.Opaque(e.NewMember)
	e.EncryptedGroupSecrets.Marshal(w)
}

// Unmarshal reads the value.
func (e *EncryptedGroupSecrets) Unmarshal(r *Reader) error {
	d := dec{r: r}
	var out EncryptedGroupSecrets
	out.NewMember = d.opaque()
	d.do(out.EncryptedGroupSecrets.Unmarshal)
	if d.err != nil {
		return d.err
	}
	*e = out
	return nil
}

// Welcome brings new members into a group (RFC 9420 section 12.4.3.1).
type Welcome struct {
	CipherSuite        CipherSuiteID
	Secrets            []EncryptedGroupSecrets
	EncryptedGroupInfo []byte
}

// Marshal writes the welcome.
func (m *Welcome) Marshal(w *Writer) {
	w.Uint16(uint16(m.CipherSuite))
	writeList(w, m.Secrets)
	w.Opaque(m.EncryptedGroupInfo)
}

// Unmarshal reads a welcome.
func (m *Welcome) Unmarshal(r *Reader) error {
	d := dec{r: r}
	var out Welcome
	out.CipherSuite = CipherSuiteID(d.u16())
	out.Secrets = readList[EncryptedGroupSecrets](&d)
	out.EncryptedGroupInfo = d.opaque()
	if d.err != nil {
		return d.err
	}
	*m = out
	return nil
}

// GroupSecrets is the plaintext of an EncryptedGroupSecrets. PathSecret is
// nil when absent.
type GroupSecrets struct {
	JoinerSecret []byte
	PathSecret   []byte
	PSKs         []PreSharedKeyID
}

// Marshal writes the group secrets.
func (g *GroupSecrets) Marshal(w *Writer) {
	w.Opaque(g.JoinerSecret)
	if g.PathSecret == nil {
		w.Uint8(0)
	} else {
		w.Uint8(1)
		w.Opaque(g.PathSecret)
	}
	writeList(w, g.PSKs)
}

// Unmarshal reads group secrets.
func (g *GroupSecrets) Unmarshal(r *Reader) error {
	d := dec{r: r}
	var out GroupSecrets
	out.JoinerSecret = d.opaque()
	if d.present() {
		out.PathSecret = d.opaque()
		if out.PathSecret == nil {
			out.PathSecret = []byte{}
		}
	}
	out.PSKs = readList[PreSharedKeyID](&d)
	if d.err != nil {
		return d.err
	}
	*g = out
	return nil
}
