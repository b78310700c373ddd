package mls

import (
	"errors"
	"fmt"
	"slices"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/framing"
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/ratchettree"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
	"github.com/xchat-im/xchat/client/mls/internal/welcome"
)

// CommitOptions says what a commit does besides committing the pending
// proposals of the epoch (by reference).
type CommitOptions struct {
	// Add adds the owners of these key packages.
	Add []KeyPackage
	// Remove removes the members at these leaves.
	Remove []LeafIndex
	// Update refreshes the committer's own leaf and path. A path is sent
	// whenever RFC 9420 requires one and always with Update or Remove.
	Update bool
	// PSKs injects pre-shared keys (external ones must be known through
	// Config.ExternalPSK); a nil Nonce is filled in.
	PSKs []PreSharedKeyID
	// AuthenticatedData is sent in clear, authenticated.
	AuthenticatedData []byte
	// NoPending leaves the pending proposals of the epoch uncommitted.
	NoPending bool
}

// self returns the member's own Sender.
func (e *epoch) self() message.Sender {
	return message.Sender{Type: message.SenderTypeMember, LeafIndex: uint32(e.priv.Leaf)}
}

// frame signs content and protects it as a PublicMessage or
// PrivateMessage of epoch base, returning the encoded MLSMessage. For
// commits, tag is called between signing and protecting to compute the
// confirmation tag.
func (g *Group) frame(base *epoch, c *message.FramedContent, private bool, tag func(*framing.AuthenticatedContent) error) ([]byte, *framing.AuthenticatedContent, error) {
	wf := WireFormatPublicMessage
	if private {
		wf = WireFormatPrivateMessage
	}
	ac, err := framing.SignFramedContent(g.cs, g.sigPriv, wf, c, &base.gc)
	if err != nil {
		return nil, nil, err
	}
	if tag != nil {
		if err := tag(ac); err != nil {
			return nil, nil, err
		}
	}
	m := MLSMessage{Version: message.ProtocolVersionMLS10, WireFormat: wf}
	if private {
		if m.PrivateMessage, err = base.keys.ProtectPrivate(ac, g.cfg.padding()); err != nil {
			return nil, nil, err
		}
	} else {
		if m.PublicMessage, err = framing.ProtectPublic(g.cs, base.secrets.MembershipKey, ac, &base.gc); err != nil {
			return nil, nil, err
		}
	}
	b, err := m.MarshalBinary()
	return b, ac, err
}

// Encrypt protects an application message for the current epoch as a
// PrivateMessage, padded to a multiple of Config.Padding bytes, and
// returns the encoded MLSMessage.
func (g *Group) Encrypt(plaintext, authenticatedData []byte) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return nil, ErrRemoved
	}
	cur := g.cur()
	c := &message.FramedContent{
		GroupID:           cur.gc.GroupID,
		Epoch:             cur.gc.Epoch,
		Sender:            cur.self(),
		AuthenticatedData: authenticatedData,
		ContentType:       message.ContentTypeApplication,
		ApplicationData:   plaintext,
	}
	b, _, err := g.frame(cur, c, true, nil)
	return b, err
}

// proposeOther sends a proposal for the current epoch and keeps it pending,
// so that the member's next Commit includes it. Update proposals are made
// with ProposeUpdate.
func (g *Group) proposeOther(p message.Proposal) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if p.Type == message.ProposalTypeUpdate {
		return nil, fmt.Errorf("%w: use ProposeUpdate", ErrInvalidProposal)
	}
	return g.propose(p, nil)
}

// ProposeAdd proposes adding the owner of kp.
func (g *Group) ProposeAdd(kp KeyPackage) ([]byte, error) {
	return g.proposeOther(message.Proposal{Type: message.ProposalTypeAdd, Add: &message.Add{KeyPackage: kp}})
}

// ProposeRemove proposes removing the member at leaf l.
func (g *Group) ProposeRemove(l LeafIndex) ([]byte, error) {
	return g.proposeOther(message.Proposal{Type: message.ProposalTypeRemove, Remove: &message.Remove{Removed: uint32(l)}})
}

