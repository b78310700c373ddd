package sframe

import (
	"bytes"
	"fmt"
	"math"
	"sync"
)

// MLSSender protects the frames of one group member (one leaf) with the key
// of the group's current epoch (spec 12.7). It is safe for concurrent use.
type MLSSender struct {
	leaf uint32

	mu      sync.Mutex
	set     bool
	epoch   uint64
	baseKey []byte
	key     *Key
	ctr     uint64 // the next counter under key
}

// NewMLSSender returns a sender for the member at leaf index leaf. It
// protects nothing until SetEpoch gives it a key.
func NewMLSSender(leaf uint32) *MLSSender {
	return &MLSSender{leaf: leaf}
}

// SetEpoch switches to epoch, whose base key is
// MLS-Exporter("SFrame 1.0 Base Key", "", 16). Setting the current epoch
// again keeps the counter, with the same base key or another (a forked
// epoch), so that a base key used before in the epoch never meets a
// counter twice; an older epoch than the current one is refused.
func (s *MLSSender) SetEpoch(epoch uint64, baseKey []byte) error {
	if s.leaf > MaxMLSLeaf {
		return fmt.Errorf("%w: leaf index %d cannot send media", ErrMalformed, s.leaf)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.set {
		if epoch < s.epoch {
			return fmt.Errorf("%w: epoch %d is older than the current %d", ErrUnknownKey, epoch, s.epoch)
		}
		if epoch == s.epoch && bytes.Equal(baseKey, s.baseKey) {
			return nil
		}
	}
	k, err := DeriveKey(AES128GCMSHA256_128, MLSKeyID(s.leaf, epoch), baseKey)
	if err != nil {
		return err
	}
	if !s.set || epoch != s.epoch {
		s.ctr = 0
	}
	s.set, s.epoch, s.baseKey, s.key = true, epoch, bytes.Clone(baseKey), k
	return nil
}

// Epoch returns the epoch the sender protects with, and false before
// SetEpoch.
func (s *MLSSender) Epoch() (uint64, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.epoch, s.set
}

// Protect encrypts plaintext with the current epoch's key and the next
// counter of its KID (from 0), authenticating metadata (spec 12.7: the
// frame's source and sequence). Before SetEpoch it fails with
// ErrUnknownKey.
func (s *MLSSender) Protect(metadata, plaintext []byte) ([]byte, error) {
	s.mu.Lock()
	if !s.set {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: no epoch set", ErrUnknownKey)
	}
	if s.ctr == math.MaxUint64 {
		s.mu.Unlock()
		return nil, fmt.Errorf("%w: counters of the epoch exhausted", ErrUnknownKey)
	}
	k, ctr := s.key, s.ctr
	s.ctr++
	s.mu.Unlock()
	return k.Seal(ctr, metadata, plaintext)
}
