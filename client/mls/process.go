package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/framing"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/ratchettree"
	"github.com/xchat-im/xchat/client/mls/internal/secrettree"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// MessageKind is the kind of a processed message.
type MessageKind uint8

// Message kinds.
const (
	KindApplication MessageKind = 1
	KindProposal    MessageKind = 2
	KindCommit      MessageKind = 3
)

// maxPendingProposals bounds the proposals kept for one epoch.
const maxPendingProposals = 1000

// LostCommit describes an own commit that lost a race against a
// concurrent commit with a lower hash and was undone.
type LostCommit struct {
	// Epoch is the epoch the lost commit was sent in.
	Epoch uint64
	// Retry is what is left to commit in the new current epoch: the adds
	// of key packages whose signature key is not a member, the removals
	// of members still present, and an update if the lost commit had one.
	Retry CommitOptions

	// proposals are the proposals the lost commit carried (by value and
	// by reference).
	proposals []message.Proposal
	// removedKeys are the signature keys of the members the commit
	// removed, to find them again in the new epoch.
	removedKeys [][]byte
}

// Processed is the outcome of Group.Process.
type Processed struct {
	Kind MessageKind
	// Epoch is the epoch the message was sent in.
	Epoch uint64
	// Sender is the sender's leaf index when it is a member (for a
	// commit, in the epoch it was sent in).
	Sender LeafIndex
	// Credential and SignatureKey are the sender's, when it is a member or
	// joins by external commit.
	Credential   Credential
	SignatureKey []byte
	// AuthenticatedData is the message's authenticated_data.
	AuthenticatedData []byte
	// Plaintext is the application data of an application message.
	Plaintext []byte
	// NewEpoch is the epoch a commit led to; Added, Removed and Updated
	// list the members it changed (Added with their new leaf indices).
	// When the commit undid own or others' commits of a losing branch,
	// Added and Removed compare the new state with the undone one.
	NewEpoch uint64
	Added    []Member
	Removed  []Member
	Updated  []Member
	// SelfRemoved reports a commit that removed this member; the group
	// is then unusable.
	SelfRemoved bool
	// LostOwnCommit is set when this commit won a race against own
	// commits, which were undone; their content can be committed again.
	LostOwnCommit *LostCommit

	// senderType is the kind of sender (member, external, new member).
	senderType message.SenderType
}

// Process processes an MLS message (an encoded MLSMessage carrying a
// PublicMessage or PrivateMessage) sent to the group: application
// messages, proposals and commits. See the package documentation for
// commits of earlier epochs.
func (g *Group) Process(msg []byte) (*Processed, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return nil, ErrRemoved
	}
	// Decoded structures alias their input, and some are kept.
	msg = slices.Clone(msg)
	var m MLSMessage
	if err := m.UnmarshalBinary(msg); err != nil {
		return nil, err
	}
	switch m.WireFormat {
	case WireFormatPublicMessage:
		return g.processPublic(msg, m.PublicMessage)
	case WireFormatPrivateMessage:
		return g.processPrivate(msg, m.PrivateMessage)
	}
	return nil, fmt.Errorf("mls: process: %w", codec.Invalid("wire format %d is not a group message", m.WireFormat))
}

// findEpoch returns the index in the chain of the epoch numbered e.
func (g *Group) findEpoch(e uint64) int {
	for i, ep := range g.chain {
		if ep.gc.Epoch == e {
			return i
		}
	}
	return -1
}

