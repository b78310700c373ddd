package mls

import (
	"bytes"
	"fmt"
	"slices"
	"time"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/ratchettree"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// defaultExtension reports whether extension type t is defined by RFC
// 9420 and so need not be listed in capabilities.
func defaultExtension(t uint16) bool { return t >= 1 && t <= 5 }

// defaultProposal reports whether proposal type t is defined by RFC 9420.
func defaultProposal(t uint16) bool { return t >= 1 && t <= 7 }

// requiredCapabilities decodes the required_capabilities extension of a
// GroupContext, if present.
func requiredCapabilities(exts []Extension) (ext, props, creds []uint16, err error) {
	for _, e := range exts {
		if e.Type != message.ExtensionTypeRequiredCapabilities {
			continue
		}
		r := codec.NewReader(e.Data)
		d := codec.Dec{R: r}
		ext, props, creds = codec.ReadU16List(&d), codec.ReadU16List(&d), codec.ReadU16List(&d)
		if d.Err == nil {
			d.Fail(r.Done())
		}
		if d.Err != nil {
			return nil, nil, nil, fmt.Errorf("%w: required_capabilities: %w", ErrInvalidProposal, d.Err)
		}
	}
	return ext, props, creds, nil
}

// supportsRequired checks that a leaf's capabilities cover the group's
// required capabilities.
func supportsRequired(c *message.Capabilities, gcExts []Extension) error {
	ext, props, creds, err := requiredCapabilities(gcExts)
	if err != nil {
		return err
	}
	for _, t := range ext {
		if !defaultExtension(t) && !slices.Contains(c.Extensions, t) {
			return fmt.Errorf("%w: leaf lacks required extension %d", ErrInvalidProposal, t)
		}
	}
	for _, t := range props {
		if !defaultProposal(t) && !slices.Contains(c.Proposals, t) {
			return fmt.Errorf("%w: leaf lacks required proposal type %d", ErrInvalidProposal, t)
		}
	}
	for _, t := range creds {
		if !slices.Contains(c.Credentials, t) {
			return fmt.Errorf("%w: leaf lacks required credential type %d", ErrInvalidProposal, t)
		}
	}
	return nil
}

// validateLeaf checks a leaf node that enters tree at leaf l (RFC 9420
// section 7.3): credential, signature, required capabilities, credential
// types supported both ways, extensions listed in capabilities, lifetime
// for key package leaves, and encryption and signature keys unique in the
// tree (ignoring leaf l itself and the leaves in ignore).
func (g *Group) validateLeaf(tree *ratchettree.Tree, leaf *message.LeafNode, l LeafIndex, groupID []byte, gcExts []Extension, ignore []LeafIndex) error {
	if err := g.cfg.checkCredential(leaf); err != nil {
		return err
	}
	var sigGroup []byte
	if leaf.Source != message.LeafNodeSourceKeyPackage {
		sigGroup = groupID
	}
	if err := ratchettree.VerifyLeafNodeSignature(g.cs, leaf, sigGroup, l); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
	}
	return checkLeafInTree(tree, leaf, l, gcExts, ignore)
}

// checkLeafInTree runs the checks of validateLeaf that do not involve
// credentials or signatures.
func checkLeafInTree(tree *ratchettree.Tree, leaf *message.LeafNode, l LeafIndex, gcExts []Extension, ignore []LeafIndex) error {
	if err := supportsRequired(&leaf.Capabilities, gcExts); err != nil {
		return err
	}
	for _, e := range leaf.Extensions {
		if !defaultExtension(e.Type) && !slices.Contains(leaf.Capabilities.Extensions, e.Type) {
			return fmt.Errorf("%w: leaf extension %d not in its capabilities", ErrInvalidProposal, e.Type)
		}
	}
	for _, e := range gcExts {
		if !defaultExtension(e.Type) && !slices.Contains(leaf.Capabilities.Extensions, e.Type) {
			return fmt.Errorf("%w: leaf does not support group extension %d", ErrInvalidProposal, e.Type)
		}
	}
	if leaf.Source == message.LeafNodeSourceKeyPackage {
		now := unixSeconds(time.Now())
		if now < leaf.Lifetime.NotBefore || now > leaf.Lifetime.NotAfter {
			return fmt.Errorf("%w: leaf outside its lifetime", ErrInvalidProposal)
		}
	}
	for i := uint32(0); i < tree.NumLeaves(); i++ {
		li := LeafIndex(i)
		other := tree.Leaf(li)
		if other == nil || li == l || slices.Contains(ignore, li) {
			continue
		}
		if !slices.Contains(other.Capabilities.Credentials, leaf.Credential.Type) {
			return fmt.Errorf("%w: member %d does not support credential type %d", ErrInvalidProposal, i, leaf.Credential.Type)
		}
		if !slices.Contains(leaf.Capabilities.Credentials, other.Credential.Type) {
			return fmt.Errorf("%w: leaf does not support credential type %d of member %d", ErrInvalidProposal, other.Credential.Type, i)
		}
		if bytes.Equal(other.SignatureKey, leaf.SignatureKey) {
			return fmt.Errorf("%w: signature key already used by member %d", ErrInvalidProposal, i)
		}
	}
	for x := treemath.NodeIndex(0); uint32(x) < tree.Width(); x++ {
		if lx, ok := x.Leaf(); ok && (lx == l || slices.Contains(ignore, lx)) {
			continue
		}
		if k := tree.NodePublicKey(x); k != nil && bytes.Equal(k, leaf.EncryptionKey) {
			return fmt.Errorf("%w: encryption key already used by node %d", ErrInvalidProposal, x)
		}
	}
	return nil
}

