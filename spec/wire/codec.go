package wire

import (
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

var (
	encMode cbor.EncMode
	decMode cbor.DecMode
)

func init() {
	var err error
	opts := cbor.CoreDetEncOptions()
	opts.NilContainers = cbor.NilContainerAsEmpty
	encMode, err = opts.EncMode()
	if err != nil {
		panic(err)
	}
	decMode, err = cbor.DecOptions{
		DupMapKey:        cbor.DupMapKeyEnforcedAPF,
		IndefLength:      cbor.IndefLengthForbidden,
		TagsMd:           cbor.TagsForbidden,
		MaxNestedLevels:  MaxDepth,
		MaxArrayElements: MaxArray,
		MaxMapPairs:      MaxMapPairs,
		UTF8:             cbor.UTF8RejectInvalid,
		IntDec:           cbor.IntDecConvertNone,
	}.DecMode()
	if err != nil {
		panic(err)
	}
}

// Marshal returns the deterministic CBOR encoding of v.
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %T: %w", v, err)
	}
	return b, nil
}

// mustMarshal encodes values whose types are known to encode.
func mustMarshal(v any) []byte {
	b, err := Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// Unmarshal checks that b is one deterministic CBOR item within the limits
// and decodes it into v. Every failure is an *Error.
func Unmarshal(b []byte, v any) error {
	if err := CheckDeterministic(b); err != nil {
		return err
	}
	return decodeChecked(b, v)
}

// decodeChecked decodes b, already checked by CheckDeterministic, into v:
// every required key of v's type must be present and no defined field may
// be null (checkShape), then the decoder checks the types.
func decodeChecked(b []byte, v any) error {
	if err := checkShape(b, v); err != nil {
		return err
	}
	if err := decMode.Unmarshal(b, v); err != nil {
		var e *Error
		if errors.As(err, &e) {
			return e
		}
		return Errorf(CodeMalformed, "decode %T: %v", v, err)
	}
	return nil
}
