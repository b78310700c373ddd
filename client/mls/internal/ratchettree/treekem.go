package ratchettree

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// ErrUpdatePath reports an UpdatePath that cannot be applied: a wrong
// shape, no decryptable ciphertext, or derived keys that do not match.
var ErrUpdatePath = errors.New("mls: invalid update path")

// TreeKEMPrivate is a member's private view of the ratchet tree: its leaf,
// the HPKE private keys it holds (its leaf's and those of parent nodes on
// its direct path) and the path secrets it knows, by node.
type TreeKEMPrivate struct {
	Leaf        treemath.LeafIndex
	Keys        map[treemath.NodeIndex][]byte
	PathSecrets map[treemath.NodeIndex][]byte
}

// NewTreeKEMPrivate returns the private state of the member at leaf l
// whose leaf encryption private key is leafPriv.
func NewTreeKEMPrivate(l treemath.LeafIndex, leafPriv []byte) *TreeKEMPrivate {
	return &TreeKEMPrivate{
		Leaf:        l,
		Keys:        map[treemath.NodeIndex][]byte{l.Node(): slices.Clone(leafPriv)},
		PathSecrets: map[treemath.NodeIndex][]byte{},
	}
}

// Clone returns an independent copy of the private state.
func (p *TreeKEMPrivate) Clone() *TreeKEMPrivate {
	c := &TreeKEMPrivate{Leaf: p.Leaf, Keys: map[treemath.NodeIndex][]byte{}, PathSecrets: map[treemath.NodeIndex][]byte{}}
	for k, v := range p.Keys {
		c.Keys[k] = slices.Clone(v)
	}
	for k, v := range p.PathSecrets {
		c.PathSecrets[k] = slices.Clone(v)
	}
	return c
}

// SetPathSecret records the path secret of node x, derives the node's key
// pair from it and returns the public key.
func (p *TreeKEMPrivate) SetPathSecret(cs *ciphersuite.CipherSuite, x treemath.NodeIndex, pathSecret []byte) ([]byte, error) {
	priv, pub, err := pathSecretKeyPair(cs, pathSecret)
	if err != nil {
		return nil, err
	}
	p.PathSecrets[x] = slices.Clone(pathSecret)
	p.Keys[x] = priv
	return pub, nil
}

// pathSecretKeyPair derives the HPKE key pair of a node from its path
// secret: node_secret = DeriveSecret(path_secret, "node"), then
// DeriveKeyPair(node_secret) (RFC 9420 section 7.4).
func pathSecretKeyPair(cs *ciphersuite.CipherSuite, pathSecret []byte) (priv, pub []byte, err error) {
	ns, err := cs.DeriveSecret(pathSecret, "node")
	if err != nil {
		return nil, nil, err
	}
	return cs.DeriveKeyPair(ns)
}

// NextPathSecret returns DeriveSecret(pathSecret, "path"): the path secret
// of the next node up the filtered direct path, or the commit secret after
// the root.
func NextPathSecret(cs *ciphersuite.CipherSuite, pathSecret []byte) ([]byte, error) {
	return cs.DeriveSecret(pathSecret, "path")
}

// copathChild returns the child of the parent p that does not lie above
// (or at) leaf l.
func copathChild(p treemath.NodeIndex, l treemath.LeafIndex) (treemath.NodeIndex, error) {
	c, err := p.Left()
	if err != nil {
		return 0, err
	}
	if inSubtree(l.Node(), c) {
		return p.Right()
	}
	return c, nil
}

// resolutionExcluding returns the resolution of x without the leaves in
// exclude (the leaves added by the commit, RFC 9420 section 12.4.2).
func (t *Tree) resolutionExcluding(x treemath.NodeIndex, exclude []treemath.LeafIndex) []treemath.NodeIndex {
	return slices.DeleteFunc(t.Resolution(x), func(y treemath.NodeIndex) bool {
		l, ok := y.Leaf()
		return ok && slices.Contains(exclude, l)
	})
}

// mergePath sets the committer's new path into t: it blanks the direct path
// of leaf l, stores a new parent node with key keys[i] at each node of the
// filtered direct path fdp, sets the parent hashes and stores leaf (whose
// ParentHash is set to the computed value when setLeafHash is true and
// must match it otherwise).
func (t *Tree) mergePath(cs *ciphersuite.CipherSuite, l treemath.LeafIndex, fdp []treemath.NodeIndex, keys [][]byte, leaf *message.LeafNode, setLeafHash bool) error {
	if err := t.blankDirectPath(l); err != nil {
		return err
	}
	for i, x := range fdp {
		if err := t.SetParent(x, &message.ParentNode{EncryptionKey: slices.Clone(keys[i])}); err != nil {
			return err
		}
	}
	ph, err := t.SetParentHashes(cs, l)
	if err != nil {
		return err
	}
	if setLeafHash {
		leaf.ParentHash = ph
	} else if !bytes.Equal(leaf.ParentHash, ph) {
		return fmt.Errorf("%w: committer's leaf %d", ErrParentHash, l)
	}
	return t.SetLeaf(l, leaf)
}

