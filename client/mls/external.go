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
	"github.com/xchat-im/xchat/client/mls/internal/welcome"
)

// GroupInfo returns a signed GroupInfo of the current epoch as an encoded
// MLSMessage, with the external_pub extension so that others can join by
// external commit, and the ratchet tree when withTree is set.
func (g *Group) GroupInfo(withTree bool) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.removed {
		return nil, ErrRemoved
	}
	cur := g.cur()
	pub, err := keyschedule.ExternalPub(g.cs, cur.secrets.ExternalSecret)
	if err != nil {
		return nil, err
	}
	exts := []Extension{{Type: message.ExtensionTypeExternalPub, Data: mustOpaque(pub)}}
	if withTree {
		rte, err := ratchetTreeExtension(cur.tree)
		if err != nil {
			return nil, err
		}
		exts = append(exts, rte)
	}
	gi, err := g.signedGroupInfo(cur, exts)
	if err != nil {
		return nil, err
	}
	m := MLSMessage{Version: message.ProtocolVersionMLS10, WireFormat: WireFormatGroupInfo, GroupInfo: gi}
	return m.MarshalBinary()
}

func mustOpaque(b []byte) []byte {
	var w codec.Writer
	w.Opaque(b)
	out, _ := w.Bytes()
	return out
}

