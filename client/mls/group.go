package mls

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/framing"
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/ratchettree"
	"github.com/xchat-im/xchat/client/mls/internal/secrettree"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
	"github.com/xchat-im/xchat/client/mls/internal/welcome"
)

// Defaults and bounds of Config.
const (
	defaultMaxMembers        = 1000
	defaultMaxRetainedEpochs = 4
	defaultMaxOutOfOrder     = 1000
	defaultPadding           = 32
	defaultMaxResumptionPSKs = 32
	maxPaddingBlock          = 4096
	maxRetainedEpochsLimit   = 64
	maxOutOfOrderLimit       = secrettree.MaxRatchetSkip
	maxMembersLimit          = 1 << 20
)

// Config holds the policy of a Group. ValidateCredential is required;
// the zero value of every other field applies its default.
type Config struct {
	// ValidateCredential is called whenever a leaf enters the tree or
	// changes (group creation, Add, Update, a commit's path, every leaf of
	// a tree joined by Welcome or external commit). A non-nil error
	// rejects the message or operation with ErrInvalidCredential. It must
	// be set: CreateGroup, JoinFromWelcome, JoinExternal and UnmarshalGroup
	// fail with ErrNoCredentialValidator without it.
	ValidateCredential func(c Credential, signatureKey []byte) error
	// ExternalPSK returns the secret of an external pre-shared key by its
	// psk_id; nil means none are known.
	ExternalPSK func(id []byte) ([]byte, error)
	// MaxMembers bounds the number of members (default 1000).
	MaxMembers int
	// MaxRetainedEpochs is the number of past epochs whose state is kept
	// for late application messages and for resolving concurrent commits
	// (default 4).
	MaxRetainedEpochs int
	// MaxOutOfOrder bounds how many generations of one sender's ratchet a
	// message may skip, and so how many skipped keys are kept per sender
	// (default 1000).
	MaxOutOfOrder int
	// Padding pads PrivateMessage content to a multiple of this many bytes
	// (default 32; at most 4096).
	Padding int
	// EncryptHandshake sends proposals and commits as PrivateMessages;
	// by default they are PublicMessages (which xchat seals per recipient
	// anyway).
	EncryptHandshake bool
}

func (c *Config) maxMembers() int {
	if c.MaxMembers <= 0 {
		return defaultMaxMembers
	}
	return min(c.MaxMembers, maxMembersLimit)
}

func (c *Config) maxRetained() int {
	if c.MaxRetainedEpochs <= 0 {
		return defaultMaxRetainedEpochs
	}
	return min(c.MaxRetainedEpochs, maxRetainedEpochsLimit)
}

func (c *Config) maxOutOfOrder() int {
	if c.MaxOutOfOrder <= 0 {
		return defaultMaxOutOfOrder
	}
	return min(c.MaxOutOfOrder, maxOutOfOrderLimit)
}

func (c *Config) padding() int {
	if c.Padding <= 0 {
		return defaultPadding
	}
	return min(c.Padding, maxPaddingBlock)
}

// check reports a Config a group cannot run with.
func (c *Config) check() error {
	if c.ValidateCredential == nil {
		return ErrNoCredentialValidator
	}
	return nil
}

func (c *Config) checkCredential(leaf *message.LeafNode) error {
	if c.ValidateCredential == nil {
		return ErrNoCredentialValidator
	}
	if err := c.ValidateCredential(leaf.Credential, leaf.SignatureKey); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCredential, err)
	}
	return nil
}

// LeafIndex is the position of a member's leaf among the leaves of the
// group's ratchet tree.
type LeafIndex = treemath.LeafIndex

// Member is one member of a group: its leaf index and leaf node contents.
type Member struct {
	Leaf          LeafIndex
	Credential    Credential
	SignatureKey  []byte
	EncryptionKey []byte
}

func memberOf(l LeafIndex, leaf *message.LeafNode) Member {
	c := leaf.Credential
	c.Identity = slices.Clone(c.Identity)
	c.Certificates = slices.Clone(c.Certificates)
	for i := range c.Certificates {
		c.Certificates[i] = slices.Clone(c.Certificates[i])
	}
	return Member{Leaf: l, Credential: c, SignatureKey: slices.Clone(leaf.SignatureKey), EncryptionKey: slices.Clone(leaf.EncryptionKey)}
}

