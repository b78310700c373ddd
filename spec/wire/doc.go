// Package wire is the xchat/1 wire protocol in Go: the message types of
// spec/xchat.cddl, the strict deterministic CBOR codec, framing, addresses,
// limits and the typed protocol errors.
//
// # Decoding
//
// Every decoder of peer input first checks the frame length against
// [MaxFrame], then checks that the payload is one well-formed CBOR item in
// deterministic encoding within the nesting and count limits
// ([CheckDeterministic]), then decodes it into a Go type and validates the
// fields. Every failure is an [*Error] with a protocol [Code].
//
// # Encoding
//
// [Marshal] produces core deterministic encoding (RFC 8949 section 4.2.1).
//
// This package holds no key that can decrypt anything: sealing and opening
// envelopes live in the client.
package wire
