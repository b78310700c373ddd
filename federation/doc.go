// Package federation will hold server-to-server relay of sealed envelopes
// (spec/08-federation.md): discovery, mutual-TLS QUIC connections with ALPN
// xchat-fed/1, the durable outbound queue and retries. It is empty until the
// federation issue lands; until then a homeserver refuses envelopes for
// other domains with wrong_domain.
package federation