// signatureLookup returns the signature key lookup for messages of epoch
// base.
func (g *Group) signatureLookup(base *epoch, c *message.FramedContent) framing.SignatureKeyLookup {
	return func(s message.Sender) ([]byte, error) {
		switch s.Type {
		case message.SenderTypeMember:
			leaf := base.tree.Leaf(LeafIndex(s.LeafIndex))
			if leaf == nil {
				return nil, fmt.Errorf("%w: leaf %d", ErrNotMember, s.LeafIndex)
			}
			return leaf.SignatureKey, nil
		case message.SenderTypeExternal:
			senders, err := externalSenders(base.gc.Extensions)
			if err != nil {
				return nil, err
			}
			if int64(s.SenderIndex) >= int64(len(senders)) {
				return nil, fmt.Errorf("%w: external sender %d", ErrNotMember, s.SenderIndex)
			}
			return senders[s.SenderIndex].SignatureKey, nil
		case message.SenderTypeNewMemberProposal:
			if c.Proposal == nil || c.Proposal.Type != message.ProposalTypeAdd {
				return nil, fmt.Errorf("%w: new member proposal that is not an add", ErrInvalidProposal)
			}
			return c.Proposal.Add.KeyPackage.LeafNode.SignatureKey, nil
		case message.SenderTypeNewMemberCommit:
			if c.Commit == nil || c.Commit.Path == nil {
				return nil, fmt.Errorf("%w: external commit without path", ErrInvalidCommit)
			}
			return c.Commit.Path.LeafNode.SignatureKey, nil
		}
		return nil, ErrNotMember
	}
}

func externalSenders(exts []Extension) ([]message.ExternalSender, error) {
	for _, e := range exts {
		if e.Type != message.ExtensionTypeExternalSenders {
			continue
		}
		r := codec.NewReader(e.Data)
		d := codec.Dec{R: r}
		out := codec.ReadList[message.ExternalSender](&d)
		if d.Err == nil {
			d.Fail(r.Done())
		}
		if d.Err != nil {
			return nil, fmt.Errorf("%w: external_senders: %w", ErrNotMember, d.Err)
		}
		return out, nil
	}
	return nil, fmt.Errorf("%w: no external senders", ErrNotMember)
}

// authError classifies an error from unprotecting a message.
func authError(err error) error {
	switch {
	case errors.Is(err, ErrNotMember), errors.Is(err, ErrReplay):
		return err
	case errors.Is(err, secrettree.ErrConsumed):
		return fmt.Errorf("%w: %w", ErrReplay, err)
	case errors.Is(err, ciphersuite.ErrSignature), errors.Is(err, framing.ErrMembershipTag), errors.Is(err, ciphersuite.ErrDecryption), errors.Is(err, framing.ErrPadding):
		return tampered(err)
	case errors.Is(err, treemath.ErrTreeMath):
		return fmt.Errorf("%w: %w", ErrNotMember, err)
	}
	return err
}

func (g *Group) processPublic(msg []byte, pm *message.PublicMessage) (*Processed, error) {
	c := &pm.Content
	if !g.sameGroup(c.GroupID) {
		return nil, ErrWrongGroup
	}
	unprotect := func(base *epoch) (*framing.AuthenticatedContent, error) {
		ac, err := framing.UnprotectPublic(g.cs, base.secrets.MembershipKey, pm, &base.gc, g.signatureLookup(base, c))
		if err != nil {
			return nil, authError(err)
		}
		return ac, nil
	}
	switch c.ContentType {
	case message.ContentTypeCommit:
		return g.processCommit(msg, c.Epoch, unprotect)
	case message.ContentTypeProposal:
		if c.Epoch != g.cur().gc.Epoch {
			return nil, fmt.Errorf("%w: proposal for epoch %d in epoch %d", ErrWrongEpoch, c.Epoch, g.cur().gc.Epoch)
		}
		ac, err := unprotect(g.cur())
		if err != nil {
			return nil, err
		}
		return g.processProposal(ac)
	}
	return nil, fmt.Errorf("%w: application data in a PublicMessage", framing.ErrSenderContent)
}

// privateCandidates returns the epochs numbered e, current branch first.
func (g *Group) privateCandidates(e uint64) []*epoch {
	var out []*epoch
	for i := len(g.chain) - 1; i >= 0; i-- {
		if g.chain[i].gc.Epoch == e {
			out = append(out, g.chain[i])
		}
	}
	for i := len(g.retired) - 1; i >= 0; i-- {
		if g.retired[i].gc.Epoch == e {
			out = append(out, g.retired[i])
		}
	}
	return out
}

