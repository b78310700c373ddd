package message

import "github.com/xchat-im/xchat/client/mls/internal/codec"

// GroupInfo describes a group to joiners (RFC 9420 section 12.4.3).
type GroupInfo struct {
	GroupContext    GroupContext
	Extensions      []Extension
	ConfirmationTag []byte
	Signer          uint32
	Signature       []byte
}

// Marshal writes the group info.
func (g *GroupInfo) Marshal(w *codec.Writer) {
	gc, err := g.GroupContext.MarshalBinary()
	if err != nil {
		w.Fail(err)
		return
	}
	w.Raw(gc)
	codec.WriteList(w, g.Extensions)
	w.Opaque(g.ConfirmationTag)
	w.Uint32(g.Signer)
	w.Opaque(g.Signature)
}

// Unmarshal reads group info.
func (g *GroupInfo) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out GroupInfo
	d.Do(out.GroupContext.decode)
	out.Extensions = readExtensions(&d)
	out.ConfirmationTag = d.Opaque()
	out.Signer = d.U32()
	out.Signature = d.Opaque()
	if d.Err != nil {
		return d.Err
	}
	*g = out
	return nil
}