// proposalPathRequired reports whether a commit of these proposals must
// carry a path (RFC 9420 section 12.4).
func proposalPathRequired(props []pendingProposal) bool {
	if len(props) == 0 {
		return true
	}
	for _, p := range props {
		switch p.proposal.Type {
		case message.ProposalTypeAdd, message.ProposalTypePSK, message.ProposalTypeReInit:
		default:
			return true
		}
	}
	return false
}

// validateProposals checks the proposal list of a commit from committer
// against the base epoch (RFC 9420 section 12.2). inline[i] tells whether
// proposal i came by value.
func (g *Group) validateProposals(base *epoch, props []pendingProposal, inline []bool, committer message.Sender, hasPath bool) error {
	return g.validateProposalsExt(base, props, inline, committer, hasPath, nil)
}

// sameCredential reports whether two credentials are identical.
func sameCredential(a, b *Credential) bool {
	x, err1 := codec.MarshalAll(a)
	y, err2 := codec.MarshalAll(b)
	return err1 == nil && err2 == nil && bytes.Equal(x, y)
}

// validateProposalsExt is validateProposals with the credential of an
// external committer, for resync removals.
func (g *Group) validateProposalsExt(base *epoch, props []pendingProposal, inline []bool, committer message.Sender, hasPath bool, extCred *Credential) error {
	tree := base.tree
	external := committer.Type == message.SenderTypeNewMemberCommit
	touched := map[LeafIndex]bool{}
	removed := map[LeafIndex]bool{}
	var gce, reinit, extInit int
	pskIDs := map[string]bool{}
	for i, p := range props {
		switch p.proposal.Type {
		case message.ProposalTypeRemove:
			l := LeafIndex(p.proposal.Remove.Removed)
			if tree.Leaf(l) == nil {
				return fmt.Errorf("%w: remove of blank leaf %d", ErrInvalidProposal, l)
			}
			if !external && committer.Type == message.SenderTypeMember && l == LeafIndex(committer.LeafIndex) {
				return fmt.Errorf("%w: committer removes itself", ErrInvalidProposal)
			}
			if touched[l] {
				return fmt.Errorf("%w: leaf %d changed twice", ErrInvalidProposal, l)
			}
			touched[l], removed[l] = true, true
		case message.ProposalTypeUpdate:
			if external || inline[i] || p.sender.Type != message.SenderTypeMember {
				return fmt.Errorf("%w: update by value or from a non-member", ErrInvalidProposal)
			}
			l := LeafIndex(p.sender.LeafIndex)
			if committer.Type == message.SenderTypeMember && l == LeafIndex(committer.LeafIndex) {
				return fmt.Errorf("%w: committer's own update", ErrInvalidProposal)
			}
			if touched[l] {
				return fmt.Errorf("%w: leaf %d changed twice", ErrInvalidProposal, l)
			}
			touched[l] = true
		case message.ProposalTypeGroupContextExtensions:
			if gce++; gce > 1 || external {
				return fmt.Errorf("%w: several group context extensions proposals", ErrInvalidProposal)
			}
		case message.ProposalTypeReInit:
			reinit++
		case message.ProposalTypeExternalInit:
			if !external {
				return fmt.Errorf("%w: external init in a member commit", ErrInvalidProposal)
			}
			extInit++
		case message.ProposalTypePSK:
			id := p.proposal.PreSharedKey.PSK
			if id.Type == keyschedule.PSKTypeResumption && id.Usage != keyschedule.ResumptionPSKUsageApplication {
				return fmt.Errorf("%w: resumption PSK usage %d in a commit", ErrInvalidProposal, id.Usage)
			}
			if len(id.Nonce) != g.cs.Nh() {
				return fmt.Errorf("%w: PSK nonce of %d bytes", ErrInvalidProposal, len(id.Nonce))
			}
			b, err := codec.MarshalAll(&message.PreSharedKey{PSK: PreSharedKeyID{Type: id.Type, ID: id.ID, Usage: id.Usage, GroupID: id.GroupID, Epoch: id.Epoch}})
			if err != nil {
				return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
			}
			if pskIDs[string(b)] {
				return fmt.Errorf("%w: duplicate PSK", ErrInvalidProposal)
			}
			pskIDs[string(b)] = true
		case message.ProposalTypeAdd:
			if external {
				return fmt.Errorf("%w: add in an external commit", ErrInvalidProposal)
			}
		}
	}
	if reinit > 0 && len(props) != 1 {
		return fmt.Errorf("%w: re-init with other proposals", ErrInvalidProposal)
	}
	if external {
		if extInit != 1 {
			return fmt.Errorf("%w: external commit with %d external init proposals", ErrInvalidCommit, extInit)
		}
		if len(removed) > 1 {
			return fmt.Errorf("%w: external commit removes %d members", ErrInvalidCommit, len(removed))
		}
		for i := range props {
			if !inline[i] {
				return fmt.Errorf("%w: external commit with proposals by reference", ErrInvalidCommit)
			}
		}
	}
	// Adds: valid key packages, with keys unique in the tree (minus the
	// removed and updated leaves) and among themselves. The member limit
	// is checked first, before any signature.
	nAdds := 0
	for _, p := range props {
		if p.proposal.Type == message.ProposalTypeAdd {
			nAdds++
		}
	}
	if memberCount(tree)-len(removed)+nAdds > g.cfg.maxMembers() {
		return ErrTooManyMembers
	}
	addKeys := map[string]bool{}
	for _, p := range props {
		if p.proposal.Type != message.ProposalTypeAdd {
			continue
		}
		kp := &p.proposal.Add.KeyPackage
		if err := verifyKeyPackage(g.cs, kp, time.Now()); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		if err := g.cfg.checkCredential(&kp.LeafNode); err != nil {
			return err
		}
		ignore := make([]LeafIndex, 0, len(removed))
		for l := range removed {
			ignore = append(ignore, l)
		}
		if err := checkLeafInTree(tree, &kp.LeafNode, LeafIndex(^uint32(0)), base.gc.Extensions, ignore); err != nil {
			return err
		}
		if addKeys[string(kp.LeafNode.SignatureKey)] {
			return fmt.Errorf("%w: two adds with the same signature key", ErrInvalidProposal)
		}
		addKeys[string(kp.LeafNode.SignatureKey)] = true
	}
	// Updates: valid leaves for their sender.
	for _, p := range props {
		if p.proposal.Type != message.ProposalTypeUpdate {
			continue
		}
		leaf := &p.proposal.Update.LeafNode
		if leaf.Source != message.LeafNodeSourceUpdate {
			return fmt.Errorf("%w: update leaf source %d", ErrInvalidProposal, leaf.Source)
		}
		l := LeafIndex(p.sender.LeafIndex)
		if err := g.validateLeaf(tree, leaf, l, base.gc.GroupID, base.gc.Extensions, nil); err != nil {
			return err
		}
		if old := tree.Leaf(l); old != nil && bytes.Equal(old.EncryptionKey, leaf.EncryptionKey) {
			return fmt.Errorf("%w: update keeps the encryption key", ErrInvalidProposal)
		}
	}
	// A resync external commit may only remove the joiner's old leaf.
	if external && len(removed) == 1 && committer.Type == message.SenderTypeNewMemberCommit {
		for l := range removed {
			if old := tree.Leaf(l); old == nil || extCred == nil || !sameCredential(&old.Credential, extCred) {
				return fmt.Errorf("%w: external commit removes another member", ErrInvalidCommit)
			}
		}
	}
	if gce == 1 {
		for _, p := range props {
			if p.proposal.Type != message.ProposalTypeGroupContextExtensions {
				continue
			}
			exts := p.proposal.GroupContextExtensions.Extensions
			for i := uint32(0); i < tree.NumLeaves(); i++ {
				if leaf := tree.Leaf(LeafIndex(i)); leaf != nil && !removed[LeafIndex(i)] {
					if err := supportsRequired(&leaf.Capabilities, exts); err != nil {
						return err
					}
					for _, e := range exts {
						if !defaultExtension(e.Type) && !slices.Contains(leaf.Capabilities.Extensions, e.Type) {
							return fmt.Errorf("%w: member %d does not support extension %d", ErrInvalidProposal, i, e.Type)
						}
					}
				}
			}
		}
	}
	if !hasPath && proposalPathRequired(props) {
		return fmt.Errorf("%w: path required", ErrInvalidCommit)
	}
	return nil
}

