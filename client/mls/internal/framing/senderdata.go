package framing

import (
	"fmt"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/message"
	"github.com/xchat-im/xchat/client/mls/internal/secrettree"
	"github.com/xchat-im/xchat/client/mls/internal/treemath"
)

// reuseGuardSize is the length of SenderData.reuse_guard.
const reuseGuardSize = 4

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
func senderDataAAD(groupID []byte, epoch uint64, ct message.ContentType) ([]byte, error) {
	var w codec.Writer
	w.Opaque(groupID)
	w.Uint64(epoch)
	w.Uint8(uint8(ct))
	return w.Bytes()
}

// encryptSenderData encrypts sd for a PrivateMessage whose content
// ciphertext is already set (the key and nonce depend on its first bytes).
func encryptSenderData(cs *ciphersuite.CipherSuite, senderDataSecret []byte, sd *SenderData, pm *message.PrivateMessage) ([]byte, error) {
	key, nonce, err := secrettree.SenderDataKeyNonce(cs, senderDataSecret, pm.Ciphertext)
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
	return cs.AeadSeal(key, nonce, aad, pt)
}

// decryptSenderData decrypts and decodes the sender data of pm.
func decryptSenderData(cs *ciphersuite.CipherSuite, senderDataSecret []byte, pm *message.PrivateMessage) (*SenderData, error) {
	key, nonce, err := secrettree.SenderDataKeyNonce(cs, senderDataSecret, pm.Ciphertext)
	if err != nil {
		return nil, err
	}
	aad, err := senderDataAAD(pm.GroupID, pm.Epoch, pm.ContentType)
	if err != nil {
		return nil, fmt.Errorf("mls: sender data: %w", err)
	}
	pt, err := cs.AeadOpen(key, nonce, aad, pm.EncryptedSenderData)
	if err != nil {
		return nil, fmt.Errorf("mls: sender data: %w", err)
	}
	var sd SenderData
	if err := codec.UnmarshalAll(pt, &sd); err != nil {
		return nil, fmt.Errorf("mls: sender data: %w", err)
	}
	return &sd, nil
}
