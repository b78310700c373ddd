package message

import "github.com/xchat-im/xchat/client/mls/internal/codec"

// NodeType distinguishes leaf and parent nodes (RFC 9420 section 7.8).
type NodeType uint8

// Node types.
const (
	NodeTypeLeaf   NodeType = 1
	NodeTypeParent NodeType = 2
)

// ParentNode is an interior node of the ratchet tree (RFC 9420 section 7.1).
type ParentNode struct {
	EncryptionKey  HPKEPublicKey
	ParentHash     []byte
	UnmergedLeaves []uint32
}

// Marshal writes the parent node.
func (p *ParentNode) Marshal(w *codec.Writer) {
	w.Opaque(p.EncryptionKey)
	w.Opaque(p.ParentHash)
	codec.WriteU32List(w, p.UnmergedLeaves)
}

// Unmarshal reads a parent node.
func (p *ParentNode) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out ParentNode
	out.EncryptionKey = d.Opaque()
	out.ParentHash = d.Opaque()
	out.UnmergedLeaves = codec.ReadU32List(&d)
	if d.Err != nil {
		return d.Err
	}
	*p = out
	return nil
}

// Node is one node of the ratchet tree: exactly one of Leaf and Parent is
// set, according to Type.
type Node struct {
	Type   NodeType
	Leaf   *LeafNode
	Parent *ParentNode
}

// Marshal writes the node.
func (n *Node) Marshal(w *codec.Writer) {
	w.Uint8(uint8(n.Type))
	switch {
	case n.Type == NodeTypeLeaf && n.Leaf != nil:
		n.Leaf.Marshal(w)
	case n.Type == NodeTypeParent && n.Parent != nil:
		n.Parent.Marshal(w)
	default:
		w.Fail(codec.Invalid("node type %d", n.Type))
	}
}

// Unmarshal reads a node, rejecting unknown node types.
func (n *Node) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out Node
	out.Type = NodeType(d.U8())
	switch {
	case d.Err != nil:
	case out.Type == NodeTypeLeaf:
		out.Leaf = new(LeafNode)
		d.Do(out.Leaf.Unmarshal)
	case out.Type == NodeTypeParent:
		out.Parent = new(ParentNode)
		d.Do(out.Parent.Unmarshal)
	default:
		d.Fail(codec.Invalid("node type %d", out.Type))
	}
	if d.Err != nil {
		return d.Err
	}
	*n = out
	return nil
}

// RatchetTree is the optional<Node> ratchet_tree<V> list carried by the
// ratchet_tree extension (RFC 9420 section 12.4.3.3); nil entries are blank
// nodes. Leaves sit at even indices and parents at odd ones.
type RatchetTree []*Node

// Marshal writes the tree.
func (t *RatchetTree) Marshal(w *codec.Writer) {
	if err := t.Check(); err != nil {
		w.Fail(err)
		return
	}
	w.Vector(func(w *codec.Writer) {
		for _, n := range *t {
			if n == nil {
				w.Uint8(0)
				continue
			}
			w.Uint8(1)
			n.Marshal(w)
		}
	})
}

// Unmarshal reads a tree, checking that it is non-empty, that it has an odd
// number of nodes, that its last node is not blank and that each node's
// type matches its position.
func (t *RatchetTree) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out RatchetTree
	d.Vec(func(r *codec.Reader) error {
		d := codec.Dec{R: r}
		var n *Node
		if d.Present() {
			n = new(Node)
			d.Do(n.Unmarshal)
		}
		out = append(out, n)
		return d.Err
	})
	if d.Err != nil {
		return d.Err
	}
	if err := out.Check(); err != nil {
		return err
	}
	*t = out
	return nil
}

func (t RatchetTree) Check() error {
	if len(t) == 0 {
		return codec.Invalid("empty ratchet tree")
	}
	if len(t)%2 == 0 {
		return codec.Invalid("ratchet tree with even node count %d", len(t))
	}
	if t[len(t)-1] == nil {
		return codec.Invalid("ratchet tree ends with a blank node")
	}
	for i, n := range t {
		if n == nil {
			continue
		}
		want := NodeTypeLeaf
		if i%2 == 1 {
			want = NodeTypeParent
		}
		if n.Type != want {
			return codec.Invalid("node %d has type %d", i, n.Type)
		}
	}
	return nil
}
