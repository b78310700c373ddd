package mls

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"slices"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/framing"
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/ratchettree"
)

// Proposal reference label (RFC 9420 section 5.2).
const labelProposalRef = "MLS 1.0 Proposal Reference"

// proposalRef returns the ProposalRef of a proposal's AuthenticatedContent.
func proposalRef(cs *CipherSuite, ac *framing.AuthenticatedContent) ([]byte, error) {
	b, err := codec.MarshalAll(ac)
	if err != nil {
		return nil, err
	}
	return cs.RefHash(labelProposalRef, b)
}

// confirmedInput encodes ConfirmedTranscriptHashInput: the wire format,
// the FramedContent and the signature of a commit.
func confirmedInput(ac *framing.AuthenticatedContent) ([]byte, error) {
	var w codec.Writer
	w.Uint16(uint16(ac.WireFormat))
	ac.Content.Marshal(&w)
	w.Opaque(ac.Auth.Signature)
	return w.Bytes()
}

// commitHash is the hash that orders concurrent commits: SHA-256 of the
// commit's MLSMessage bytes.
func commitHash(msg []byte) []byte {
	h := sha256.Sum256(msg)
	return h[:]
}

// staged is a commit applied to a copy of its base epoch.
type staged struct {
	next        *epoch
	fx          *proposalEffects
	committer   LeafIndex
	selfRemoved bool
	proposals   []message.Proposal
}

// resolveCommitProposals expands a commit's proposal list: references are
// looked up among the base epoch's pending proposals.
func (g *Group) resolveCommitProposals(base *epoch, c *message.Commit, committer message.Sender) ([]pendingProposal, []bool, error) {
	if len(c.Proposals) > maxPendingProposals {
		return nil, nil, fmt.Errorf("%w: %d proposals", ErrInvalidCommit, len(c.Proposals))
	}
	props := make([]pendingProposal, 0, len(c.Proposals))
	inline := make([]bool, 0, len(c.Proposals))
	for _, por := range c.Proposals {
		switch por.Type {
		case message.ProposalOrRefProposal:
			props = append(props, pendingProposal{proposal: *por.Proposal, sender: committer})
			inline = append(inline, true)
		case message.ProposalOrRefReference:
			i := slices.IndexFunc(base.proposals, func(p pendingProposal) bool { return bytes.Equal(p.ref, por.Reference) })
			if i < 0 {
				return nil, nil, fmt.Errorf("%w: unknown proposal reference", ErrInvalidCommit)
			}
			props = append(props, base.proposals[i])
			inline = append(inline, false)
		default:
			return nil, nil, fmt.Errorf("%w: proposal-or-ref type %d", ErrInvalidCommit, por.Type)
		}
	}
	return props, inline, nil
}