func (g *Group) processPrivate(msg []byte, pm *message.PrivateMessage) (*Processed, error) {
	if !g.sameGroup(pm.GroupID) {
		return nil, ErrWrongGroup
	}
	unprotect := func(base *epoch) (*framing.AuthenticatedContent, error) {
		ac, err := base.keys.UnprotectPrivate(pm, &base.gc, g.signatureLookup(base, nil))
		if err != nil {
			return nil, authError(err)
		}
		return ac, nil
	}
	switch pm.ContentType {
	case message.ContentTypeCommit:
		return g.processCommit(msg, pm.Epoch, unprotect)
	case message.ContentTypeProposal:
		if pm.Epoch != g.cur().gc.Epoch {
			return nil, fmt.Errorf("%w: proposal for epoch %d in epoch %d", ErrWrongEpoch, pm.Epoch, g.cur().gc.Epoch)
		}
		ac, err := unprotect(g.cur())
		if err != nil {
			return nil, err
		}
		return g.processProposal(ac)
	}
	cands := g.privateCandidates(pm.Epoch)
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w: epoch %d (current %d)", ErrWrongEpoch, pm.Epoch, g.cur().gc.Epoch)
	}
	var firstErr error
	for _, base := range cands {
		ac, err := unprotect(base)
		if err != nil {
			// Sender data that does not decrypt means another branch's
			// keys; anything else is final.
			if firstErr == nil || !errors.Is(err, ciphersuite.ErrDecryption) {
				firstErr = err
			}
			if errors.Is(err, ciphersuite.ErrDecryption) {
				continue
			}
			return nil, err
		}
		sender := memberOf(LeafIndex(ac.Content.Sender.LeafIndex), base.tree.Leaf(LeafIndex(ac.Content.Sender.LeafIndex)))
		return &Processed{
			Kind:              KindApplication,
			Epoch:             pm.Epoch,
			senderType:        message.SenderTypeMember,
			Sender:            sender.Leaf,
			Credential:        sender.Credential,
			SignatureKey:      sender.SignatureKey,
			AuthenticatedData: ac.Content.AuthenticatedData,
			Plaintext:         ac.Content.ApplicationData,
		}, nil
	}
	return nil, firstErr
}

// senderInfo fills the sender fields of p from the content and base.
func senderInfo(p *Processed, base *epoch, c *message.FramedContent) {
	p.Epoch = c.Epoch
	p.senderType = c.Sender.Type
	p.AuthenticatedData = c.AuthenticatedData
	switch c.Sender.Type {
	case message.SenderTypeMember:
		p.Sender = LeafIndex(c.Sender.LeafIndex)
		if leaf := base.tree.Leaf(p.Sender); leaf != nil {
			m := memberOf(p.Sender, leaf)
			p.Credential, p.SignatureKey = m.Credential, m.SignatureKey
		}
	case message.SenderTypeNewMemberCommit:
		if c.Commit != nil && c.Commit.Path != nil {
			p.Credential = c.Commit.Path.LeafNode.Credential
			p.SignatureKey = slices.Clone(c.Commit.Path.LeafNode.SignatureKey)
		}
	case message.SenderTypeNewMemberProposal:
		if c.Proposal != nil && c.Proposal.Add != nil {
			p.Credential = c.Proposal.Add.KeyPackage.LeafNode.Credential
			p.SignatureKey = slices.Clone(c.Proposal.Add.KeyPackage.LeafNode.SignatureKey)
		}
	}
}