// pendingProposal is a proposal received or sent in the current epoch, to
// be committed by reference.
type pendingProposal struct {
	ref      []byte
	proposal message.Proposal
	sender   message.Sender
	// updatePriv is the new leaf private key of an own Update proposal.
	updatePriv []byte
}

// epoch is the state of the group in one epoch. Once the group moves on,
// everything but keys (which late messages still consume) is read-only.
type epoch struct {
	gc              message.GroupContext
	tree            *ratchettree.Tree
	priv            *ratchettree.TreeKEMPrivate
	secrets         *keyschedule.EpochSecrets
	keys            *framing.MessageKeys
	interim         []byte
	confirmationTag []byte
	proposals       []pendingProposal

	// Set once a commit moved the group on from this epoch: the SHA-256
	// of the commit's MLSMessage and, for own commits, what it carried.
	nextHash []byte
	nextOwn  *LostCommit
	// hash is the SHA-256 of the commit that led to this epoch (nil for
	// an epoch joined or created).
	hash []byte
}

// resumptionPSK is the resumption_psk of an epoch the member was in.
type resumptionPSK struct {
	epoch  uint64
	secret []byte
}

// Group is one member's state of an MLS group (RFC 9420): the current
// epoch, a few retained past epochs and the member's private keys. It is
// safe for concurrent use.
type Group struct {
	mu      sync.Mutex
	cs      *CipherSuite
	cfg     Config
	sigPriv []byte
	// chain holds the current epoch last, preceded by up to
	// cfg.maxRetained() earlier epochs of the same branch.
	chain []*epoch
	// retired holds epochs of branches that lost a commit race, kept only
	// to decrypt application messages already sent in them.
	retired    []*epoch
	resumption []resumptionPSK
	removed    bool
	// welcomedBy is the GroupInfo signer of the Welcome this member
	// joined by (not kept in the saved state).
	welcomedBy    LeafIndex
	joinedWelcome bool
}

// WelcomedBy returns the leaf of the member that signed the GroupInfo of
// the Welcome this group was joined by, on the Group JoinFromWelcome
// returned; false otherwise.
func (g *Group) WelcomedBy() (LeafIndex, bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.welcomedBy, g.joinedWelcome
}

func (g *Group) cur() *epoch { return g.chain[len(g.chain)-1] }

// CipherSuite returns the group's cipher suite.
func (g *Group) CipherSuite() *CipherSuite { return g.cs }

// Epoch returns the current epoch number.
func (g *Group) Epoch() uint64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur().gc.Epoch
}

// GroupID returns the group identifier.
func (g *Group) GroupID() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.cur().gc.GroupID)
}

// EpochAuthenticator returns the current epoch's epoch_authenticator,
// which members can compare out of band to detect a forked group.
func (g *Group) EpochAuthenticator() []byte {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.cur().secrets.EpochAuthenticator)
}

// OwnLeaf returns the member's own leaf index.
func (g *Group) OwnLeaf() LeafIndex {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.cur().priv.Leaf
}

// Removed reports whether the member was removed from the group.
func (g *Group) Removed() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.removed
}

// Members returns the members of the current epoch in leaf order.
func (g *Group) Members() []Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	return members(g.cur().tree)
}

func members(t *ratchettree.Tree) []Member {
	var out []Member
	for i := uint32(0); i < t.NumLeaves(); i++ {
		if leaf := t.Leaf(LeafIndex(i)); leaf != nil {
			out = append(out, memberOf(LeafIndex(i), leaf))
		}
	}
	return out
}

func memberCount(t *ratchettree.Tree) int {
	n := 0
	for i := uint32(0); i < t.NumLeaves(); i++ {
		if t.Leaf(LeafIndex(i)) != nil {
			n++
		}
	}
	return n
}

// Export returns MLS-Exporter(label, context, n) of the current epoch
// (RFC 9420 section 8.5).
func (g *Group) Export(label string, context []byte, n int) ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return keyschedule.Export(g.cs, g.cur().secrets.ExporterSecret, label, context, n)
}

// RatchetTree returns the encoded ratchet tree of the current epoch, as
// JoinFromWelcome and JoinExternal take it.
func (g *Group) RatchetTree() ([]byte, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	rt := g.cur().tree.RatchetTree()
	return codec.MarshalAll(&rt)
}