// stageCommit applies a verified commit (its signature and membership tag
// already checked against base) to a copy of base (RFC 9420 section
// 12.4.2) and returns the next epoch. base is not changed.
func (g *Group) stageCommit(base *epoch, ac *framing.AuthenticatedContent) (*staged, error) {
	c := ac.Content.Commit
	sender := ac.Content.Sender
	external := sender.Type == message.SenderTypeNewMemberCommit
	props, inline, err := g.resolveCommitProposals(base, c, sender)
	if err != nil {
		return nil, err
	}
	var extCred *Credential
	if external && c.Path != nil {
		extCred = &c.Path.LeafNode.Credential
	}
	if err := g.validateProposalsExt(base, props, inline, sender, c.Path != nil, extCred); err != nil {
		return nil, err
	}
	own := base.priv.Leaf
	tree := base.tree.Clone()
	fx, err := applyProposals(tree, props, own)
	if err != nil {
		return nil, err
	}
	if fx.reinit {
		return nil, fmt.Errorf("%w: re-initialisation is not supported", ErrInvalidCommit)
	}
	if memberCount(tree)+boolInt(external) > g.cfg.maxMembers() {
		return nil, ErrTooManyMembers
	}
	st := &staged{fx: fx}
	for _, p := range props {
		st.proposals = append(st.proposals, p.proposal)
	}
	if slices.ContainsFunc(fx.removed, func(m Member) bool { return m.Leaf == own }) {
		st.selfRemoved = true
		return st, nil
	}
	exts := base.gc.Extensions
	if fx.gce {
		exts = fx.extensions
	}
	priv := base.priv.Clone()
	if fx.ownUpdate != nil {
		priv.Keys[own.Node()] = slices.Clone(fx.ownUpdate)
	}
	pruneKeys(tree, priv)

	committer := LeafIndex(sender.LeafIndex)
	if external {
		if c.Path == nil {
			return nil, fmt.Errorf("%w: external commit without path", ErrInvalidCommit)
		}
		leaf := c.Path.LeafNode
		if committer, err = tree.AddLeaf(&leaf); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
	}
	st.committer = committer
	provisional := message.GroupContext{
		CipherSuite:             base.gc.CipherSuite,
		GroupID:                 base.gc.GroupID,
		Epoch:                   base.gc.Epoch + 1,
		ConfirmedTranscriptHash: base.gc.ConfirmedTranscriptHash,
		Extensions:              exts,
	}
	var commitSecret []byte
	if c.Path != nil {
		leaf := &c.Path.LeafNode
		if leaf.Source != message.LeafNodeSourceCommit {
			return nil, fmt.Errorf("%w: path leaf source %d", ErrInvalidCommit, leaf.Source)
		}
		// ApplyUpdatePath verifies the leaf's signature.
		if err := g.cfg.checkCredential(leaf); err != nil {
			return nil, err
		}
		if err := checkLeafInTree(tree, leaf, committer, exts, nil); err != nil {
			return nil, err
		}
		if old := base.tree.Leaf(committer); !external && old != nil && bytes.Equal(old.EncryptionKey, leaf.EncryptionKey) {
			return nil, fmt.Errorf("%w: path keeps the committer's encryption key", ErrInvalidCommit)
		}
		if commitSecret, err = ratchettree.ApplyUpdatePath(g.cs, tree, priv, committer, c.Path, provisional, fx.added); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidCommit, err)
		}
	}
	th, err := tree.TreeHash(g.cs)
	if err != nil {
		return nil, err
	}
	ci, err := confirmedInput(ac)
	if err != nil {
		return nil, err
	}
	gc := provisional
	gc.TreeHash = th
	gc.ConfirmedTranscriptHash = keyschedule.ConfirmedTranscriptHash(g.cs, base.interim, ci)
	gcb, err := gc.MarshalBinary()
	if err != nil {
		return nil, err
	}
	psks, err := g.resolvePSKs(base.gc.GroupID, fx.psks)
	if err != nil {
		return nil, err
	}
	pskSecret, err := keyschedule.PSKSecret(g.cs, psks)
	if err != nil {
		return nil, err
	}
	initSecret := base.secrets.InitSecret
	if external {
		if fx.extInit == nil {
			return nil, fmt.Errorf("%w: external commit without external init", ErrInvalidCommit)
		}
		if initSecret, err = g.cs.ExternalInitSecret(base.secrets.ExternalSecret, fx.extInit.KEMOutput); err != nil {
			return nil, fmt.Errorf("%w: external init: %w", ErrInvalidCommit, err)
		}
	}
	secrets, err := keyschedule.DeriveEpoch(g.cs, initSecret, commitSecret, pskSecret, gcb)
	if err != nil {
		return nil, err
	}
	if !keyschedule.VerifyConfirmationTag(g.cs, secrets.ConfirmationKey, gc.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag) {
		return nil, tampered(errBadConfirmationTag)
	}
	interim, err := keyschedule.InterimTranscriptHash(g.cs, gc.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, err
	}
	if st.next, err = g.newEpoch(gc, tree, priv, secrets, interim, ac.Auth.ConfirmationTag); err != nil {
		return nil, err
	}
	return st, nil
}

// pruneKeys drops private keys of nodes that are now blank.
func pruneKeys(t *ratchettree.Tree, priv *ratchettree.TreeKEMPrivate) {
	for x := range priv.Keys {
		if t.Node(x) == nil {
			delete(priv.Keys, x)
			delete(priv.PathSecrets, x)
		}
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