// processProposal validates a proposal by itself and keeps it for a
// later commit by reference.
func (g *Group) processProposal(ac *framing.AuthenticatedContent) (*Processed, error) {
	cur := g.cur()
	p := ac.Content.Proposal
	s := ac.Content.Sender
	switch s.Type {
	case message.SenderTypeExternal:
		switch p.Type {
		case message.ProposalTypeAdd, message.ProposalTypeRemove, message.ProposalTypePSK, message.ProposalTypeReInit, message.ProposalTypeGroupContextExtensions:
		default:
			return nil, fmt.Errorf("%w: type %d from an external sender", ErrInvalidProposal, p.Type)
		}
	case message.SenderTypeNewMemberProposal:
		if p.Type != message.ProposalTypeAdd {
			return nil, fmt.Errorf("%w: type %d from a new member", ErrInvalidProposal, p.Type)
		}
	}
	switch p.Type {
	case message.ProposalTypeAdd:
		if err := verifyKeyPackage(g.cs, &p.Add.KeyPackage, time.Now()); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
	case message.ProposalTypeUpdate:
		if s.Type != message.SenderTypeMember || p.Update.LeafNode.Source != message.LeafNodeSourceUpdate {
			return nil, fmt.Errorf("%w: update from sender type %d", ErrInvalidProposal, s.Type)
		}
		if err := g.validateLeaf(cur.tree, &p.Update.LeafNode, LeafIndex(s.LeafIndex), cur.gc.GroupID, cur.gc.Extensions, nil); err != nil {
			return nil, err
		}
	case message.ProposalTypeRemove:
		if cur.tree.Leaf(LeafIndex(p.Remove.Removed)) == nil {
			return nil, fmt.Errorf("%w: remove of blank leaf %d", ErrInvalidProposal, p.Remove.Removed)
		}
	case message.ProposalTypeExternalInit:
		return nil, fmt.Errorf("%w: external init by reference", ErrInvalidProposal)
	}
	if len(cur.proposals) >= maxPendingProposals {
		return nil, fmt.Errorf("%w: too many pending proposals", ErrInvalidProposal)
	}
	ref, err := proposalRef(g.cs, ac)
	if err != nil {
		return nil, err
	}
	if slices.ContainsFunc(cur.proposals, func(q pendingProposal) bool { return bytes.Equal(q.ref, ref) }) {
		return nil, fmt.Errorf("%w: proposal already received", ErrReplay)
	}
	cur.proposals = append(cur.proposals, pendingProposal{ref: ref, proposal: *p, sender: s})
	out := &Processed{Kind: KindProposal}
	senderInfo(out, cur, &ac.Content)
	return out, nil
}

// processCommit handles a commit sent in epoch e, which may be earlier
// than the current epoch (see the package documentation).
func (g *Group) processCommit(msg []byte, e uint64, unprotect func(*epoch) (*framing.AuthenticatedContent, error)) (*Processed, error) {
	cur := g.cur()
	if e > cur.gc.Epoch {
		return nil, fmt.Errorf("%w: commit for epoch %d in epoch %d", ErrWrongEpoch, e, cur.gc.Epoch)
	}
	h := commitHash(msg)
	idx := g.findEpoch(e)
	if idx < 0 {
		return nil, fmt.Errorf("%w: commit for epoch %d, oldest retained is %d", ErrStaleCommit, e, g.chain[0].gc.Epoch)
	}
	base := g.chain[idx]
	if idx < len(g.chain)-1 {
		switch bytes.Compare(h, base.nextHash) {
		case 0:
			return nil, fmt.Errorf("%w: commit already applied", ErrReplay)
		case 1:
			g.keepLosingEpoch(base, h, unprotect)
			return nil, fmt.Errorf("%w: loses against the commit applied in epoch %d", ErrStaleCommit, e)
		}
	}
	ac, err := unprotect(base)
	if err != nil {
		return nil, err
	}
	st, err := g.stageCommit(base, ac)
	if err != nil {
		return nil, err
	}
	out := &Processed{Kind: KindCommit, Removed: st.fx.removed, Updated: st.fx.updated}
	senderInfo(out, base, &ac.Content)
	if ac.Content.Sender.Type == message.SenderTypeNewMemberCommit {
		out.Sender = st.committer
	}
	var lost []*LostCommit
	before := g.cur().tree
	switched := idx < len(g.chain)-1
	if switched {
		// The commit wins: undo the later epochs of this branch, keeping
		// them read-only for application messages already sent in them.
		for _, ep := range g.chain[idx:] {
			if ep.nextOwn != nil && ep != g.cur() {
				lost = append(lost, ep.nextOwn)
			}
		}
		g.retire(g.chain[idx+1:]...)
		g.chain = g.chain[:idx+1]
		base.nextHash, base.nextOwn = nil, nil
	}
	if st.selfRemoved {
		g.removed = true
		out.SelfRemoved = true
		out.NewEpoch = e + 1
		return out, nil
	}
	for i, l := range st.fx.added {
		out.Added = append(out.Added, memberOf(l, &st.fx.addedKPs[i].LeafNode))
	}
	if ac.Content.Sender.Type == message.SenderTypeNewMemberCommit {
		out.Added = append(out.Added, memberOf(st.committer, st.next.tree.Leaf(st.committer)))
	}
	if switched {
		// Report the change from the undone branch to the new state.
		out.Added, out.Removed = memberDiff(before, st.next.tree)
	}
	g.pushEpoch(st.next, h, nil)
	out.NewEpoch = st.next.gc.Epoch
	if len(lost) > 0 {
		out.LostOwnCommit = g.mergeLost(lost)
	}
	return out, nil
}

