package mls

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
func (p *ProposalOrRef) Marshal(w *Writer) {
	w.Uint8(uint8(p.Type))
	switch {
	case p.Type == ProposalOrRefProposal && p.Proposal != nil:
		p.Proposal.Marshal(w)
	case p.Type == ProposalOrRefReference:
		w.Opaque(p.Reference)
	default:
		w.fail(invalid("proposal-or-ref type %d", p.Type))
	}
}

// Unmarshal reads a ProposalOrRef, rejecting unknown types.
func (p *ProposalOrRef) Unmarshal(r *Reader) error {
	d := dec{r: r}
	var out ProposalOrRef
	out.Type = ProposalOrRefType(d.u8())
	switch {
	case d.err != nil:
	case out.Type == ProposalOrRefProposal:
		out.Proposal = new(Proposal)
		d.do(out.Proposal.Unmarshal)
	case out.Type == ProposalOrRefReference:
		out.Reference = d.opaque()
	default:
		d.fail(invalid("proposal-or-ref type %d", out.Type))
	}
	if d.err != nil {
		return d.err
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
func (c *HPKECiphertext) Marshal(w *Writer) {
	w.Opaque(c.KEMOutput)
	w.Opaque(c.Ciphertext)
}

// Unmarshal reads a ciphertext.
func (c *HPKECiphertext) Unmarshal(r *Reader) error {
	d := dec{r: r}
	k, ct := d.opaque(), d.opaque()
	if d.err != nil {
		return d.err
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
func (n *UpdatePathNode) Marshal(w *Writer) {
	w.Opaque(n.EncryptionKey)
	writeList(w, n.EncryptedPathSecret)
}

// Unmarshal reads a node.
func (n *UpdatePathNode) Unmarshal(r *Reader) error {
	d := dec{r: r}
	var out UpdatePathNode
	out.EncryptionKey = d.opaque()
	out.EncryptedPathSecret = readList[HPKECiphertext](&d)
	if d.err != nil {
		return d.err
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
func (p *UpdatePath) Marshal(w *Writer) {
	p.LeafNode.Marshal(w)
	writeList(w, p.Nodes)
}

// Unmarshal reads a path.
func (p *UpdatePath) Unmarshal(r *Reader) error {
	d := dec{r: r}
	var out UpdatePath
	d.do(out.LeafNode.Unmarshal)
	out.Nodes = readList[UpdatePathNode](&d)
	if d.err != nil {
		return d.err
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
func (c *Commit) Marshal(w *Writer) {
	writeList(w, c.Proposals)
	if c.Path == nil {
		w.Uint8(0)
		return
	}
	w.Uint8(1)
	c.Path.Marshal(w)
}

// Unmarshal reads a commit.
func (c *Commit) Unmarshal(r *Reader) error {
	d := dec{r: r}
	var out Commit
	out.Proposals = readList[ProposalOrRef](&d)
	if d.present() {
		out.Path = new(UpdatePath)
		d.do(out.Path.Unmarshal)
	}
	if d.err != nil {
		return d.err
	}
	*c = out
	return nil
}
