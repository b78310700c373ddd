package mls

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"

	"golang.org/x/crypto/chacha20poly1305"
)

// ErrDecryption reports a PrivateMessage (content or sender data) that
// does not decrypt or authenticate.
var ErrDecryption = errors.New("mls: decryption failed")

// reuseGuardSize is the length of SenderData.reuse_guard.
const reuseGuardSize = 4

// newAEAD returns the suite's AEAD keyed with key.
func (cs *CipherSuite) newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != cs.AEADKeySize() {
		return nil, fmt.Errorf("mls: AEAD key of %d bytes, want %d", len(key), cs.AEADKeySize())
	}
	switch cs.p.aeadID {
	case aeadAES128GCM, aeadAES256GCM:
		b, err := aes.NewCipher(key)
		if err != nil {
			return nil, err
		}
		return cipher.NewGCM(b)
	case aeadChaCha20Poly1305:
		return chacha20poly1305.New(key)
	}
	return nil, fmt.Errorf("%w: AEAD 0x%04x", ErrUnsupportedSuite, cs.p.aeadID)
}

// aeadSeal encrypts plaintext with the suite's AEAD.
func (cs *CipherSuite) aeadSeal(key, nonce, aad, plaintext []byte) ([]byte, error) {
	a, err := cs.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("mls: AEAD nonce of %d bytes", len(nonce))
	}
	return a.Seal(nil, nonce, plaintext, aad), nil
}

// aeadOpen decrypts ciphertext with the suite's AEAD, returning an error
// wrapping ErrDecryption when it does not authenticate.
func (cs *CipherSuite) aeadOpen(key, nonce, aad, ciphertext []byte) ([]byte, error) {
	a, err := cs.newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(nonce) != a.NonceSize() {
		return nil, fmt.Errorf("mls: AEAD nonce of %d bytes", len(nonce))
	}
	pt, err := a.Open(nil, nonce, ciphertext, aad)
	if err != nil {
		return nil, ErrDecryption
	}
	return pt, nil
}

// SenderData identifies the sender and key generation of a PrivateMessage
// (RFC 9420 section 6.3.2).
type SenderData struct {
	LeafIndex  treemath.LeafIndex
	Generation uint32
	ReuseGuard [reuseGuardSize]byte
}

// Marshal writes the sender data.
func (s *SenderData) Marshal(w *codec.Writer) {
	w.Uint32(uint32(s.LeafIndex))
	w.Uint32(s.Generation)
	w.Raw(s.ReuseGuard[:])
}

// Unmarshal reads sender data.
func (s *SenderData) Unmarshal(r *codec.Reader) error {
	d := codec.Dec{R: r}
	var out SenderData
	out.LeafIndex = treemath.LeafIndex(d.U32())
	out.Generation = d.U32()
	d.Do(func(r *codec.Reader) error {
		g, err := r.Raw(reuseGuardSize)
		if err == nil {
			copy(out.ReuseGuard[:], g)
		}
		return err
	})
	if d.Err != nil {
		return d.Err
	}
	*s = out
	return nil
}

// senderDataAAD encodes SenderDataAAD.
func senderDataAAD(groupID []byte, epoch uint64, ct ContentType) ([]byte, error) {
	var w codec.Writer
	w.Opaque(groupID)
	w.Uint64(epoch)
	w.Uint8(uint8(ct))
	return w.Bytes()
}

// EncryptSenderData encrypts sd for a PrivateMessage whose content
// ciphertext is already set (the key and nonce depend on its first bytes).
func (cs *CipherSuite) EncryptSenderData(senderDataSecret []byte, sd *SenderData, pm *PrivateMessage) ([]byte, error) {
	key, nonce, err := cs.SenderDataKeyNonce(senderDataSecret, pm.Ciphertext)
	if err != nil {
		return nil, err
	}
	aad, err := senderDataAAD(pm.GroupID, pm.Epoch, pm.ContentType)
	if err != nil {
		return nil, fmt.Errorf("mls: sender data: %w", err)
	}
	pt, err := codec.MarshalAll(sd)
	if err != nil {
		return nil, fmt.Errorf("mls: sender data: %w", err)
	}
	return cs.aeadSeal(key, nonce, aad, pt)
}

// DecryptSenderData decrypts and decodes the sender data of pm.
func (cs *CipherSuite) DecryptSenderData(senderDataSecret []byte, pm *PrivateMessage) (*SenderData, error) {
	key, nonce, err := cs.SenderDataKeyNonce(senderDataSecret, pm.Ciphertext)
	if err != nil {
		return nil, err
	}
	aad, err := senderDataAAD(pm.GroupID, pm.Epoch, pm.ContentType)
	if err != nil {
		return nil, fmt.Errorf("mls: sender data: %w", err)
	}
	pt, err := cs.aeadOpen(key, nonce, aad, pm.EncryptedSenderData)
	if err != nil {
		return nil, fmt.Errorf("mls: sender data: %w", err)
	}
	var sd SenderData
	if err := codec.UnmarshalAll(pt, &sd); err != nil {
		return nil, fmt.Errorf("mls: sender data: %w", err)
	}
	return &sd, nil
}
