package keyschedule

import (
	"fmt"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
)

// PSK types (RFC 9420 section 8.4).
const (
	PSKTypeExternal   uint8 = 1
	PSKTypeResumption uint8 = 2
)

// PreSharedKeyID identifies a pre-shared key injected into an epoch.
type PreSharedKeyID struct {
	Type uint8
	// ID is psk_id for external PSKs.
	ID []byte
	// Usage, GroupID and Epoch describe resumption PSKs.
	Usage   uint8
	GroupID []byte
	Epoch   uint64
	Nonce   []byte
}

func (p *PreSharedKeyID) Encode(w *codec.Writer) error {
	w.Uint8(p.Type)
	switch p.Type {
	case PSKTypeExternal:
		w.Opaque(p.ID)
	case PSKTypeResumption:
		w.Uint8(p.Usage)
		w.Opaque(p.GroupID)
		w.Uint64(p.Epoch)
	default:
		return fmt.Errorf("mls: unknown PSK type %d", p.Type)
	}
	w.Opaque(p.Nonce)
	return nil
}

// PSK is a pre-shared key with its identifier.
type PSK struct {
	ID     PreSharedKeyID
	Secret []byte
}

// PSKSecret combines the PSKs of a Commit into psk_secret (RFC 9420
// section 8.4); with no PSKs it is Nh zero bytes.
func PSKSecret(cs *ciphersuite.CipherSuite, psks []PSK) ([]byte, error) {
	if len(psks) > 0xffff {
		return nil, fmt.Errorf("mls: %d PSKs", len(psks))
	}
	zero := make([]byte, cs.Nh())
	secret := zero
	for i, p := range psks {
		extracted, err := cs.Extract(zero, p.Secret)
		if err != nil {
			return nil, err
		}
		var w codec.Writer
		if err := p.ID.Encode(&w); err != nil {
			return nil, err
		}
		w.Uint16(uint16(i))
		w.Uint16(uint16(len(psks)))
		label, err := w.Bytes()
		if err != nil {
			return nil, fmt.Errorf("mls: PSK label: %w", err)
		}
		input, err := cs.ExpandWithLabel(extracted, "derived psk", label, cs.Nh())
		if err != nil {
			return nil, err
		}
		if secret, err = cs.Extract(input, secret); err != nil {
			return nil, err
		}
	}
	return secret, nil
}

// Resumption PSK usages (RFC 9420 section 8.4).
const (
	ResumptionPSKUsageApplication uint8 = 1
	ResumptionPSKUsageReInit      uint8 = 2
	ResumptionPSKUsageBranch      uint8 = 3
)

// Marshal writes the PSK identifier.
func (p *PreSharedKeyID) Marshal(w *codec.Writer) {
	if err := p.Encode(w); err != nil {
		w.Fail(err)
	}
}

// Unmarshal reads a PSK identifier, rejecting unknown PSK types and
// resumption usages.
func (p *PreSharedKeyID) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out PreSharedKeyID
	out.Type = d.U8()
	switch {
	case d.Err != nil:
	case out.Type == PSKTypeExternal:
		out.ID = d.Opaque()
	case out.Type == PSKTypeResumption:
		out.Usage = d.U8()
		if d.Err == nil && (out.Usage < ResumptionPSKUsageApplication || out.Usage > ResumptionPSKUsageBranch) {
			d.Fail(codec.Invalid("resumption PSK usage %d", out.Usage))
		}
		out.GroupID = d.Opaque()
		out.Epoch = d.U64()
	default:
		d.Fail(codec.Invalid("PSK type %d", out.Type))
	}
	out.Nonce = d.Opaque()
	if d.Err != nil {
		return d.Err
	}
	*p = out
	return nil
}
