// Package keyschedule derives the secrets of an MLS epoch (RFC 9420
// section 8): the joiner, welcome and epoch secrets and those derived from
// them, pre-shared keys, the exporter, and the confirmed and interim
// transcript hashes with the confirmation tag.
package keyschedule

import (
	"fmt"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
)

// EpochSecrets holds the secrets the key schedule derives for one epoch
// (RFC 9420 section 8).
type EpochSecrets struct {
	JoinerSecret       []byte
	WelcomeSecret      []byte
	EpochSecret        []byte
	SenderDataSecret   []byte
	EncryptionSecret   []byte
	ExporterSecret     []byte
	ExternalSecret     []byte
	ConfirmationKey    []byte
	MembershipKey      []byte
	ResumptionPSK      []byte
	EpochAuthenticator []byte
	// InitSecret is the init_secret that seeds the next epoch.
	InitSecret []byte
}

// ZeroIfEmpty returns s, or Nh zero bytes if s is empty.
func ZeroIfEmpty(cs *ciphersuite.CipherSuite, s []byte) []byte {
	if len(s) == 0 {
		return make([]byte, cs.Nh())
	}
	return s
}

// joinerSecret derives joiner_secret from the previous epoch's init_secret,
// the commit_secret (empty means zero) and the new epoch's encoded
// GroupContext.
func joinerSecret(cs *ciphersuite.CipherSuite, initSecret, commitSecret, groupContext []byte) ([]byte, error) {
	prk, err := cs.Extract(initSecret, ZeroIfEmpty(cs, commitSecret))
	if err != nil {
		return nil, err
	}
	return cs.ExpandWithLabel(prk, "joiner", groupContext, cs.Nh())
}

// EpochFromJoiner derives the epoch's secrets from joiner_secret, the
// psk_secret (empty means zero) and the encoded GroupContext, as a joiner
// processing a Welcome does.
func EpochFromJoiner(cs *ciphersuite.CipherSuite, joinerSecret, pskSecret, groupContext []byte) (*EpochSecrets, error) {
	member, err := cs.Extract(joinerSecret, ZeroIfEmpty(cs, pskSecret))
	if err != nil {
		return nil, err
	}
	e := &EpochSecrets{JoinerSecret: joinerSecret}
	if e.WelcomeSecret, err = cs.DeriveSecret(member, "welcome"); err != nil {
		return nil, fmt.Errorf("mls: welcome secret: %w", err)
	}
	if e.EpochSecret, err = cs.ExpandWithLabel(member, "epoch", groupContext, cs.Nh()); err != nil {
		return nil, fmt.Errorf("mls: epoch secret: %w", err)
	}
	for _, d := range []struct {
		label string
		out   *[]byte
	}{
		{"sender data", &e.SenderDataSecret},
		{"encryption", &e.EncryptionSecret},
		{"exporter", &e.ExporterSecret},
		{"external", &e.ExternalSecret},
		{"confirm", &e.ConfirmationKey},
		{"membership", &e.MembershipKey},
		{"resumption", &e.ResumptionPSK},
		{"authentication", &e.EpochAuthenticator},
		{"init", &e.InitSecret},
	} {
		if *d.out, err = cs.DeriveSecret(e.EpochSecret, d.label); err != nil {
			return nil, fmt.Errorf("mls: %s secret: %w", d.label, err)
		}
	}
	return e, nil
}

// DeriveEpoch runs the whole key schedule for a new epoch from the previous
// init_secret, the commit_secret, the psk_secret and the new encoded
// GroupContext.
func DeriveEpoch(cs *ciphersuite.CipherSuite, initSecret, commitSecret, pskSecret, groupContext []byte) (*EpochSecrets, error) {
	joiner, err := joinerSecret(cs, initSecret, commitSecret, groupContext)
	if err != nil {
		return nil, fmt.Errorf("mls: joiner secret: %w", err)
	}
	return EpochFromJoiner(cs, joiner, pskSecret, groupContext)
}

// ExternalPub returns the HPKE public key derived from external_secret,
// which external joiners encrypt to.
func ExternalPub(cs *ciphersuite.CipherSuite, externalSecret []byte) ([]byte, error) {
	_, pub, err := cs.DeriveKeyPair(externalSecret)
	return pub, err
}

// Export is MLS-Exporter(label, context, length) over exporter_secret
// (RFC 9420 section 8.5).
func Export(cs *ciphersuite.CipherSuite, exporterSecret []byte, label string, context []byte, length int) ([]byte, error) {
	s, err := cs.DeriveSecret(exporterSecret, label)
	if err != nil {
		return nil, fmt.Errorf("mls: exporter: %w", err)
	}
	return cs.ExpandWithLabel(s, "exported", cs.Hash(context), length)
}
