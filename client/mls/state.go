package mls

import (
	"fmt"
	"slices"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/framing"
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/ratchettree"
	"github.com/xchat-im/xchat/client/mls/internal/secrettree"
)

// stateVersion is the format version of MarshalState.
const stateVersion = 1

// MarshalState encodes the whole group state (current and retained
// epochs with their message keys, private keys, pending proposals,
// resumption PSKs) so that a client can store it and continue with
// UnmarshalGroup. The encoding holds secrets: store it encrypted. The
// Config is not part of it.
func (g *Group) MarshalState() ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	var w codec.Writer
	w.Uint8(stateVersion)
	w.Uint16(uint16(g.cs.ID()))
	w.Opaque(g.sigPriv)
	w.Uint8(uint8(boolInt(g.removed)))
	for _, list := range [][]*epoch{g.chain, g.retired} {
		w.Uint32(uint32(len(list)))
		for _, e := range list {
			if err := marshalEpoch(&w, e); err != nil {
				return nil, err
			}
		}
	}
	w.Uint32(uint32(len(g.resumption)))
	for _, r := range g.resumption {
		w.Uint64(r.epoch)
		w.Opaque(r.secret)
	}
	return w.Bytes()
}

// UnmarshalGroup restores a group encoded by MarshalState, with the
// policy cfg.
func UnmarshalGroup(data []byte, cfg Config) (*Group, error) {
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("mls: load group: %w", err)
	}
	// Decoded structures alias their input: decode a private copy.
	r := codec.NewReader(slices.Clone(data))
	d := &codec.Dec{R: r}
	if v := d.U8(); d.Err == nil && v != stateVersion {
		return nil, fmt.Errorf("mls: group state format %d", v)
	}
	suite := CipherSuiteID(d.U16())
	if d.Err != nil {
		return nil, fmt.Errorf("mls: group state: %w", d.Err)
	}
	cs, err := LookupSuite(suite)
	if err != nil {
		return nil, err
	}
	g := &Group{cs: cs, cfg: cfg}
	g.sigPriv = slices.Clone(d.Opaque())
	g.removed = d.U8() == 1
	for _, list := range []*[]*epoch{&g.chain, &g.retired} {
		n := d.U32()
		if d.Err == nil && n > maxRetainedEpochsLimit+1 {
			d.Fail(fmt.Errorf("%d epochs", n))
		}
		for i := uint32(0); i < n && d.Err == nil; i++ {
			e, err := g.unmarshalEpoch(d)
			if err != nil {
				d.Fail(err)
				break
			}
			*list = append(*list, e)
		}
	}
	n := d.U32()
	for i := uint32(0); i < n && d.Err == nil; i++ {
		g.resumption = append(g.resumption, resumptionPSK{epoch: d.U64(), secret: slices.Clone(d.Opaque())})
	}
	if d.Err == nil {
		d.Fail(r.Done())
	}
	if d.Err == nil && len(g.chain) == 0 {
		d.Fail(fmt.Errorf("no current epoch"))
	}
	if d.Err != nil {
		return nil, fmt.Errorf("mls: group state: %w", d.Err)
	}
	return g, nil
}

func fields(s *keyschedule.EpochSecrets) []*[]byte {
	return []*[]byte{&s.JoinerSecret, &s.WelcomeSecret, &s.EpochSecret, &s.SenderDataSecret, &s.EncryptionSecret,
		&s.ExporterSecret, &s.ExternalSecret, &s.ConfirmationKey, &s.MembershipKey, &s.ResumptionPSK,
		&s.EpochAuthenticator, &s.InitSecret}
}