// proposalEffects is what applying a commit's proposals did.
type proposalEffects struct {
	gce        bool
	extensions []Extension
	added      []LeafIndex
	addedKPs   []*KeyPackage
	removed    []Member
	updated    []Member
	psks       []PreSharedKeyID
	extInit    *message.ExternalInit
	reinit     bool
	ownUpdate  []byte
}

// applyProposals applies props to tree in the order RFC 9420 section 12.3
// prescribes: group context extensions, updates, removes, adds, PSKs.
func applyProposals(tree *ratchettree.Tree, props []pendingProposal, own LeafIndex) (*proposalEffects, error) {
	fx := &proposalEffects{}
	for _, p := range props {
		switch p.proposal.Type {
		case message.ProposalTypeGroupContextExtensions:
			fx.gce = true
			fx.extensions = p.proposal.GroupContextExtensions.Extensions
			if fx.extensions == nil {
				fx.extensions = []Extension{}
			}
		case message.ProposalTypeExternalInit:
			fx.extInit = p.proposal.ExternalInit
		case message.ProposalTypeReInit:
			fx.reinit = true
		}
	}
	for _, p := range props {
		if p.proposal.Type != message.ProposalTypeUpdate {
			continue
		}
		l := LeafIndex(p.sender.LeafIndex)
		leaf := p.proposal.Update.LeafNode
		if err := tree.UpdateLeaf(l, &leaf); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		fx.updated = append(fx.updated, memberOf(l, &leaf))
		if l == own && p.updatePriv != nil {
			fx.ownUpdate = p.updatePriv
		}
	}
	for _, p := range props {
		if p.proposal.Type != message.ProposalTypeRemove {
			continue
		}
		l := LeafIndex(p.proposal.Remove.Removed)
		old := tree.Leaf(l)
		if old == nil {
			return nil, fmt.Errorf("%w: remove of blank leaf %d", ErrInvalidProposal, l)
		}
		fx.removed = append(fx.removed, memberOf(l, old))
		if err := tree.RemoveLeaf(l); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
	}
	for _, p := range props {
		if p.proposal.Type != message.ProposalTypeAdd {
			continue
		}
		kp := &p.proposal.Add.KeyPackage
		leaf := kp.LeafNode
		l, err := tree.AddLeaf(&leaf)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrInvalidProposal, err)
		}
		fx.added = append(fx.added, l)
		fx.addedKPs = append(fx.addedKPs, kp)
	}
	for _, p := range props {
		if p.proposal.Type == message.ProposalTypePSK {
			fx.psks = append(fx.psks, p.proposal.PreSharedKey.PSK)
		}
	}
	return fx, nil
}

// resolvePSKs looks up the secrets of the PSKs a commit injects.
func (g *Group) resolvePSKs(groupID []byte, ids []PreSharedKeyID) ([]keyschedule.PSK, error) {
	out := make([]keyschedule.PSK, len(ids))
	for i, id := range ids {
		var secret []byte
		switch id.Type {
		case keyschedule.PSKTypeExternal:
			if g.cfg.ExternalPSK != nil {
				s, err := g.cfg.ExternalPSK(id.ID)
				if err == nil {
					secret = s
				}
			}
		case keyschedule.PSKTypeResumption:
			if bytes.Equal(id.GroupID, groupID) {
				for _, r := range g.resumption {
					if r.epoch == id.Epoch {
						secret = r.secret
					}
				}
			}
		}
		if secret == nil {
			return nil, fmt.Errorf("%w: unknown pre-shared key", ErrInvalidProposal)
		}
		out[i] = keyschedule.PSK{ID: id, Secret: secret}
	}
	return out, nil
}