// CreateGroup starts a new group with id groupID whose only member is the
// owner of me (RFC 9420 section 11). The group is in epoch 0.
func CreateGroup(cs *CipherSuite, groupID []byte, me *KeyPackageBundle, cfg Config) (*Group, error) {
	if me == nil || len(groupID) == 0 {
		return nil, errors.New("mls: create group: missing key package bundle or group id")
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("mls: create group: %w", err)
	}
	if me.KeyPackage.CipherSuite != cs.ID() {
		return nil, fmt.Errorf("%w: key package uses 0x%04x", welcome.ErrWelcomeSuite, me.KeyPackage.CipherSuite)
	}
	leaf := me.KeyPackage.LeafNode
	if err := cfg.checkCredential(&leaf); err != nil {
		return nil, err
	}
	tree, err := ratchettree.NewTree(message.RatchetTree{{Type: message.NodeTypeLeaf, Leaf: &leaf}})
	if err != nil {
		return nil, err
	}
	th, err := tree.TreeHash(cs)
	if err != nil {
		return nil, err
	}
	gc := message.GroupContext{CipherSuite: cs.ID(), GroupID: slices.Clone(groupID), Epoch: 0, TreeHash: th, ConfirmedTranscriptHash: []byte{}}
	gcb, err := gc.MarshalBinary()
	if err != nil {
		return nil, err
	}
	initSecret, err := randomBytes(cs.Nh())
	if err != nil {
		return nil, err
	}
	// epoch_secret derives from a random init secret and zero commit and
	// PSK secrets (RFC 9420 section 8).
	secrets, err := keyschedule.DeriveEpoch(cs, initSecret, nil, nil, gcb)
	if err != nil {
		return nil, err
	}
	g := &Group{cs: cs, cfg: cfg, sigPriv: slices.Clone(me.SignaturePriv)}
	tag := keyschedule.ConfirmationTag(cs, secrets.ConfirmationKey, gc.ConfirmedTranscriptHash)
	interim, err := keyschedule.InterimTranscriptHash(cs, gc.ConfirmedTranscriptHash, tag)
	if err != nil {
		return nil, err
	}
	e, err := g.newEpoch(gc, tree, ratchettree.NewTreeKEMPrivate(0, me.EncryptionPriv), secrets, interim, tag)
	if err != nil {
		return nil, err
	}
	g.chain = []*epoch{e}
	g.addResumption(0, secrets.ResumptionPSK)
	return g, nil
}

// newEpoch assembles an epoch and its message keys.
func (g *Group) newEpoch(gc message.GroupContext, tree *ratchettree.Tree, priv *ratchettree.TreeKEMPrivate, secrets *keyschedule.EpochSecrets, interim, tag []byte) (*epoch, error) {
	keys, err := framing.NewMessageKeys(g.cs, secrets.EncryptionSecret, secrets.SenderDataSecret, tree.NumLeaves())
	if err != nil {
		return nil, err
	}
	keys.MaxSkip = g.cfg.maxOutOfOrder()
	return &epoch{gc: gc, tree: tree, priv: priv, secrets: secrets, keys: keys, interim: interim, confirmationTag: tag}, nil
}

func (g *Group) addResumption(e uint64, secret []byte) {
	g.resumption = slices.DeleteFunc(g.resumption, func(r resumptionPSK) bool { return r.epoch >= e })
	g.resumption = append(g.resumption, resumptionPSK{epoch: e, secret: slices.Clone(secret)})
	if n := len(g.resumption) - defaultMaxResumptionPSKs; n > 0 {
		g.resumption = slices.Delete(g.resumption, 0, n)
	}
}

// pushEpoch makes e the current epoch, recording the hash of the commit
// that led to it (and, for own commits, what it carried) on the previous
// epoch, and drops epochs beyond the retention limit.
func (g *Group) pushEpoch(e *epoch, commitHash []byte, own *LostCommit) {
	prev := g.cur()
	prev.nextHash = commitHash
	prev.nextOwn = own
	e.hash = commitHash
	g.chain = append(g.chain, e)
	if n := len(g.chain) - 1 - g.cfg.maxRetained(); n > 0 {
		clear(g.chain[:n])
		g.chain = slices.Delete(g.chain, 0, n)
	}
	g.addResumption(e.gc.Epoch, e.secrets.ResumptionPSK)
}

// sameGroup reports whether id is the group's id.
func (g *Group) sameGroup(id []byte) bool { return bytes.Equal(id, g.cur().gc.GroupID) }
