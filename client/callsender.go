package client

import (
	"bytes"
	"context"
	"fmt"

	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/client/sframe"
)

// counterBlock is how many SFrame counters a call reserves in the profile
// at a time: about a minute of audio and video.
const counterBlock = 4096

// callSender protects this device's frames with the SFrame key of its leaf
// in the group's current epoch (spec/12-calls.md section 12.7). The key
// depends only on the group, leaf and epoch, so every call of the device
// in one epoch shares it: the counters come from blocks reserved in the
// profile, never used twice by two calls, a rejoin, or a restart of the
// process. Its methods are called with Call.sendMu held.
type callSender struct {
	p     *Profile
	group []byte
	leaf  uint32

	set        bool
	epoch      uint64
	base       []byte
	key        *sframe.Key
	ctr, limit uint64 // the next counter, and the end of its reserved block
}

// setEpoch switches to epoch, whose base key is base. An older epoch than
// the current one is refused; the current one again keeps the counters.
func (s *callSender) setEpoch(epoch uint64, base []byte) error {
	if s.leaf > sframe.MaxMLSLeaf {
		return fmt.Errorf("%w: leaf index %d cannot send media", sframe.ErrMalformed, s.leaf)
	}
	if s.set && (epoch < s.epoch || epoch == s.epoch && bytes.Equal(base, s.base)) {
		if epoch < s.epoch {
			return fmt.Errorf("%w: epoch %d is older than the current %d", sframe.ErrUnknownKey, epoch, s.epoch)
		}
		return nil
	}
	k, err := sframe.DeriveKey(sframe.AES128GCMSHA256_128, sframe.MLSKeyID(s.leaf, epoch), base)
	if err != nil {
		return err
	}
	if !s.set || epoch != s.epoch {
		s.ctr, s.limit = 0, 0 // reserved on the next protect
	}
	s.set, s.epoch, s.base, s.key = true, epoch, bytes.Clone(base), k
	return nil
}

// protect encrypts a frame under the next counter, reserving a block of
// counters in the profile when the current one is used up.
func (s *callSender) protect(ctx context.Context, metadata, plaintext []byte) ([]byte, error) {
	if !s.set {
		return nil, fmt.Errorf("%w: no epoch set", sframe.ErrUnknownKey)
	}
	if s.ctr >= s.limit {
		var first uint64
		err := s.p.update(ctx, func(tx *profile.Tx) (err error) {
			first, err = tx.ReserveSFrameCounters(s.group, s.epoch, counterBlock)
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("reserve SFrame counters: %w", err)
		}
		s.ctr, s.limit = first, first+counterBlock
	}
	ctr := s.ctr
	s.ctr++
	return s.key.Seal(ctr, metadata, plaintext)
}
