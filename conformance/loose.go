package conformance

import "github.com/fxamacker/cbor/v2"

// decodeLoose decodes b, already checked by the strict decoder, into v
// with the default decoder (for inspecting maps generically).
func decodeLoose(b []byte, v any) error { return cbor.Unmarshal(b, v) }