func marshalEpoch(w *codec.Writer, e *epoch) error {
	gc, err := e.gc.MarshalBinary()
	if err != nil {
		return err
	}
	w.Opaque(gc)
	rt := e.tree.RatchetTree()
	rt.Marshal(w)
	w.Uint32(e.tree.NumLeaves())
	w.Uint32(uint32(e.priv.Leaf))
	secrettree.WriteSecretMap(w, e.priv.Keys)
	secrettree.WriteSecretMap(w, e.priv.PathSecrets)
	for _, f := range fields(e.secrets) {
		w.Opaque(*f)
	}
	w.Opaque(e.interim)
	w.Opaque(e.confirmationTag)
	e.keys.Marshal(w)
	w.Uint32(uint32(len(e.proposals)))
	for _, p := range e.proposals {
		w.Opaque(p.ref)
		p.proposal.Marshal(w)
		p.sender.Marshal(w)
		w.Opaque(p.updatePriv)
	}
	w.Opaque(e.nextHash)
	w.Opaque(e.hash)
	if e.nextOwn == nil {
		w.Uint8(0)
	} else {
		w.Uint8(1)
		l := e.nextOwn
		w.Uint64(l.Epoch)
		codec.WriteList(w, l.proposals)
		codec.WriteList(w, l.Retry.Add)
		w.Uint32(uint32(len(l.Retry.Remove)))
		for _, x := range l.Retry.Remove {
			w.Uint32(uint32(x))
		}
		w.Uint8(uint8(boolInt(l.Retry.Update)))
		codec.WriteList(w, l.Retry.PSKs)
		codec.WriteOpaqueList(w, l.removedKeys)
	}
	return nil
}

func (g *Group) unmarshalEpoch(d *codec.Dec) (*epoch, error) {
	e := &epoch{}
	d.Do(func(r *codec.Reader) error {
		b, err := r.Opaque()
		if err != nil {
			return err
		}
		return e.gc.UnmarshalBinary(slices.Clone(b))
	})
	var rt message.RatchetTree
	d.Do(rt.Unmarshal)
	nLeaves := d.U32()
	if d.Err != nil {
		return nil, d.Err
	}
	tree, err := ratchettree.NewTree(rt)
	if err != nil {
		return nil, err
	}
	if tree.NumLeaves() != nLeaves {
		return nil, fmt.Errorf("tree of %d leaves, want %d", tree.NumLeaves(), nLeaves)
	}
	e.tree = tree
	e.priv = &ratchettree.TreeKEMPrivate{Leaf: LeafIndex(d.U32())}
	e.priv.Keys = secrettree.ReadSecretMap(d)
	e.priv.PathSecrets = secrettree.ReadSecretMap(d)
	e.secrets = &keyschedule.EpochSecrets{}
	for _, f := range fields(e.secrets) {
		*f = slices.Clone(d.Opaque())
	}
	e.interim = slices.Clone(d.Opaque())
	e.confirmationTag = slices.Clone(d.Opaque())
	if d.Err != nil {
		return nil, d.Err
	}
	if e.keys, err = framing.UnmarshalMessageKeys(g.cs, d, nLeaves); err != nil {
		return nil, err
	}
	e.keys.MaxSkip = g.cfg.maxOutOfOrder()
	n := d.U32()
	for i := uint32(0); i < n && d.Err == nil; i++ {
		var p pendingProposal
		p.ref = slices.Clone(d.Opaque())
		d.Do(p.proposal.Unmarshal)
		d.Do(p.sender.Unmarshal)
		if up := d.Opaque(); len(up) > 0 {
			p.updatePriv = slices.Clone(up)
		}
		e.proposals = append(e.proposals, p)
	}
	if h := d.Opaque(); len(h) > 0 {
		e.nextHash = slices.Clone(h)
	}
	if h := d.Opaque(); len(h) > 0 {
		e.hash = slices.Clone(h)
	}
	if d.Present() {
		l := &LostCommit{Epoch: d.U64()}
		l.proposals = codec.ReadList[message.Proposal](d)
		l.Retry.Add = codec.ReadList[KeyPackage](d)
		n := d.U32()
		for i := uint32(0); i < n && d.Err == nil; i++ {
			l.Retry.Remove = append(l.Retry.Remove, LeafIndex(d.U32()))
		}
		l.Retry.Update = d.U8() == 1
		l.Retry.PSKs = codec.ReadList[PreSharedKeyID](d)
		l.removedKeys = codec.ReadOpaqueList(d)
		e.nextOwn = l
	}
	if d.Err != nil {
		return nil, d.Err
	}
	return e, nil
}
