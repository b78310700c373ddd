package store

import "context"

// Names of the domain keys kept by a [DomainKeys] store.
const (
	// KeySenderCert is the 32-byte Ed25519 seed of the domain's
	// sender-certificate signing key.
	KeySenderCert = "sender-cert-ed25519-seed"
	// KeyStatelessReset is the 32-byte QUIC stateless-reset key.
	KeyStatelessReset = "quic-stateless-reset"
)

// DomainKeys is implemented by stores that several processes of one
// domain share (the PostgreSQL store). It keeps the domain's secrets that
// every process must hold alike: the sender-certificate signing key and the
// stateless-reset key. (No key that opens what users send exists on a
// server, and none may be kept here.)
type DomainKeys interface {
	// DomainKey returns the key named name. When there is none yet, it
	// stores proposed first; of several callers proposing at once, in any
	// process, every one gets the key stored first.
	DomainKey(ctx context.Context, name string, proposed []byte) ([]byte, error)
}
