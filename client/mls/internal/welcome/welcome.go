// Package welcome builds and opens the Welcome message that adds members
// to an MLS group (RFC 9420 section 12.4.3.1), and signs and verifies the
// GroupInfo it carries; it also computes KeyPackage references.
package welcome

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
	"github.com/xchat-im/xchat/client/mls/internal/message"
)

// Errors of joining a group through a Welcome (RFC 9420 section 12.4.3.1).
var (
	// ErrWelcomeNoMatch reports a Welcome that holds no EncryptedGroupSecrets
	// for the joiner's KeyPackage.
	ErrWelcomeNoMatch = errors.New("mls: welcome has no secrets for this key package")
	// ErrWelcomeSuite reports a Welcome, KeyPackage or GroupInfo whose cipher
	// suite differs from the one in use.
	ErrWelcomeSuite = errors.New("mls: welcome cipher suite mismatch")
	// ErrWelcomeConfirmation reports a GroupInfo whose confirmation tag does
	// not match the epoch derived from the Welcome.
	ErrWelcomeConfirmation = errors.New("mls: welcome confirmation tag mismatch")
	// ErrWelcomePSK reports a missing or invalid pre-shared key named by the
	// GroupSecrets.
	ErrWelcomePSK = errors.New("mls: welcome pre-shared key")
)

// labelKeyPackageRef is the RefHash label of KeyPackageRef (RFC 9420
// section 5.2).
const labelKeyPackageRef = "MLS 1.0 KeyPackage Reference"

// KeyPackageRef returns the reference of kp: RefHash("MLS 1.0 KeyPackage
// Reference", KeyPackage) (RFC 9420 section 5.2).
func KeyPackageRef(cs *ciphersuite.CipherSuite, kp *message.KeyPackage) ([]byte, error) {
	b, err := codec.MarshalAll(kp)
	if err != nil {
		return nil, fmt.Errorf("mls: key package ref: %w", err)
	}
	return cs.RefHash(labelKeyPackageRef, b)
}

// GroupInfoTBS encodes the signed part of gi: the group context,
// extensions, confirmation tag and signer (RFC 9420 section 12.4.3).
func GroupInfoTBS(gi *message.GroupInfo) ([]byte, error) {
	gc, err := gi.GroupContext.MarshalBinary()
	if err != nil {
		return nil, err
	}
	var w codec.Writer
	w.Raw(gc)
	codec.WriteList(&w, gi.Extensions)
	w.Opaque(gi.ConfirmationTag)
	w.Uint32(gi.Signer)
	return w.Bytes()
}

// SignGroupInfo sets gi.Signature by signing its GroupInfoTBS with priv.
func SignGroupInfo(cs *ciphersuite.CipherSuite, priv []byte, gi *message.GroupInfo) error {
	tbs, err := GroupInfoTBS(gi)
	if err != nil {
		return fmt.Errorf("mls: sign group info: %w", err)
	}
	sig, err := cs.SignWithLabel(priv, "GroupInfoTBS", tbs)
	if err != nil {
		return err
	}
	gi.Signature = sig
	return nil
}

// VerifyGroupInfo checks the signature of gi with the signer's signature
// public key; a bad signature yields an error wrapping ErrSignature.
func VerifyGroupInfo(cs *ciphersuite.CipherSuite, pub []byte, gi *message.GroupInfo) error {
	tbs, err := GroupInfoTBS(gi)
	if err != nil {
		return fmt.Errorf("mls: verify group info: %w", err)
	}
	return cs.VerifyWithLabel(pub, "GroupInfoTBS", tbs, gi.Signature)
}

// welcomeSecret derives welcome_secret from joiner_secret and psk_secret
// (empty means zero), as EpochFromJoiner does, without needing the
// GroupContext.
func welcomeSecret(cs *ciphersuite.CipherSuite, joinerSecret, pskSecret []byte) ([]byte, error) {
	member, err := cs.Extract(joinerSecret, keyschedule.ZeroIfEmpty(cs, pskSecret))
	if err != nil {
		return nil, err
	}
	return cs.DeriveSecret(member, "welcome")
}

// welcomeKeyNonce derives welcome_key and welcome_nonce from welcome_secret.
func welcomeKeyNonce(cs *ciphersuite.CipherSuite, welcomeSecret []byte) (key, nonce []byte, err error) {
	if key, err = cs.ExpandWithLabel(welcomeSecret, "key", nil, cs.AEADKeySize()); err != nil {
		return nil, nil, err
	}
	if nonce, err = cs.ExpandWithLabel(welcomeSecret, "nonce", nil, cs.AEADNonceSize()); err != nil {
		return nil, nil, err
	}
	return key, nonce, nil
}

// GroupInfoSignerLookup returns the signature public key of the member that
// signed gi (leaf gi.Signer of the group's ratchet tree).
type GroupInfoSignerLookup func(gi *message.GroupInfo) ([]byte, error)

