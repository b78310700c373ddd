package message

import (
	"fmt"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
)

// ProtocolVersionMLS10 is the mls10 protocol version code point.
const ProtocolVersionMLS10 uint16 = 1

// Extension is one MLS extension: a type and opaque data (RFC 9420
// section 13).
type Extension struct {
	Type uint16
	Data []byte
}

// GroupContext summarises a group's state in an epoch (RFC 9420
// section 8.1).
type GroupContext struct {
	CipherSuite             ciphersuite.CipherSuiteID
	GroupID                 []byte
	Epoch                   uint64
	TreeHash                []byte
	ConfirmedTranscriptHash []byte
	Extensions              []Extension
}

// MarshalBinary encodes the GroupContext for version mls10.
func (g *GroupContext) MarshalBinary() ([]byte, error) {
	var w codec.Writer
	w.Uint16(ProtocolVersionMLS10)
	w.Uint16(uint16(g.CipherSuite))
	w.Opaque(g.GroupID)
	w.Uint64(g.Epoch)
	w.Opaque(g.TreeHash)
	w.Opaque(g.ConfirmedTranscriptHash)
	w.Vector(func(w *codec.Writer) {
		for _, e := range g.Extensions {
			w.Uint16(e.Type)
			w.Opaque(e.Data)
		}
	})
	b, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: group context: %w", err)
	}
	return b, nil
}

// UnmarshalBinary decodes an mls10 GroupContext, rejecting trailing data.
func (g *GroupContext) UnmarshalBinary(b []byte) error {
	r := codec.NewReader(b)
	if err := g.decode(r); err != nil {
		return fmt.Errorf("mls: group context: %w", err)
	}
	if err := r.Done(); err != nil {
		return fmt.Errorf("mls: group context: %w", err)
	}
	return nil
}

func (g *GroupContext) decode(r *codec.Reader) error {
	v, err := r.Uint16()
	if err != nil {
		return err
	}
	if v != ProtocolVersionMLS10 {
		return fmt.Errorf("unsupported protocol version %d", v)
	}
	cs, err := r.Uint16()
	if err != nil {
		return err
	}
	var out GroupContext
	out.CipherSuite = ciphersuite.CipherSuiteID(cs)
	if out.GroupID, err = r.Opaque(); err != nil {
		return err
	}
	if out.Epoch, err = r.Uint64(); err != nil {
		return err
	}
	if out.TreeHash, err = r.Opaque(); err != nil {
		return err
	}
	if out.ConfirmedTranscriptHash, err = r.Opaque(); err != nil {
		return err
	}
	exts, err := r.Vector()
	if err != nil {
		return err
	}
	for exts.Len() > 0 {
		var e Extension
		if e.Type, err = exts.Uint16(); err != nil {
			return err
		}
		if e.Data, err = exts.Opaque(); err != nil {
			return err
		}
		out.Extensions = append(out.Extensions, e)
	}
	*g = out
	return nil
}
