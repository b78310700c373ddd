package message

import "github.com/xchat-im/xchat/client/mls/internal/codec"

// ProposalOrRefType says whether a Commit carries a proposal inline or by
// reference (RFC 9420 section 12.4).
type ProposalOrRefType uint8

// ProposalOrRef types.
const (
	ProposalOrRefProposal  ProposalOrRefType = 1
	ProposalOrRefReference ProposalOrRefType = 2
)

// ProposalOrRef is a proposal inline (Proposal set) or a ProposalRef
// (Reference set).
type ProposalOrRef struct {
	Type      ProposalOrRefType
	Proposal  *Proposal
	Reference []byte
}

// Marshal writes the ProposalOrRef.
func (p *ProposalOrRef) Marshal(w *codec.Writer) {
	w.Uint8(uint8(p.Type))
	switch {
	case p.Type == ProposalOrRefProposal && p.Proposal != nil:
		p.Proposal.Marshal(w)
	case p.Type == ProposalOrRefReference:
		w.Opaque(p.Reference)
	default:
		w.Fail(codec.Invalid("proposal-or-ref type %d", p.Type))
	}
}

// Unmarshal reads a ProposalOrRef, rejecting unknown types.
func (p *ProposalOrRef) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out ProposalOrRef
	out.Type = ProposalOrRefType(d.U8())
	switch {
	case d.Err != nil:
	case out.Type == ProposalOrRefProposal:
		out.Proposal = new(Proposal)
		d.Do(out.Proposal.Unmarshal)
	case out.Type == ProposalOrRefReference:
		out.Reference = d.Opaque()
	default:
		d.Fail(codec.Invalid("proposal-or-ref type %d", out.Type))
	}
	if d.Err != nil {
		return d.Err
	}
	*p = out
	return nil
}

// HPKECiphertext is an HPKE-encrypted value (RFC 9420 section 12.4.1).
type HPKECiphertext struct {
	KEMOutput  []byte
	Ciphertext []byte
}

// Marshal writes the ciphertext.
func (c *HPKECiphertext) Marshal(w *codec.Writer) {
	w.Opaque(c.KEMOutput)
	w.Opaque(c.Ciphertext)
}

// Unmarshal reads a ciphertext.
func (c *HPKECiphertext) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	k, ct := d.Opaque(), d.Opaque()
	if d.Err != nil {
		return d.Err
	}
	*c = HPKECiphertext{KEMOutput: k, Ciphertext: ct}
	return nil
}

// UpdatePathNode is one node of an UpdatePath: a new public key and the
// path secret encrypted to each node of the copath child's resolution.
type UpdatePathNode struct {
	EncryptionKey       HPKEPublicKey
	EncryptedPathSecret []HPKECiphertext
}

// Marshal writes the node.
func (n *UpdatePathNode) Marshal(w *codec.Writer) {
	w.Opaque(n.EncryptionKey)
	codec.WriteList(w, n.EncryptedPathSecret)
}

// Unmarshal reads a node.
func (n *UpdatePathNode) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out UpdatePathNode
	out.EncryptionKey = d.Opaque()
	out.EncryptedPathSecret = codec.ReadList[HPKECiphertext](&d)
	if d.Err != nil {
		return d.Err
	}
	*n = out
	return nil
}

// UpdatePath is the committer's new leaf and direct path (RFC 9420
// section 12.4.1).
type UpdatePath struct {
	LeafNode LeafNode
	Nodes    []UpdatePathNode
}

// Marshal writes the path.
func (p *UpdatePath) Marshal(w *codec.Writer) {
	p.LeafNode.Marshal(w)
	codec.WriteList(w, p.Nodes)
}

// Unmarshal reads a path.
func (p *UpdatePath) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out UpdatePath
	d.Do(out.LeafNode.Unmarshal)
	out.Nodes = codec.ReadList[UpdatePathNode](&d)
	if d.Err != nil {
		return d.Err
	}
	*p = out
	return nil
}

// Commit applies proposals and optionally updates the committer's path
// (RFC 9420 section 12.4).
type Commit struct {
	Proposals []ProposalOrRef
	Path      *UpdatePath
}

// Marshal writes the commit.
func (c *Commit) Marshal(w *codec.Writer) {
	codec.WriteList(w, c.Proposals)
	if c.Path == nil {
		w.Uint8(0)
		return
	}
	w.Uint8(1)
	c.Path.Marshal(w)
}

// Unmarshal reads a commit.
func (c *Commit) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out Commit
	out.Proposals = codec.ReadList[ProposalOrRef](&d)
	if d.Present() {
		out.Path = new(UpdatePath)
		d.Do(out.Path.Unmarshal)
	}
	if d.Err != nil {
		return d.Err
	}
	*c = out
	return nil
}