// provisionalContext returns gc with the tree hash of t, encoded.
func provisionalContext(cs *ciphersuite.CipherSuite, t *Tree, gc message.GroupContext) (message.GroupContext, []byte, error) {
	th, err := t.TreeHash(cs)
	if err != nil {
		return gc, nil, err
	}
	gc.TreeHash = th
	b, err := gc.MarshalBinary()
	return gc, b, err
}

// UpdatePathResult is what a committer keeps after generating an
// UpdatePath.
type UpdatePathResult struct {
	Path *message.UpdatePath
	// Private is the committer's new private state.
	Private *TreeKEMPrivate
	// CommitSecret is the path secret after the root.
	CommitSecret []byte
	// GroupContext is the provisional GroupContext the path secrets were
	// encrypted under: gc with the tree hash of the merged tree.
	GroupContext message.GroupContext
}

// GenerateUpdatePath creates an UpdatePath for the member at leaf from
// (RFC 9420 sections 7.4, 7.5 and 12.4.2) and merges it into t. The new
// leaf node is leaf (its encryption key, source, parent hash and signature
// are replaced) signed with sigPriv. The path secrets are encrypted under
// gc with its tree hash replaced by that of the merged tree, to the
// resolutions of the copath nodes minus the leaves in exclude. gc must
// already carry the provisional epoch and extensions. On error t may be
// partly changed.
func GenerateUpdatePath(cs *ciphersuite.CipherSuite, t *Tree, from treemath.LeafIndex, leaf message.LeafNode, sigPriv []byte, gc message.GroupContext, exclude []treemath.LeafIndex) (*UpdatePathResult, error) {
	if t.Leaf(from) == nil {
		return nil, fmt.Errorf("%w: committer's leaf %d is blank", ErrUpdatePath, from)
	}
	fdp, err := t.FilteredDirectPath(from)
	if err != nil {
		return nil, err
	}
	leafPriv, leafPub, err := cs.GenerateHPKEKey()
	if err != nil {
		return nil, err
	}
	priv := NewTreeKEMPrivate(from, leafPriv)
	ps := make([]byte, cs.Nh())
	if _, err := rand.Read(ps); err != nil {
		return nil, fmt.Errorf("mls: path secret: %w", err)
	}
	secrets := make([][]byte, len(fdp))
	keys := make([][]byte, len(fdp))
	for i, x := range fdp {
		if i > 0 {
			if ps, err = NextPathSecret(cs, ps); err != nil {
				return nil, err
			}
		}
		secrets[i] = ps
		if keys[i], err = priv.SetPathSecret(cs, x, ps); err != nil {
			return nil, err
		}
	}
	commitSecret, err := NextPathSecret(cs, ps)
	if err != nil {
		return nil, err
	}

	leaf.EncryptionKey = leafPub
	leaf.Source = message.LeafNodeSourceCommit
	leaf.Lifetime = message.Lifetime{}
	leaf.Signature = nil
	nl := &leaf
	if err := t.mergePath(cs, from, fdp, keys, nl, true); err != nil {
		return nil, err
	}
	if err := SignLeafNode(cs, sigPriv, nl, gc.GroupID, from); err != nil {
		return nil, err
	}
	gc, ctx, err := provisionalContext(cs, t, gc)
	if err != nil {
		return nil, err
	}

	path := &message.UpdatePath{LeafNode: *nl, Nodes: make([]message.UpdatePathNode, len(fdp))}
	for i, x := range fdp {
		c, err := copathChild(x, from)
		if err != nil {
			return nil, err
		}
		node := message.UpdatePathNode{EncryptionKey: slices.Clone(keys[i])}
		for _, r := range t.resolutionExcluding(c, exclude) {
			pub := t.NodePublicKey(r)
			if pub == nil {
				return nil, fmt.Errorf("%w: node %d has no encryption key", ErrUpdatePath, r)
			}
			kem, ct, err := cs.EncryptWithLabel(pub, "UpdatePathNode", ctx, secrets[i])
			if err != nil {
				return nil, err
			}
			node.EncryptedPathSecret = append(node.EncryptedPathSecret, message.HPKECiphertext{KEMOutput: kem, Ciphertext: ct})
		}
		path.Nodes[i] = node
	}
	return &UpdatePathResult{Path: path, Private: priv, CommitSecret: commitSecret, GroupContext: gc}, nil
}

