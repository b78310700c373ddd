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
	PayloadFragment  = 3 // one part of a payload too large for one envelope
)

// Payload limits (spec/09-mls.md section 9.6). The encoded mls-payload,
// not the MLSMessage alone, is what fragments carry, so the MLSMessage
// bound leaves room for the largest encoding around it: MaxMLSPayload is
// MaxMLSMessage plus MaxMLSPayloadOverhead.
const (
	MaxMLSPayload         = MaxFragments * MaxFragmentData        // bytes of an encoded mls-payload: 64 fragments
	MaxMLSPayloadOverhead = 179                                   // bytes of an mls-payload besides its MLSMessage, at most
	MaxMLSMessage         = MaxMLSPayload - MaxMLSPayloadOverhead // bytes of an MLSMessage in a payload: 3,839,821
	MaxGroupName          = 128                                   // bytes of a group name
	LinkSecretSize        = 16                                    // bytes of a link secret
	LinkKeyHashSize       = 16                                    // bytes of the linking device's key hash in a link code
	MaxFragmentData       = 60000                                 // bytes of payload in one fragment
	MaxFragments          = 64                                    // fragments of one payload
	LinkProofSize         = 32                                    // bytes of a link proof
	deliveryTokenLen      = 32
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

// FragmentPayload is a payload of mode 3: part Index of Count of the
// encoding of a payload of mode 1 whose SHA-256 is Hash.
type FragmentPayload struct {
	Mode  uint64 `cbor:"0,keyasint"` // PayloadFragment
	Hash  []byte `cbor:"1,keyasint"`
	Index uint64 `cbor:"2,keyasint"`
	Count uint64 `cbor:"3,keyasint"`
	Data  []byte `cbor:"4,keyasint"`
}

type payloadMode struct {
	Mode uint64 `cbor:"0,keyasint"`
}

// DecodePayload decodes the payload of an opened envelope into an
// *MLSPayload, a *LinkProofPayload or a *FragmentPayload. A payload that is not valid CBOR of
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
	case PayloadFragment:
		var p FragmentPayload
		if err := Unmarshal(b, &p); err != nil {
			return nil, err
		}
		switch {
		case len(p.Hash) != sha256.Size:
			return nil, Errorf(CodeMalformed, "fragment hash of %d bytes", len(p.Hash))
		case p.Count < 2 || p.Count > MaxFragments || p.Index >= p.Count:
			return nil, Errorf(CodeMalformed, "fragment %d of %d", p.Index, p.Count)
		case len(p.Data) == 0 || len(p.Data) > MaxFragmentData:
			return nil, Errorf(CodeMalformed, "fragment of %d bytes", len(p.Data))
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

// Fragment splits the encoding of a payload of mode 1 that does not fit
// in one envelope into fragments of at most MaxFragmentData bytes (spec
// 09-mls.md section 9.6). A payload that fits is returned as it is.
//
// A longer payload must be a valid payload of mode 1 (else CodeMalformed)
// whose MLSMessage is at most MaxMLSMessage bytes and which needs at most
// MaxFragments fragments (else CodeLimitExceeded), so that the recipient
// accepts what it reassembles.
func Fragment(payload []byte) ([][]byte, error) {
	if len(payload) <= MaxFragmentData {
		return [][]byte{payload}, nil
	}
	n := (len(payload) + MaxFragmentData - 1) / MaxFragmentData
	if n > MaxFragments {
		return nil, Errorf(CodeLimitExceeded, "payload of %d bytes needs %d fragments, more than %d", len(payload), n, MaxFragments)
	}
	var p MLSPayload
	if err := Unmarshal(payload, &p); err != nil {
		return nil, err
	}
	switch {
	case p.Mode != PayloadMLS:
		return nil, Errorf(CodeMalformed, "only a payload of mode 1 is fragmented, not mode %d", p.Mode)
	case len(p.Message) > MaxMLSMessage:
		return nil, Errorf(CodeLimitExceeded, "MLS message of %d bytes, limit %d", len(p.Message), MaxMLSMessage)
	}
	if _, err := DecodePayload(payload); err != nil {
		return nil, err
	}
	h := sha256.Sum256(payload)
	out := make([][]byte, n)
	for i := range n {
		end := min((i+1)*MaxFragmentData, len(payload))
		b, err := Marshal(&FragmentPayload{Mode: PayloadFragment, Hash: h[:], Index: uint64(i), Count: uint64(n), Data: payload[i*MaxFragmentData : end]})
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}
