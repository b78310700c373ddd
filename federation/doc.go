// Package federation relays sealed envelopes between homeservers of
// different domains (spec/08-federation.md): discovery of a peer's server,
// mutually authenticated QUIC connections with ALPN xchat-fed/1, the durable
// outbound queue with its relay workers, and the listening side that admits
// relayed envelopes, answers key-directory queries for local accounts and
// serves ranges of local blobs (fed-blob-get, spec/11-files.md), and the
// dialling side of a client's read of another domain's blob
// ([Federation.FetchBlob]).
//
// The homeserver owns the QUIC transport and the local mailboxes: it gives
// this package the transport to dial with ([Federation.Start]), the
// connections that negotiated xchat-fed/1 ([Federation.ServeConn]) and a
// [Local] to admit envelopes into. Of the homeserver this package imports
// only the store contract (server/store), whose outbound queue it works
// through, and the rate limiter (server/ratelimit); package server does not
// import it, and package server/daemon wires the two together.
package federation