// ProposeUpdate proposes replacing the member's leaf with one holding a
// fresh encryption key.
func (g *Group) ProposeUpdate() ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return nil, ErrRemoved
	}
	cur := g.cur()
	leaf := *cur.tree.Leaf(cur.priv.Leaf)
	priv, pub, err := g.cs.GenerateHPKEKey()
	if err != nil {
		return nil, err
	}
	leaf.EncryptionKey = pub
	leaf.Source = message.LeafNodeSourceUpdate
	leaf.Lifetime = message.Lifetime{}
	leaf.ParentHash = nil
	if err := ratchettree.SignLeafNode(g.cs, g.sigPriv, &leaf, cur.gc.GroupID, cur.priv.Leaf); err != nil {
		return nil, err
	}
	return g.propose(message.Proposal{Type: message.ProposalTypeUpdate, Update: &message.Update{LeafNode: leaf}}, priv)
}

func (g *Group) propose(p message.Proposal, updatePriv []byte) ([]byte, error) {
	if g.removed {
		return nil, ErrRemoved
	}
	cur := g.cur()
	if len(cur.proposals) >= maxPendingProposals {
		return nil, fmt.Errorf("%w: too many pending proposals", ErrInvalidProposal)
	}
	c := &message.FramedContent{GroupID: cur.gc.GroupID, Epoch: cur.gc.Epoch, Sender: cur.self(), ContentType: message.ContentTypeProposal, Proposal: &p}
	b, ac, err := g.frame(cur, c, g.cfg.EncryptHandshake, nil)
	if err != nil {
		return nil, err
	}
	ref, err := proposalRef(g.cs, ac)
	if err != nil {
		return nil, err
	}
	cur.proposals = append(cur.proposals, pendingProposal{ref: ref, proposal: p, sender: cur.self(), updatePriv: updatePriv})
	return b, nil
}

