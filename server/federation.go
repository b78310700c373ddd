package server

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// Federation is what the server needs of the relay to and from other
// domains (spec/08-federation.md). Package federation provides it; the
// server does not import it, and package daemon wires the two together.
type Federation interface {
	// ListenTLS returns the TLS configuration for accepting federation
	// connections (ALPN xchat-fed/1) with cert.
	ListenTLS(cert tls.Certificate) *tls.Config
	// Start makes federation dial through tr, the transport the server
	// listens on, and starts relaying the outbound queue, until ctx ends
	// or Stop is called.
	Start(ctx context.Context, tr *quic.Transport) error
	// Stop stops relaying (queued envelopes stay queued) and closes every
	// federation connection; no relayed envelope is admitted after it
	// returns.
	Stop()
	// ServeConn serves an accepted federation connection until it ends or
	// ctx is done.
	ServeConn(ctx context.Context, qc *quic.Conn)
	// Conns returns the number of accepted federation connections.
	Conns() int
	// Enqueue durably queues envelopes that the local device from submitted
	// for other domains and returns one code per envelope: 0 when queued.
	Enqueue(ctx context.Context, from store.Mailbox, envs []wire.Envelope) ([]wire.Code, error)
	// Forward sends a key-directory request to the server of domain and
	// decodes its success response into resp; a refusal comes back as a
	// *wire.Error.
	Forward(ctx context.Context, domain string, req wire.Request, resp any) error
	// FetchBlob reads length bytes (fewer at the end) from offset off of
	// the finished blob id of another domain with fed-blob-get
	// (spec/11-files.md), checking that the answer fits the range asked.
	// The peer's refusal comes back as its *wire.Error; the domain policy
	// as domain_refused; a peer that cannot be reached, or answers out of
	// range, as unavailable with a retry-after.
	FetchBlob(ctx context.Context, domain string, id []byte, off, length uint64) (*wire.BlobGetOK, error)
	// DomainKey returns the sender-certificate key of another domain.
	DomainKey(ctx context.Context, domain string) (ed25519.PublicKey, error)
	// CallJoin links the local room of handle with the room of the same
	// identifier on domain by fed-call-join (spec/12-calls.md section
	// 12.4) and returns the peer's handle of it; the peer's refusal comes
	// back as its *wire.Error.
	CallJoin(ctx context.Context, domain string, room, token []byte, handle uint32) (uint32, error)
	// CallLeave unlinks this domain from the peer's room of peerHandle by
	// fed-call-leave.
	CallLeave(ctx context.Context, domain string, peerHandle uint32) error
	// SendPacket sends a call media packet, already carrying the peer's
	// handle, as a DATAGRAM on the outbound connection to domain. It never
	// blocks: it reports false when the packet was dropped (no connection,
	// or its queue is full).
	SendPacket(domain string, pkt []byte) bool
}