// memberDiff returns the members of tree b that are not in a and those of
// a that are not in b, matched by leaf and signature key.
func memberDiff(a, b *ratchettree.Tree) (added, removed []Member) {
	in := func(t *ratchettree.Tree, m Member) bool {
		leaf := t.Leaf(m.Leaf)
		return leaf != nil && bytes.Equal(leaf.SignatureKey, m.SignatureKey)
	}
	for _, m := range members(b) {
		if !in(a, m) {
			added = append(added, m)
		}
	}
	for _, m := range members(a) {
		if !in(b, m) {
			removed = append(removed, m)
		}
	}
	return added, removed
}

// keepLosingEpoch applies a losing commit to its base epoch, when it is
// valid, only to keep the epoch it leads to read-only, so that
// application messages its sender sent there can be read.
func (g *Group) keepLosingEpoch(base *epoch, h []byte, unprotect func(*epoch) (*framing.AuthenticatedContent, error)) {
	if slices.ContainsFunc(g.retired, func(r *epoch) bool { return bytes.Equal(r.hash, h) }) {
		return
	}
	ac, err := unprotect(base)
	if err != nil {
		return
	}
	st, err := g.stageCommit(base, ac)
	if err != nil || st.selfRemoved {
		return
	}
	st.next.hash = h
	g.retire(st.next)
}

// retire keeps epochs read-only for application messages, at most
// MaxRetainedEpochs of them.
func (g *Group) retire(eps ...*epoch) {
	g.retired = append(g.retired, eps...)
	if n := len(g.retired) - g.cfg.maxRetained(); n > 0 {
		clear(g.retired[:n])
		g.retired = slices.Delete(g.retired, 0, n)
	}
}

// mergeLost combines undone own commits into one LostCommit whose Retry
// applies to the current epoch.
func (g *Group) mergeLost(lost []*LostCommit) *LostCommit {
	out := &LostCommit{Epoch: lost[0].Epoch}
	tree := g.cur().tree
	isMember := func(sigKey []byte) (LeafIndex, bool) {
		for i := uint32(0); i < tree.NumLeaves(); i++ {
			if leaf := tree.Leaf(LeafIndex(i)); leaf != nil && bytes.Equal(leaf.SignatureKey, sigKey) {
				return LeafIndex(i), true
			}
		}
		return 0, false
	}
	for _, l := range lost {
		out.proposals = append(out.proposals, l.proposals...)
		out.Retry.Update = out.Retry.Update || l.Retry.Update
		for _, kp := range l.Retry.Add {
			dup := slices.ContainsFunc(out.Retry.Add, func(k KeyPackage) bool {
				return bytes.Equal(k.LeafNode.SignatureKey, kp.LeafNode.SignatureKey)
			})
			if _, ok := isMember(kp.LeafNode.SignatureKey); !ok && !dup {
				out.Retry.Add = append(out.Retry.Add, kp)
			}
		}
		for _, sk := range l.removedKeys {
			if li, ok := isMember(sk); ok && li != g.cur().priv.Leaf && !slices.Contains(out.Retry.Remove, li) {
				out.Retry.Remove = append(out.Retry.Remove, li)
			}
		}
		out.Retry.PSKs = append(out.Retry.PSKs, l.Retry.PSKs...)
	}
	return out
}
