package wire

import (
	"crypto/hmac"
	"crypto/sha256"
)

// Payload modes (spec/09-mls.md section 9.6). Mode 0, the direct-content
// mode of v0, is withdrawn: DecodePayload refuses it like any unknown mode.
const (
	PayloadMLS       = 1 // one MLS message
	PayloadLinkProof = 2 // a device-link proof
)

// Payload limits (spec/09-mls.md section 9.6).
const (
	MaxMLSMessage    = 65536 // bytes of an MLSMessage in a payload
	MaxGroupName     = 128   // bytes of a group name
	LinkSecretSize   = 16    // bytes of a link secret
	LinkProofSize    = 32    // bytes of a link proof
	deliveryTokenLen = 32
)

// Group kinds in GroupMeta.
const (
	GroupKindGroup  = 0
	GroupKindDirect = 1
)

// ContextLinkProof is the context of a device-link proof.
const ContextLinkProof = "xchat/1 link-proof"

// MLSPayload is a payload of mode 1: one MLS message.
type MLSPayload struct {
	Mode    uint64     `cbor:"0,keyasint"` // PayloadMLS
	Message []byte     `cbor:"1,keyasint"` // the MLSMessage
	Token   []byte     `cbor:"2,keyasint,omitempty"`
	Meta    *GroupMeta `cbor:"3,keyasint,omitempty"` // with a Welcome only
}

// GroupMeta says what a group is; it travels with every Welcome.
type GroupMeta struct {
	Kind uint64 `cbor:"1,keyasint"` // GroupKindGroup or GroupKindDirect
	Name string `cbor:"2,keyasint,omitempty"`
}

// LinkProofPayload is a payload of mode 2: a new device's proof that it
// holds the link secret shown by an existing device of its account.
type LinkProofPayload struct {
	Mode  uint64 `cbor:"0,keyasint"` // PayloadLinkProof
	Token []byte `cbor:"1,keyasint"` // the link token
	Proof []byte `cbor:"2,keyasint"`
}

type payloadMode struct {
	Mode uint64 `cbor:"0,keyasint"`
}

// DecodePayload decodes the payload of an opened envelope into an
// *MLSPayload or a *LinkProofPayload. A payload that is not valid CBOR of
// the right shape, has a field out of range or has another mode gives a
// *Error with CodeMalformed.
func DecodePayload(b []byte) (any, error) {
	var m payloadMode
	if err := Unmarshal(b, &m); err != nil {
		return nil, err
	}
	switch m.Mode {
	case PayloadMLS:
		var p MLSPayload
		if err := Unmarshal(b, &p); err != nil {
			return nil, err
		}
		switch {
		case len(p.Message) == 0 || len(p.Message) > MaxMLSMessage:
			return nil, Errorf(CodeMalformed, "MLS message of %d bytes", len(p.Message))
		case p.Token != nil && len(p.Token) != deliveryTokenLen:
			return nil, Errorf(CodeMalformed, "delivery token of %d bytes", len(p.Token))
		case p.Meta != nil && p.Meta.Kind > GroupKindDirect:
			return nil, Errorf(CodeMalformed, "group kind %d", p.Meta.Kind)
		case p.Meta != nil && len(p.Meta.Name) > MaxGroupName:
			return nil, Errorf(CodeMalformed, "group name of %d bytes", len(p.Meta.Name))
		}
		return &p, nil
	case PayloadLinkProof:
		var p LinkProofPayload
		if err := Unmarshal(b, &p); err != nil {
			return nil, err
		}
		if len(p.Token) != LinkTokenLen || len(p.Proof) != LinkProofSize {
			return nil, Errorf(CodeMalformed, "link proof of %d/%d bytes", len(p.Token), len(p.Proof))
		}
		return &p, nil
	}
	return nil, Errorf(CodeMalformed, "payload mode %d", m.Mode)
}

// LinkProof returns the proof a new device gives of the link secret: an
// HMAC-SHA256 keyed with the secret over its address, device identifier
// and signature key (spec/09-mls.md section 9.5).
func LinkProof(secret []byte, address string, device uint32, sigKey []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write(withContext(ContextLinkProof, mustMarshal([]any{address, device}), sigKey))
	return mac.Sum(nil)
}