// NodePublicKey returns the encryption key of the non-blank node x.
func (t *Tree) NodePublicKey(x treemath.NodeIndex) []byte {
	n := t.Node(x)
	switch {
	case n == nil:
		return nil
	case n.Leaf != nil:
		return n.Leaf.EncryptionKey
	case n.Parent != nil:
		return n.Parent.EncryptionKey
	}
	return nil
}

// ApplyUpdatePath processes the UpdatePath path sent by the member at
// sender, as received by the member whose private state is priv (RFC 9420
// sections 7.5 and 12.4.2). It checks the committer's leaf signature and
// parent hash, merges the path into t, decrypts the path secret at the
// common ancestor of sender and priv.Leaf (encrypted under gc with its tree
// hash replaced by that of the merged tree, to resolutions without the
// leaves in exclude), derives the secrets and keys above it, checks them
// against the path and returns the commit secret. The path secrets and
// private keys learnt are stored in priv. On error neither t nor priv is
// changed.
func ApplyUpdatePath(cs *ciphersuite.CipherSuite, t *Tree, priv *TreeKEMPrivate, sender treemath.LeafIndex, path *message.UpdatePath, gc message.GroupContext, exclude []treemath.LeafIndex) ([]byte, error) {
	if sender == priv.Leaf {
		return nil, fmt.Errorf("%w: receiver is the committer", ErrUpdatePath)
	}
	if t.Leaf(sender) == nil {
		return nil, fmt.Errorf("%w: committer's leaf %d is blank", ErrUpdatePath, sender)
	}
	if path.LeafNode.Source != message.LeafNodeSourceCommit {
		return nil, fmt.Errorf("%w: leaf node source %d", ErrUpdatePath, path.LeafNode.Source)
	}
	if err := VerifyLeafNodeSignature(cs, &path.LeafNode, gc.GroupID, sender); err != nil {
		return nil, err
	}
	fdp, err := t.FilteredDirectPath(sender)
	if err != nil {
		return nil, err
	}
	if len(path.Nodes) != len(fdp) {
		return nil, fmt.Errorf("%w: %d nodes for a filtered direct path of %d", ErrUpdatePath, len(path.Nodes), len(fdp))
	}
	// Find the common ancestor on the filtered direct path and the node of
	// its copath child's resolution the receiver holds a key for. The
	// copath subtrees are untouched by the merge.
	at := -1
	for i, x := range fdp {
		if inSubtree(priv.Leaf.Node(), x) {
			at = i
			break
		}
	}
	if at < 0 {
		return nil, fmt.Errorf("%w: leaf %d is not below the committer's path", ErrUpdatePath, priv.Leaf)
	}
	c, err := copathChild(fdp[at], sender)
	if err != nil {
		return nil, err
	}
	res := t.resolutionExcluding(c, exclude)
	cts := path.Nodes[at].EncryptedPathSecret
	if len(cts) != len(res) {
		return nil, fmt.Errorf("%w: %d ciphertexts for a resolution of %d", ErrUpdatePath, len(cts), len(res))
	}
	j := slices.IndexFunc(res, func(x treemath.NodeIndex) bool { return priv.Keys[x] != nil })
	if j < 0 {
		return nil, fmt.Errorf("%w: no private key for the resolution of node %d", ErrUpdatePath, c)
	}

	nt := t.Clone()
	keys := make([][]byte, len(path.Nodes))
	for i := range path.Nodes {
		keys[i] = path.Nodes[i].EncryptionKey
	}
	leaf := path.LeafNode
	if err := nt.mergePath(cs, sender, fdp, keys, &leaf, false); err != nil {
		return nil, err
	}
	_, ctx, err := provisionalContext(cs, nt, gc)
	if err != nil {
		return nil, err
	}
	ps, err := cs.DecryptWithLabel(priv.Keys[res[j]], "UpdatePathNode", ctx, cts[j].KEMOutput, cts[j].Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUpdatePath, err)
	}

	np := priv.Clone()
	dp, err := sender.Node().DirectPath(t.NumLeaves())
	if err != nil {
		return nil, err
	}
	for _, x := range dp {
		delete(np.Keys, x)
		delete(np.PathSecrets, x)
	}
	for i := at; i < len(fdp); i++ {
		if i > at {
			if ps, err = NextPathSecret(cs, ps); err != nil {
				return nil, err
			}
		}
		pub, err := np.SetPathSecret(cs, fdp[i], ps)
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(pub, path.Nodes[i].EncryptionKey) {
			return nil, fmt.Errorf("%w: derived key of node %d does not match", ErrUpdatePath, fdp[i])
		}
	}
	commitSecret, err := NextPathSecret(cs, ps)
	if err != nil {
		return nil, err
	}
	t.nodes = nt.nodes
	*priv = *np
	return commitSecret, nil
}