// JoinExternal joins a group by external commit (RFC 9420 section
// 12.4.3.2) from an encoded GroupInfo MLSMessage carrying external_pub.
// ratchetTree is the encoded tree when given out of band; nil takes it
// from the GroupInfo. me provides the joiner's credential, signature key
// and leaf capabilities (its init key is not used). A leaf of the tree
// with the same credential is taken for the joiner's own old leaf and
// removed by the commit (a resync). It returns the group in the new epoch
// and the commit to send to the members.
func JoinExternal(cs *CipherSuite, groupInfo []byte, me *KeyPackageBundle, ratchetTree []byte, cfg Config) (*Group, []byte, error) {
	if me == nil {
		return nil, nil, errors.New("mls: join external: missing key package bundle")
	}
	if err := cfg.check(); err != nil {
		return nil, nil, fmt.Errorf("mls: join external: %w", err)
	}
	var m MLSMessage
	if err := m.UnmarshalBinary(slices.Clone(groupInfo)); err != nil {
		return nil, nil, err
	}
	if m.WireFormat != WireFormatGroupInfo {
		return nil, nil, fmt.Errorf("mls: join external: %w", codec.Invalid("wire format %d is not a GroupInfo", m.WireFormat))
	}
	gi := m.GroupInfo
	if gi.GroupContext.CipherSuite != cs.ID() {
		return nil, nil, fmt.Errorf("%w: group info uses 0x%04x", welcome.ErrWelcomeSuite, gi.GroupContext.CipherSuite)
	}
	g := &Group{cs: cs, cfg: cfg, sigPriv: slices.Clone(me.SignaturePriv)}
	tree, err := treeFromExtensions(ratchetTree, gi.Extensions)
	if err != nil {
		return nil, nil, err
	}
	signer := tree.Leaf(LeafIndex(gi.Signer))
	if signer == nil {
		return nil, nil, fmt.Errorf("%w: group info signer %d", ErrNotMember, gi.Signer)
	}
	if err := welcome.VerifyGroupInfo(cs, signer.SignatureKey, gi); err != nil {
		return nil, nil, tampered(err)
	}
	gc0 := gi.GroupContext
	if err := g.validateJoinedTree(tree, &gc0); err != nil {
		return nil, nil, err
	}
	var extPub []byte
	for _, e := range gi.Extensions {
		if e.Type == message.ExtensionTypeExternalPub {
			r := codec.NewReader(e.Data)
			if extPub, err = r.Opaque(); err != nil || r.Done() != nil {
				return nil, nil, fmt.Errorf("%w: external_pub", codec.ErrInvalidValue)
			}
		}
	}
	if extPub == nil {
		return nil, nil, fmt.Errorf("%w: group info without external_pub", codec.ErrInvalidValue)
	}
	kemOutput, initSecret, err := cs.NewExternalInit(extPub)
	if err != nil {
		return nil, nil, err
	}
	interimBefore, err := keyschedule.InterimTranscriptHash(cs, gc0.ConfirmedTranscriptHash, gi.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	if memberCount(tree)+1 > g.cfg.maxMembers() {
		return nil, nil, ErrTooManyMembers
	}
	leaf := me.KeyPackage.LeafNode
	if err := g.cfg.checkCredential(&leaf); err != nil {
		return nil, nil, err
	}
	// Resync: a leaf with the joiner's credential is its old one, removed
	// by the same commit (RFC 9420 section 12.4.3.2).
	proposals := []message.ProposalOrRef{{Type: message.ProposalOrRefProposal, Proposal: &message.Proposal{Type: message.ProposalTypeExternalInit, ExternalInit: &message.ExternalInit{KEMOutput: kemOutput}}}}
	for i := uint32(0); i < tree.NumLeaves(); i++ {
		if old := tree.Leaf(LeafIndex(i)); old != nil && sameCredential(&old.Credential, &leaf.Credential) {
			if err := tree.RemoveLeaf(LeafIndex(i)); err != nil {
				return nil, nil, err
			}
			proposals = append(proposals, message.ProposalOrRef{Type: message.ProposalOrRefProposal, Proposal: &message.Proposal{Type: message.ProposalTypeRemove, Remove: &message.Remove{Removed: i}}})
			break
		}
	}
	own, err := tree.AddLeaf(&leaf)
	if err != nil {
		return nil, nil, err
	}
	if err := checkLeafInTree(tree, &leaf, own, gc0.Extensions, nil); err != nil {
		return nil, nil, err
	}
	provisional := message.GroupContext{
		CipherSuite:             gc0.CipherSuite,
		GroupID:                 gc0.GroupID,
		Epoch:                   gc0.Epoch + 1,
		ConfirmedTranscriptHash: gc0.ConfirmedTranscriptHash,
		Extensions:              gc0.Extensions,
	}
	res, err := ratchettree.GenerateUpdatePath(cs, tree, own, leaf, g.sigPriv, provisional, nil)
	if err != nil {
		return nil, nil, err
	}
	c := &message.Commit{Proposals: proposals, Path: res.Path}
	content := &message.FramedContent{GroupID: gc0.GroupID, Epoch: gc0.Epoch, Sender: message.Sender{Type: message.SenderTypeNewMemberCommit}, ContentType: message.ContentTypeCommit, Commit: c}
	ac, err := framing.SignFramedContent(cs, g.sigPriv, WireFormatPublicMessage, content, &gc0)
	if err != nil {
		return nil, nil, err
	}
	th, err := tree.TreeHash(cs)
	if err != nil {
		return nil, nil, err
	}
	ci, err := confirmedInput(ac)
	if err != nil {
		return nil, nil, err
	}
	gc := provisional
	gc.TreeHash = th
	gc.ConfirmedTranscriptHash = keyschedule.ConfirmedTranscriptHash(cs, interimBefore, ci)
	gcb, err := gc.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	secrets, err := keyschedule.DeriveEpoch(cs, initSecret, res.CommitSecret, nil, gcb)
	if err != nil {
		return nil, nil, err
	}
	ac.Auth.ConfirmationTag = keyschedule.ConfirmationTag(cs, secrets.ConfirmationKey, gc.ConfirmedTranscriptHash)
	pm, err := framing.ProtectPublic(cs, nil, ac, &gc0)
	if err != nil {
		return nil, nil, err
	}
	out := MLSMessage{Version: message.ProtocolVersionMLS10, WireFormat: WireFormatPublicMessage, PublicMessage: pm}
	msg, err := out.MarshalBinary()
	if err != nil {
		return nil, nil, err
	}
	interim, err := keyschedule.InterimTranscriptHash(cs, gc.ConfirmedTranscriptHash, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	e, err := g.newEpoch(gc, tree, res.Private, secrets, interim, ac.Auth.ConfirmationTag)
	if err != nil {
		return nil, nil, err
	}
	g.chain = []*epoch{e}
	g.addResumption(gc.Epoch, secrets.ResumptionPSK)
	return g, msg, nil
}
