package mls

// GroupInfo describes a group to joiners (RFC 9420 section 12.4.3).
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      []Extension
	ConfirmationTag []byte
	Signer          uint32
	Signature       []byte
}

// Marshal writes the group info.
func (g *GroupInfo) Marshal(w *Writer) {
	gc, err := g.GroupContext.MarshalBinary()
	if err != nil {
		w.fail(err)
		return
	}
	w.Raw(gc)
	writeList(w, g.Extensions)
	w.Opaque(g.ConfirmationTag)
	w.Uint32(g.Signer)
	w.Opaque(g.Signature)
}

// Unmarshal reads group info.
func (g *GroupInfo) Unmarshal(r *Reader) error {
	d := dec{r: r}
	var out GroupInfo
	d.do(out.GroupContext.decode)
	out.Extensions = readExtensions(&d)
	out.ConfirmationTag = d.opaque()
	out.Signer = d.u32()
	out.Signature = d.opaque()
	if d.err != nil {
		return d.err
	}
	*g = out
	return nil
}
