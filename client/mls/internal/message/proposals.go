package message

import (
	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
)

// ProposalType is a proposal code point (RFC 9420 section 17.4).
type ProposalType uint16

// Proposal types defined by RFC 9420.
const (
	ProposalTypeAdd                    ProposalType = 1
	ProposalTypeUpdate                 ProposalType = 2
	ProposalTypeRemove                 ProposalType = 3
	ProposalTypePSK                    ProposalType = 4
	ProposalTypeReInit                 ProposalType = 5
	ProposalTypeExternalInit           ProposalType = 6
	ProposalTypeGroupContextExtensions ProposalType = 7
)

// Add proposes adding the client of a KeyPackage.
type Add struct {
	KeyPackage KeyPackage
}

// Marshal writes the proposal body.
func (a *Add) Marshal(w *codec.Writer) { a.KeyPackage.Marshal(w) }

// Unmarshal reads the proposal body.
func (a *Add) Unmarshal(r *codec.Reader) error { return a.KeyPackage.Unmarshal(r) }

// Update proposes replacing the sender's leaf.
type Update struct {
	LeafNode LeafNode
}

// Marshal writes the proposal body.
func (u *Update) Marshal(w *codec.Writer) { u.LeafNode.Marshal(w) }

// Unmarshal reads the proposal body.
func (u *Update) Unmarshal(r *codec.Reader) error { return u.LeafNode.Unmarshal(r) }

// Remove proposes removing the member at leaf index Removed.
type Remove struct {
	Removed uint32
}

// Marshal writes the proposal body.
func (p *Remove) Marshal(w *codec.Writer) { w.Uint32(p.Removed) }

// Unmarshal reads the proposal body.
func (p *Remove) Unmarshal(r *codec.Reader) error {
	v, err := r.Uint32()
	if err != nil {
		return err
	}
	p.Removed = v
	return nil
}

// PreSharedKey proposes injecting a PSK into the next epoch.
type PreSharedKey struct {
	PSK keyschedule.PreSharedKeyID
}

// Marshal writes the proposal body.
func (p *PreSharedKey) Marshal(w *codec.Writer) { p.PSK.Marshal(w) }

// Unmarshal reads the proposal body.
func (p *PreSharedKey) Unmarshal(r *codec.Reader) error { return p.PSK.Unmarshal(r) }

// ReInit proposes reinitialising the group with new parameters.
type ReInit struct {
	GroupID     []byte
	Version     uint16
	CipherSuite ciphersuite.CipherSuiteID
	Extensions  []Extension
}

// Marshal writes the proposal body.
func (p *ReInit) Marshal(w *codec.Writer) {
	w.Opaque(p.GroupID)
	w.Uint16(p.Version)
	w.Uint16(uint16(p.CipherSuite))
	codec.WriteList(w, p.Extensions)
}

// Unmarshal reads the proposal body.
func (p *ReInit) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out ReInit
	out.GroupID = d.Opaque()
	out.Version = d.U16()
	out.CipherSuite = ciphersuite.CipherSuiteID(d.U16())
	out.Extensions = readExtensions(&d)
	if d.Err != nil {
		return d.Err
	}
	*p = out
	return nil
}

// ExternalInit carries the KEM output of an external join.
type ExternalInit struct {
	KEMOutput []byte
}

// Marshal writes the proposal body.
func (p *ExternalInit) Marshal(w *codec.Writer) { w.Opaque(p.KEMOutput) }

// Unmarshal reads the proposal body.
func (p *ExternalInit) Unmarshal(r *codec.Reader) error {
	v, err := r.Opaque()
	if err != nil {
		return err
	}
	p.KEMOutput = v
	return nil
}

// GroupContextExtensions proposes new group context extensions.
type GroupContextExtensions struct {
	Extensions []Extension
}

// Marshal writes the proposal body.
func (p *GroupContextExtensions) Marshal(w *codec.Writer) { codec.WriteList(w, p.Extensions) }

// Unmarshal reads the proposal body.
func (p *GroupContextExtensions) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	exts := readExtensions(&d)
	if d.Err != nil {
		return d.Err
	}
	p.Extensions = exts
	return nil
}

// Proposal is a tagged proposal; the field matching Type is set.
type Proposal struct {
	Type                   ProposalType
	Add                    *Add
	Update                 *Update
	Remove                 *Remove
	PreSharedKey           *PreSharedKey
	ReInit                 *ReInit
	ExternalInit           *ExternalInit
	GroupContextExtensions *GroupContextExtensions
}

// body returns the variant selected by Type, or nil.
func (p *Proposal) body() interface {
	Marshal(*codec.Writer)
	Unmarshal(*codec.Reader) error
} {
	switch p.Type {
	case ProposalTypeAdd:
		if p.Add != nil {
			return p.Add
		}
	case ProposalTypeUpdate:
		if p.Update != nil {
			return p.Update
		}
	case ProposalTypeRemove:
		if p.Remove != nil {
			return p.Remove
		}
	case ProposalTypePSK:
		if p.PreSharedKey != nil {
			return p.PreSharedKey
		}
	case ProposalTypeReInit:
		if p.ReInit != nil {
			return p.ReInit
		}
	case ProposalTypeExternalInit:
		if p.ExternalInit != nil {
			return p.ExternalInit
		}
	case ProposalTypeGroupContextExtensions:
		if p.GroupContextExtensions != nil {
			return p.GroupContextExtensions
		}
	}
	return nil
}

// Marshal writes the proposal.
func (p *Proposal) Marshal(w *codec.Writer) {
	b := p.body()
	if b == nil {
		w.Fail(codec.Invalid("proposal type %d", p.Type))
		return
	}
	w.Uint16(uint16(p.Type))
	b.Marshal(w)
}

// Unmarshal reads a proposal. Proposal types RFC 9420 does not define are
// rejected: their bodies carry no length, so they cannot be skipped.
func (p *Proposal) Unmarshal(r *codec.Reader) error {
	t, err := r.Uint16()
	if err != nil {
		return err
	}
	out := Proposal{Type: ProposalType(t)}
	switch out.Type {
	case ProposalTypeAdd:
		out.Add = new(Add)
	case ProposalTypeUpdate:
		out.Update = new(Update)
	case ProposalTypeRemove:
		out.Remove = new(Remove)
	case ProposalTypePSK:
		out.PreSharedKey = new(PreSharedKey)
	case ProposalTypeReInit:
		out.ReInit = new(ReInit)
	case ProposalTypeExternalInit:
		out.ExternalInit = new(ExternalInit)
	case ProposalTypeGroupContextExtensions:
		out.GroupContextExtensions = new(GroupContextExtensions)
	default:
		return codec.Invalid("proposal type %d", t)
	}
	if err := out.body().Unmarshal(r); err != nil {
		return err
	}
	*p = out
	return nil
}
