// Package mls implements the building blocks of the Messaging Layer Security
// protocol (RFC 9420) that xchat conversations use: the wire codec, the
// cipher suites and their labelled cryptographic functions, tree math, the
// secret tree, the key schedule, the transcript hashes and the wire
// structures (key packages, leaf nodes, ratchet trees, proposals, commits,
// framing, Welcome and GroupInfo).
//
// Each part is checked against the MLS working group's official test vectors
// (see ../../../shared/vectors/mls or the XCHAT_MLS_VECTORS variable).
package mls