// Commit commits the pending proposals of the current epoch and those
// opts describes, applies the commit at once and returns it (an encoded
// MLSMessage) with a Welcome for the added members (nil when none). The
// group is then in the next epoch; should a concurrent commit with a lower
// hash arrive, Process undoes this one and reports it (see the package
// documentation).
func (g *Group) Commit(opts CommitOptions) (commit, welcome []byte, err error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return nil, nil, ErrRemoved
	}
	base := g.cur()
	self := base.self()
	own := base.priv.Leaf

	var props []pendingProposal
	var inline []bool
	var lost LostCommit
	lost.Epoch = base.gc.Epoch
	lost.Retry = CommitOptions{Add: slices.Clone(opts.Add), Update: opts.Update, PSKs: slices.Clone(opts.PSKs)}
	removing := map[uint32]bool{}
	for _, l := range opts.Remove {
		removing[uint32(l)] = true
	}
	if !opts.NoPending {
		for _, p := range base.proposals {
			if p.proposal.Type == message.ProposalTypeUpdate && p.sender == self {
				continue // own updates are replaced by the commit's path
			}
			if p.proposal.Type == message.ProposalTypeRemove {
				if removing[p.proposal.Remove.Removed] || p.proposal.Remove.Removed == uint32(own) {
					continue
				}
				removing[p.proposal.Remove.Removed] = true
			}
			if p.proposal.Type == message.ProposalTypeUpdate && removing[p.sender.LeafIndex] {
				continue
			}
			props = append(props, p)
			inline = append(inline, false)
		}
	}
	for _, kp := range opts.Add {
		if kp, err = cloneKeyPackage(kp); err != nil {
			return nil, nil, err
		}
		props = append(props, pendingProposal{proposal: message.Proposal{Type: message.ProposalTypeAdd, Add: &message.Add{KeyPackage: kp}}, sender: self})
		inline = append(inline, true)
	}
	for _, l := range opts.Remove {
		if leaf := base.tree.Leaf(l); leaf != nil {
			lost.removedKeys = append(lost.removedKeys, leaf.SignatureKey)
		}
		props = append(props, pendingProposal{proposal: message.Proposal{Type: message.ProposalTypeRemove, Remove: &message.Remove{Removed: uint32(l)}}, sender: self})
		inline = append(inline, true)
	}
	for _, id := range opts.PSKs {
		if id.Nonce == nil {
			if id.Nonce, err = randomBytes(g.cs.Nh()); err != nil {
				return nil, nil, err
			}
		}
		props = append(props, pendingProposal{proposal: message.Proposal{Type: message.ProposalTypePSK, PreSharedKey: &message.PreSharedKey{PSK: id}}, sender: self})
		inline = append(inline, true)
	}
	// The caller's own proposals must be valid; pending proposals of
	// others that are not (any more) are left out.
	nPending := 0
	for _, in := range inline {
		if !in {
			nPending++
		}
	}
	if err := g.validateProposals(base, props, inline, self, true); err != nil && nPending > 0 {
		keepP := append([]pendingProposal(nil), props[nPending:]...)
		keepI := append([]bool(nil), inline[nPending:]...)
		for i := 0; i < nPending; i++ {
			tryP := append([]pendingProposal{props[i]}, keepP...)
			tryI := append([]bool{false}, keepI...)
			if g.validateProposals(base, tryP, tryI, self, true) == nil {
				keepP, keepI = tryP, tryI
			}
		}
		props, inline = keepP, keepI
	}
	needPath := opts.Update || len(opts.Remove) > 0 || proposalPathRequired(props)
	if err := g.validateProposals(base, props, inline, self, needPath); err != nil {
		return nil, nil, err
	}
	for _, p := range props {
		lost.proposals = append(lost.proposals, p.proposal)
	}

	tree := base.tree.Clone()
	fx, err := applyProposals(tree, props, own)
	if err != nil {
		return nil, nil, err
	}
	if fx.reinit {
		return nil, nil, fmt.Errorf("%w: re-initialisation is not supported", ErrInvalidCommit)
	}
	if memberCount(tree) > g.cfg.maxMembers() {
		return nil, nil, ErrTooManyMembers
	}
	exts := base.gc.Extensions
	if fx.gce {
		exts = fx.extensions
	}
	provisional := message.GroupContext{
		CipherSuite:             base.gc.CipherSuite,
		GroupID:                 base.gc.GroupID,
		Epoch:                   base.gc.Epoch + 1,
		ConfirmedTranscriptHash: base.gc.ConfirmedTranscriptHash,
		Extensions:              exts,
	}
	c := &message.Commit{}
	for i, p := range props {
		if inline[i] {
			pp := p.proposal
			c.Proposals = append(c.Proposals, message.ProposalOrRef{Type: message.ProposalOrRefProposal, Proposal: &pp})
		} else {
			c.Proposals = append(c.Proposals, message.ProposalOrRef{Type: message.ProposalOrRefReference, Reference: p.ref})
		}
	}
	var commitSecret []byte
	var priv *ratchettree.TreeKEMPrivate
	if needPath {
		leaf := *tree.Leaf(own)
		res, err := ratchettree.GenerateUpdatePath(g.cs, tree, own, leaf, g.sigPriv, provisional, fx.added)
		if err != nil {
			return nil, nil, err
		}
		c.Path, commitSecret, priv = res.Path, res.CommitSecret, res.Private
	} else {
		priv = base.priv.Clone()
		pruneKeys(tree, priv)
	}
	th, err := tree.TreeHash(g.cs)
	if err != nil {
		return nil, nil, err
	}
	gc := provisional
	gc.TreeHash = th
	psks, err := g.resolvePSKs(base.gc.GroupID, fx.psks)
	if err != nil {
		return nil, nil, err
	}
	pskSecret, err := keyschedule.PSKSecret(g.cs, psks)
	if err != nil {
		return nil, nil, err
	}
	var secrets *keyschedule.EpochSecrets
	content := &message.FramedContent{
		GroupID:           base.gc.GroupID,
		Epoch:             base.gc.Epoch,
		Sender:            self,
		AuthenticatedData: opts.AuthenticatedData,
		ContentType:       message.ContentTypeCommit,
		Commit:            c,
	}
	msg, ac, err := g.frame(base, content, g.cfg.EncryptHandshake, func(ac *framing.AuthenticatedContent) error {
		ci, err := confirmedInput(ac)
		if err != nil {
			return err
		}
		gc.ConfirmedTranscriptHash = keyschedule.ConfirmedTranscriptHash(g.cs, base.interim, ci)
		gcb, err := gc.MarshalBinary()
		if err != nil {
			return err
		}
		if secrets, err = keyschedule.DeriveEpoch(g.cs, base.secrets.InitSecret, commitSecret, pskSecret, gcb); err != nil {
			return err
		}
		ac.Auth.ConfirmationTag = keyschedule.ConfirmationTag(g.cs, secrets.ConfirmationKey, gc.ConfirmedTranscriptHash)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	interim, err := keyschedule.InterimTranscriptHash(g.cs, gc.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	next, err := g.newEpoch(gc, tree, priv, secrets, interim, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	if len(fx.added) > 0 {
		if welcome, err = g.welcome(next, fx, psks, c.Path != nil); err != nil {
			return nil, nil, err
		}
	}
	g.pushEpoch(next, commitHash(msg), &lost)
	return msg, welcome, nil
}

// signedGroupInfo returns the signed GroupInfo of epoch e with the given
// extensions.
func (g *Group) signedGroupInfo(e *epoch, exts []Extension) (*message.GroupInfo, error) {
	gi := &message.GroupInfo{GroupContext: e.gc, Extensions: exts, ConfirmationTag: e.confirmationTag, Signer: uint32(e.priv.Leaf)}
	if err := welcome.SignGroupInfo(g.cs, g.sigPriv, gi); err != nil {
		return nil, err
	}
	return gi, nil
}

func ratchetTreeExtension(t *ratchettree.Tree) (Extension, error) {
	rt := t.RatchetTree()
	b, err := codec.MarshalAll(&rt)
	if err != nil {
		return Extension{}, err
	}
	return Extension{Type: message.ExtensionTypeRatchetTree, Data: b}, nil
}

// welcome seals the Welcome of a commit for the members it added; the
// GroupInfo carries the ratchet tree.
func (g *Group) welcome(next *epoch, fx *proposalEffects, psks []keyschedule.PSK, withPath bool) ([]byte, error) {
	rte, err := ratchetTreeExtension(next.tree)
	if err != nil {
		return nil, err
	}
	gi, err := g.signedGroupInfo(next, []Extension{rte})
	if err != nil {
		return nil, err
	}
	recipients := make([]welcome.WelcomeRecipient, len(fx.added))
	for i, l := range fx.added {
		recipients[i].KeyPackage = fx.addedKPs[i]
		if withPath {
			lca := treemath.CommonAncestor(next.priv.Leaf.Node(), l.Node())
			ps := next.priv.PathSecrets[lca]
			if ps == nil {
				return nil, errors.New("mls: welcome: no path secret for the new member's common ancestor")
			}
			recipients[i].PathSecret = ps
		}
	}
	w, err := welcome.SealWelcome(g.cs, gi, next.secrets.JoinerSecret, psks, recipients)
	if err != nil {
		return nil, err
	}
	m := MLSMessage{Version: message.ProtocolVersionMLS10, WireFormat: WireFormatWelcome, Welcome: w}
	return m.MarshalBinary()
}

// cloneKeyPackage returns a deep copy of kp.
func cloneKeyPackage(kp KeyPackage) (KeyPackage, error) {
	b, err := codec.MarshalAll(&kp)
	if err != nil {
		return KeyPackage{}, fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	var out KeyPackage
	if err := codec.UnmarshalAll(b, &out); err != nil {
		return KeyPackage{}, fmt.Errorf("%w: %w", ErrInvalidKeyPackage, err)
	}
	return out, nil
}
