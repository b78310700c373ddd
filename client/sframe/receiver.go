package sframe

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// Retention of past epochs (spec 12.7).
const (
	// MaxPastEpochs is the number of epochs before the newest whose keys a
	// receiver keeps.
	MaxPastEpochs = 4
	// PastEpochLifetime is how long a receiver keeps an epoch's keys after
	// it learned the next epoch.
	PastEpochLifetime = 10 * time.Second
)

// MLSReceiver opens the frames of every sender of a group (spec 12.7): it
// derives each sender's key from the base key of the sender's epoch, keeps
// the newest epoch and at most MaxPastEpochs before it (each at most
// PastEpochLifetime after the next was added), and rejects replayed
// counters per KID. It is safe for concurrent use.
type MLSReceiver struct {
	mu     sync.Mutex
	epochs []*epochKeys // newest first
}

// epochKeys is the base key of one epoch and the senders seen in it.
type epochKeys struct {
	epoch      uint64
	baseKey    []byte
	superseded time.Time // when a newer epoch was added; zero for the newest
	senders    map[uint32]*senderState
}

// senderState is the key of one KID and its replay window. A sender is
// recorded only once a frame of it authenticated.
type senderState struct {
	key    *Key
	window replayWindow
}

// NewMLSReceiver returns a receiver that knows no epoch yet.
func NewMLSReceiver() *MLSReceiver {
	return &MLSReceiver{}
}

// AddEpoch adds the base key of epoch, learned at now. A newer epoch than
// the newest starts the PastEpochLifetime of the one before; an older one
// counts as superseded at now. Adding a known epoch with the same base key
// changes nothing (replay windows are kept); with another base key it
// replaces the keys. An empty base key is ignored.
func (r *MLSReceiver) AddEpoch(epoch uint64, baseKey []byte, now time.Time) {
	if len(baseKey) == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, e := range r.epochs {
		if e.epoch == epoch {
			if !bytes.Equal(e.baseKey, baseKey) {
				e.baseKey, e.senders = bytes.Clone(baseKey), map[uint32]*senderState{}
			}
			r.prune(now)
			return
		}
	}
	e := &epochKeys{epoch: epoch, baseKey: bytes.Clone(baseKey), senders: map[uint32]*senderState{}}
	if len(r.epochs) > 0 {
		if newest := r.epochs[0]; epoch > newest.epoch {
			newest.superseded = now
		} else {
			e.superseded = now
		}
	}
	r.epochs = append(r.epochs, e)
	slices.SortFunc(r.epochs, func(a, b *epochKeys) int { return cmp.Compare(b.epoch, a.epoch) })
	r.prune(now)
}

// Epochs returns the epochs the receiver holds keys of at now, newest
// first.
func (r *MLSReceiver) Epochs(now time.Time) []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.prune(now)
	out := make([]uint64, len(r.epochs))
	for i, e := range r.epochs {
		out[i] = e.epoch
	}
	return out
}

// prune drops the past epochs beyond MaxPastEpochs or PastEpochLifetime.
func (r *MLSReceiver) prune(now time.Time) {
	if len(r.epochs) == 0 {
		return
	}
	kept := r.epochs[:1]
	for _, e := range r.epochs[1:] {
		if len(kept) <= MaxPastEpochs && now.Sub(e.superseded) <= PastEpochLifetime {
			kept = append(kept, e)
		}
	}
	clear(r.epochs[len(kept):])
	r.epochs = kept
}

// Unprotect opens the SFrame ciphertext ct of a frame with metadata at now
// and returns the sender's leaf index, the epoch and the plaintext. Errors
// wrap ErrMalformed, ErrUnknownKey (a KID outside the layout, or an epoch
// not held at now), ErrAuth or ErrReplay (a counter accepted before under
// the KID, or below its window of 128).
func (r *MLSReceiver) Unprotect(metadata, ct []byte, now time.Time) (leaf uint32, epoch uint64, plaintext []byte, err error) {
	kid, ctr, hl, err := ParseHeader(ct)
	if err != nil {
		return 0, 0, nil, err
	}
	leaf, epochLow, err := SplitMLSKeyID(kid)
	if err != nil {
		return 0, 0, nil, fmt.Errorf("%w: KID outside the MLS layout", ErrUnknownKey)
	}
	r.mu.Lock()
	r.prune(now)
	var cands []*epochKeys
	for _, e := range r.epochs {
		if uint8(e.epoch) == epochLow {
			cands = append(cands, e)
		}
	}
	r.mu.Unlock()
	if len(cands) == 0 {
		return 0, 0, nil, fmt.Errorf("%w: no epoch held for KID %d", ErrUnknownKey, kid)
	}
	err = nil
	for _, e := range cands {
		var pt []byte
		pt, err = r.open(e, leaf, kid, ctr, hl, metadata, ct)
		if err == nil {
			return leaf, e.epoch, pt, nil
		}
		if !errors.Is(err, ErrAuth) {
			break
		}
	}
	return 0, 0, nil, err
}

// open opens ct with the key of leaf in e and records its counter.
func (r *MLSReceiver) open(e *epochKeys, leaf uint32, kid, ctr uint64, hl int, metadata, ct []byte) ([]byte, error) {
	r.mu.Lock()
	s := e.senders[leaf]
	baseKey := e.baseKey
	if s != nil && !s.window.check(ctr) {
		r.mu.Unlock()
		return nil, fmt.Errorf("%w: counter %d under KID %d", ErrReplay, ctr, kid)
	}
	r.mu.Unlock()
	var k *Key
	if s != nil {
		k = s.key
	} else {
		var err error
		if k, err = DeriveKey(AES128GCMSHA256_128, kid, baseKey); err != nil {
			return nil, err
		}
	}
	_, pt, err := k.open(ctr, hl, metadata, ct)
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if s == nil {
		// Only an authenticated frame makes a sender known, so forged KIDs
		// cost no memory. Another frame may have added it meanwhile.
		if !bytes.Equal(e.baseKey, baseKey) {
			return nil, fmt.Errorf("%w: epoch %d re-keyed", ErrUnknownKey, e.epoch)
		}
		if s = e.senders[leaf]; s == nil {
			s = &senderState{key: k}
			e.senders[leaf] = s
		}
	}
	if !s.window.check(ctr) {
		return nil, fmt.Errorf("%w: counter %d under KID %d", ErrReplay, ctr, kid)
	}
	s.window.accept(ctr)
	return pt, nil
}