// PSKLookup returns the secret of a pre-shared key named in a Welcome.
type PSKLookup func(id *keyschedule.PreSharedKeyID) ([]byte, error)

// JoinedWelcome is the result of processing a Welcome: the decrypted group
// secrets, the verified GroupInfo and the secrets of the joined epoch.
type JoinedWelcome struct {
	GroupSecrets message.GroupSecrets
	GroupInfo    message.GroupInfo
	// PSKSecret is the psk_secret the GroupSecrets' PSKs combine into.
	PSKSecret []byte
	Epoch     *keyschedule.EpochSecrets
}

// ProcessWelcome joins a group through w as the owner of kp, whose init
// private key is initPriv (RFC 9420 section 12.4.3.1). It finds the
// EncryptedGroupSecrets for kp, decrypts them and the GroupInfo, checks the
// cipher suites, verifies the GroupInfo signature with the key signer
// returns, derives the epoch secrets and checks the confirmation tag. psk
// resolves the PSKs the GroupSecrets name; it may be nil when none are
// expected. Validating the ratchet tree and the path secret is left to the
// caller.
func ProcessWelcome(cs *ciphersuite.CipherSuite, w *message.Welcome, kp *message.KeyPackage, initPriv []byte, signer GroupInfoSignerLookup, psk PSKLookup) (*JoinedWelcome, error) {
	if w == nil || kp == nil || signer == nil {
		return nil, errors.New("mls: process welcome: missing argument")
	}
	if w.CipherSuite != cs.ID() {
		return nil, fmt.Errorf("%w: welcome uses 0x%04x, not 0x%04x", ErrWelcomeSuite, w.CipherSuite, cs.ID())
	}
	if kp.CipherSuite != cs.ID() {
		return nil, fmt.Errorf("%w: key package uses 0x%04x, not 0x%04x", ErrWelcomeSuite, kp.CipherSuite, cs.ID())
	}
	ref, err := KeyPackageRef(cs, kp)
	if err != nil {
		return nil, err
	}
	var egs *message.EncryptedGroupSecrets
	for i := range w.Secrets {
		if bytes.Equal(w.Secrets[i].NewMember, ref) {
			egs = &w.Secrets[i]
			break
		}
	}
	if egs == nil {
		return nil, ErrWelcomeNoMatch
	}
	pt, err := cs.DecryptWithLabel(initPriv, "Welcome", w.EncryptedGroupInfo,
		egs.EncryptedGroupSecrets.KEMOutput, egs.EncryptedGroupSecrets.Ciphertext)
	if err != nil {
		return nil, fmt.Errorf("%w: group secrets: %v", ciphersuite.ErrDecryption, err)
	}
	var out JoinedWelcome
	if err := codec.UnmarshalAll(pt, &out.GroupSecrets); err != nil {
		return nil, fmt.Errorf("mls: group secrets: %w", err)
	}
	if len(out.GroupSecrets.JoinerSecret) != cs.Nh() {
		return nil, fmt.Errorf("%w: joiner secret of %d bytes", codec.ErrInvalidValue, len(out.GroupSecrets.JoinerSecret))
	}
	if out.PSKSecret, err = resolveWelcomePSKs(cs, out.GroupSecrets.PSKs, psk); err != nil {
		return nil, err
	}
	welcomeSecret, err := welcomeSecret(cs, out.GroupSecrets.JoinerSecret, out.PSKSecret)
	if err != nil {
		return nil, err
	}
	key, nonce, err := welcomeKeyNonce(cs, welcomeSecret)
	if err != nil {
		return nil, err
	}
	giBytes, err := cs.AeadOpen(key, nonce, nil, w.EncryptedGroupInfo)
	if err != nil {
		if errors.Is(err, ciphersuite.ErrDecryption) {
			return nil, fmt.Errorf("mls: group info: %w", err)
		}
		return nil, fmt.Errorf("%w: group info: %v", ciphersuite.ErrDecryption, err)
	}
	if err := codec.UnmarshalAll(giBytes, &out.GroupInfo); err != nil {
		return nil, fmt.Errorf("mls: group info: %w", err)
	}
	gi := &out.GroupInfo
	if gi.GroupContext.CipherSuite != cs.ID() {
		return nil, fmt.Errorf("%w: group info uses 0x%04x, not 0x%04x", ErrWelcomeSuite, gi.GroupContext.CipherSuite, cs.ID())
	}
	pub, err := signer(gi)
	if err != nil {
		return nil, fmt.Errorf("mls: group info signer %d: %w", gi.Signer, err)
	}
	if err := VerifyGroupInfo(cs, pub, gi); err != nil {
		return nil, fmt.Errorf("mls: group info: %w", err)
	}
	gc, err := gi.GroupContext.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("mls: group context: %w", err)
	}
	if out.Epoch, err = keyschedule.EpochFromJoiner(cs, out.GroupSecrets.JoinerSecret, out.PSKSecret, gc); err != nil {
		return nil, err
	}
	if !keyschedule.VerifyConfirmationTag(cs, out.Epoch.ConfirmationKey, gi.GroupContext.ConfirmedTranscriptHash, gi.ConfirmationTag) {
		return nil, ErrWelcomeConfirmation
	}
	return &out, nil
}

