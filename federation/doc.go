// Package federation relays sealed envelopes between homeservers of
// different domains (spec/08-federation.md): discovery of a peer's server,
// mutually authenticated QUIC connections with ALPN xchat-fed/1, the durable
// outbound queue with its relay workers, and the listening side that admits
// relayed envelopes and answers key-directory queries for local accounts.
//
// The homeserver (package server) owns the QUIC transport and the local
// mailboxes; it gives this package the transport to dial with and a [Local]
// to admit envelopes into.
package federation
