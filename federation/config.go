package federation

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// Local is the homeserver side that federation calls into; package
// server's Server provides it.
type Local interface {
	// AdmitRelay admits envelopes relayed from the origin domain exactly as
	// a local send, and returns one code per envelope once every admitted
	// envelope is durable.
	AdmitRelay(ctx context.Context, origin string, envs []wire.Envelope) ([]wire.Code, error)
	// GetDevices and ClaimKeyPackage answer key-directory requests for
	// local accounts.
	GetDevices(ctx context.Context, r *wire.GetDevices) (*wire.GetDevicesOK, error)
	ClaimKeyPackage(ctx context.Context, r *wire.ClaimKeyPackage) (*wire.ClaimKeyPackageOK, error)
	// ServerInfo returns the local server-info answer.
	ServerInfo() *wire.ServerInfoOK
	// Notify wakes the pusher of a local device whose mailbox changed.
	Notify(mb store.Mailbox)
	// ReadBlob reads length bytes (fewer at the end) from offset off of a
	// finished local blob, for fed-blob-get, and returns the blob-get-ok
	// response; a refusal is a *wire.Error (unknown_blob, bad_range).
	ReadBlob(ctx context.Context, id []byte, off, length uint64) ([]byte, error)
	// PeerCallJoin links origin to the local call room of the identifier
	// room, creating the room when there is none (spec/12-calls.md section
	// 12.4), and returns the local handle of the room; a refusal is a
	// *wire.Error (room_denied, limit_exceeded, unknown_request when the
	// server does not relay calls). originHandle is origin's handle of it.
	PeerCallJoin(origin string, room, token []byte, originHandle uint32) (uint32, error)
	// PeerCallLeave unlinks origin from the local room of handle.
	PeerCallLeave(origin string, handle uint32)
	// PeerPacket takes a call media packet that arrived from origin in a
	// DATAGRAM; it never blocks.
	PeerPacket(origin string, pkt []byte)
}

// Config configures federation for one homeserver.
type Config struct {
	Domain      string
	Certificate tls.Certificate // for Domain; presented to peers in both directions
	// Roots verify peers' certificates; nil means the system roots.
	Roots *x509.CertPool
	// Peers are static peer entries, DOMAIN to HOST:PORT; they override DNS.
	Peers map[string]string
	// Allow, when not empty, lists the only domains that federate. Deny
	// lists domains that never do.
	Allow, Deny []string
	Store       store.Store
	Local       Local
	Logger      *slog.Logger

	// Retry is the first backoff delay after a failure (default 1 s);
	// MaxRetry caps it (default 5 min).
	Retry, MaxRetry time.Duration
	// OutboundTTL is how long an envelope may wait in the outbound queue
	// before it is reported undeliverable (default 7 days).
	OutboundTTL time.Duration
	// Lease is how long a relay worker holds the envelopes it claimed
	// (default 60 s).
	Lease time.Duration
	// Scan is how often the queue is searched for domains without a
	// worker here: envelopes queued by other processes sharing the store,
	// or left by one that died (default 30 s).
	Scan time.Duration
	// RelayBurst and RelayRate bound the envelopes accepted from one origin
	// domain (default 20,000 and 10,000 per second).
	RelayBurst int
	RelayRate  int
	// BlobRate and BlobBurst bound the blob bytes one origin domain may
	// read with fed-blob-get: bytes per second, and the burst in bytes (at
	// least one part). Zero or negative BlobRate: no limit. Package daemon
	// passes the server's policy (server.Limits.FedBlobRate).
	BlobRate, BlobBurst int64
}

// Defaults of spec/15-limits.md.
const (
	DefaultRetry       = time.Second
	DefaultMaxRetry    = 5 * time.Minute
	DefaultOutboundTTL = 7 * 24 * time.Hour
	DefaultLease       = 60 * time.Second
	DefaultScan        = 30 * time.Second
	DefaultRelayBurst  = 20000
	DefaultRelayRate   = 10000
	// Key-directory requests from one origin domain: a burst, then a rate
	// per second.
	queryBurst = 1000
	queryRate  = 100
	// domainKeyTTL is how long a peer's sender-certificate key is cached.
	domainKeyTTL = time.Hour
)

func (c *Config) setDefaults() error {
	if err := wire.ValidateDomain(c.Domain); err != nil {
		return fmt.Errorf("federation: domain: %w", err)
	}
	for d, addr := range c.Peers {
		if err := wire.ValidateDomain(d); err != nil {
			return fmt.Errorf("federation: peer %q: %w", d, err)
		}
		if addr == "" {
			return fmt.Errorf("federation: peer %q: no address", d)
		}
	}
	for _, list := range [][]string{c.Allow, c.Deny} {
		for _, d := range list {
			if err := wire.ValidateDomain(d); err != nil {
				return fmt.Errorf("federation: domain list: %w", err)
			}
		}
	}
	if c.Store == nil || c.Local == nil {
		return fmt.Errorf("federation: no store or local server")
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Retry == 0 {
		c.Retry = DefaultRetry
	}
	if c.MaxRetry == 0 {
		c.MaxRetry = DefaultMaxRetry
	}
	if c.OutboundTTL == 0 {
		c.OutboundTTL = DefaultOutboundTTL
	}
	if c.Lease == 0 {
		c.Lease = DefaultLease
	}
	if c.Scan == 0 {
		c.Scan = DefaultScan
	}
	if c.RelayBurst == 0 {
		c.RelayBurst = DefaultRelayBurst
	}
	if c.RelayRate == 0 {
		c.RelayRate = DefaultRelayRate
	}
	return nil
}

// allowed reports whether the domain policy lets domain federate.
func (c *Config) allowed(domain string) bool {
	for _, d := range c.Deny {
		if d == domain {
			return false
		}
	}
	if len(c.Allow) == 0 {
		return true
	}
	for _, d := range c.Allow {
		if d == domain {
			return true
		}
	}
	return false
}
