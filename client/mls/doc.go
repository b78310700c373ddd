// Package mls implements the building blocks of the Messaging Layer Security
// protocol (RFC 9420) that xchat conversations use: the wire codec, the
// cipher suites and their labelled cryptographic functions, tree math, the
// secret tree, the key schedule and the transcript hashes.
//
// Each part is checked against the MLS working group's official test vectors
// (see ../../../shared/vectors/mls or the XCHAT_MLS_VECTORS variable).
package mls