// resolveWelcomePSKs looks up the PSKs a Welcome names and combines them
// into psk_secret, rejecting more than one re-init or branch resumption
// PSK (RFC 9420 section 12.4.3.1).
func resolveWelcomePSKs(cs *ciphersuite.CipherSuite, ids []keyschedule.PreSharedKeyID, lookup PSKLookup) ([]byte, error) {
	psks := make([]keyschedule.PSK, len(ids))
	special := 0
	for i := range ids {
		id := &ids[i]
		if id.Type == keyschedule.PSKTypeResumption && (id.Usage == keyschedule.ResumptionPSKUsageReInit || id.Usage == keyschedule.ResumptionPSKUsageBranch) {
			if special++; special > 1 {
				return nil, fmt.Errorf("%w: several re-init or branch PSKs", ErrWelcomePSK)
			}
		}
		if lookup == nil {
			return nil, fmt.Errorf("%w: no lookup for %d PSKs", ErrWelcomePSK, len(ids))
		}
		s, err := lookup(id)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrWelcomePSK, err)
		}
		psks[i] = keyschedule.PSK{ID: *id, Secret: s}
	}
	return keyschedule.PSKSecret(cs, psks)
}

// WelcomeRecipient is a new member to seal a Welcome for. PathSecret, when
// not nil, is the path secret of the lowest common ancestor of the committer
// and the new member.
type WelcomeRecipient struct {
	KeyPackage *message.KeyPackage
	PathSecret []byte
}

// SealWelcome builds a Welcome for recipients from a signed GroupInfo, the
// epoch's joiner_secret and the PSKs of the Commit (RFC 9420 section
// 12.4.3.1): the GroupInfo is encrypted under the welcome key and the
// GroupSecrets to each recipient's init key.
func SealWelcome(cs *ciphersuite.CipherSuite, gi *message.GroupInfo, joinerSecret []byte, psks []keyschedule.PSK, recipients []WelcomeRecipient) (*message.Welcome, error) {
	if gi.GroupContext.CipherSuite != cs.ID() {
		return nil, fmt.Errorf("%w: group info uses 0x%04x, not 0x%04x", ErrWelcomeSuite, gi.GroupContext.CipherSuite, cs.ID())
	}
	if len(joinerSecret) != cs.Nh() {
		return nil, fmt.Errorf("%w: joiner secret of %d bytes", codec.ErrInvalidValue, len(joinerSecret))
	}
	pskSecret, err := keyschedule.PSKSecret(cs, psks)
	if err != nil {
		return nil, err
	}
	welcomeSecret, err := welcomeSecret(cs, joinerSecret, pskSecret)
	if err != nil {
		return nil, err
	}
	key, nonce, err := welcomeKeyNonce(cs, welcomeSecret)
	if err != nil {
		return nil, err
	}
	giBytes, err := codec.MarshalAll(gi)
	if err != nil {
		return nil, fmt.Errorf("mls: group info: %w", err)
	}
	w := &message.Welcome{CipherSuite: cs.ID(), Secrets: make([]message.EncryptedGroupSecrets, 0, len(recipients))}
	if w.EncryptedGroupInfo, err = cs.AeadSeal(key, nonce, nil, giBytes); err != nil {
		return nil, fmt.Errorf("mls: group info: %w", err)
	}
	ids := make([]keyschedule.PreSharedKeyID, len(psks))
	for i := range psks {
		ids[i] = psks[i].ID
	}
	for i, r := range recipients {
		if r.KeyPackage == nil {
			return nil, fmt.Errorf("mls: welcome recipient %d: no key package", i)
		}
		if r.KeyPackage.CipherSuite != cs.ID() {
			return nil, fmt.Errorf("%w: recipient %d uses 0x%04x", ErrWelcomeSuite, i, r.KeyPackage.CipherSuite)
		}
		ref, err := KeyPackageRef(cs, r.KeyPackage)
		if err != nil {
			return nil, err
		}
		gs := message.GroupSecrets{JoinerSecret: joinerSecret, PathSecret: r.PathSecret, PSKs: ids}
		pt, err := codec.MarshalAll(&gs)
		if err != nil {
			return nil, fmt.Errorf("mls: group secrets: %w", err)
		}
		kem, ct, err := cs.EncryptWithLabel(r.KeyPackage.InitKey, "Welcome", w.EncryptedGroupInfo, pt)
		if err != nil {
			return nil, fmt.Errorf("mls: welcome recipient %d: %w", i, err)
		}
		w.Secrets = append(w.Secrets, message.EncryptedGroupSecrets{
			NewMember:             ref,
			EncryptedGroupSecrets: message.HPKECiphertext{KEMOutput: kem, Ciphertext: ct},
		})
	}
	return w, nil
}
