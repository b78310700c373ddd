package sframe

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

func baseKeyOf(epoch uint64) []byte {
	return fmt.Appendf(nil, "base-key-%07d", epoch)
}

func meta(source, seq uint32) []byte {
	return []byte{byte(source >> 24), byte(source >> 16), byte(source >> 8), byte(source), byte(seq >> 24), byte(seq >> 16), byte(seq >> 8), byte(seq)}
}

func TestMLSKeyID(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		leaf  uint32
		epoch uint64
		kid   uint64
	}{{0, 0, 0}, {1, 0, 0x100}, {3, 7, 0x307}, {3, 263, 0x307}, {MaxMLSLeaf, 255, 0xffffff}} {
		if got := MLSKeyID(c.leaf, c.epoch); got != c.kid {
			t.Errorf("MLSKeyID(%d, %d) = %#x, want %#x", c.leaf, c.epoch, got, c.kid)
		}
		leaf, low, err := SplitMLSKeyID(c.kid)
		if err != nil || leaf != c.leaf || low != uint8(c.epoch) {
			t.Errorf("SplitMLSKeyID(%#x) = %d, %d, %v", c.kid, leaf, low, err)
		}
	}
	if _, _, err := SplitMLSKeyID(1 << 24); !errors.Is(err, ErrMalformed) {
		t.Fatalf("KID above the layout: %v", err)
	}
}

func TestMLSSenderReceiver(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	s := NewMLSSender(3)
	if _, err := s.Protect(nil, []byte("x")); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("Protect before SetEpoch: %v", err)
	}
	if err := s.SetEpoch(5, baseKeyOf(5)); err != nil {
		t.Fatal(err)
	}
	r := NewMLSReceiver()
	r.AddEpoch(5, baseKeyOf(5), now)
	for i := range uint64(10) {
		ct, err := s.Protect(meta(3, uint32(i)), []byte("frame"))
		if err != nil {
			t.Fatal(err)
		}
		kid, ctr, _, err := ParseHeader(ct)
		if err != nil || kid != MLSKeyID(3, 5) || ctr != i {
			t.Fatalf("frame %d: KID %#x counter %d, %v", i, kid, ctr, err)
		}
		leaf, epoch, pt, err := r.Unprotect(meta(3, uint32(i)), ct, now)
		if err != nil || leaf != 3 || epoch != 5 || string(pt) != "frame" {
			t.Fatalf("frame %d: %d %d %q %v", i, leaf, epoch, pt, err)
		}
		if _, _, _, err := r.Unprotect(meta(3, uint32(i)), ct, now); !errors.Is(err, ErrReplay) {
			t.Fatalf("replay of frame %d: %v", i, err)
		}
		if _, _, _, err := r.Unprotect(meta(4, uint32(i)), ct, now); !errors.Is(err, ErrAuth) && !errors.Is(err, ErrReplay) {
			t.Fatalf("moved frame %d: %v", i, err)
		}
	}
	// The same epoch again keeps the counter; a new one starts at 0.
	if err := s.SetEpoch(5, baseKeyOf(5)); err != nil {
		t.Fatal(err)
	}
	ct, _ := s.Protect(nil, nil)
	if _, ctr, _, _ := ParseHeader(ct); ctr != 10 {
		t.Fatalf("counter %d after setting the same epoch", ctr)
	}
	if err := s.SetEpoch(6, baseKeyOf(6)); err != nil {
		t.Fatal(err)
	}
	if e, ok := s.Epoch(); !ok || e != 6 {
		t.Fatalf("Epoch() = %d, %v", e, ok)
	}
	ct, _ = s.Protect(nil, nil)
	if kid, ctr, _, _ := ParseHeader(ct); kid != MLSKeyID(3, 6) || ctr != 0 {
		t.Fatalf("KID %#x counter %d in the new epoch", kid, ctr)
	}
	if _, _, _, err := r.Unprotect(nil, ct, now); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("frame of an unknown epoch: %v", err)
	}
	if err := s.SetEpoch(5, baseKeyOf(5)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("going back an epoch: %v", err)
	}
	if err := NewMLSSender(MaxMLSLeaf+1).SetEpoch(1, baseKeyOf(1)); !errors.Is(err, ErrMalformed) {
		t.Fatalf("leaf above the layout: %v", err)
	}
	if err := NewMLSSender(1).SetEpoch(1, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty base key: %v", err)
	}
}

func TestMLSReceiverPastEpochs(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1_700_000_000, 0)
	r := NewMLSReceiver()
	frames := map[uint64][]byte{}
	for e := uint64(1); e <= 6; e++ {
		s := NewMLSSender(2)
		if err := s.SetEpoch(e, baseKeyOf(e)); err != nil {
			t.Fatal(err)
		}
		frames[e], _ = s.Protect(nil, []byte{byte(e)})
		r.AddEpoch(e, baseKeyOf(e), t0.Add(time.Duration(e)*time.Second))
	}
	at := t0.Add(6 * time.Second)
	if got := r.Epochs(at); fmt.Sprint(got) != "[6 5 4 3 2]" {
		t.Fatalf("epochs held: %v", got)
	}
	if _, _, _, err := r.Unprotect(nil, frames[1], at); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("fifth past epoch: %v", err)
	}
	// Epoch 2 was superseded at t0+3s: it is kept 10 s, to t0+13s.
	if _, e, _, err := r.Unprotect(nil, frames[2], t0.Add(13*time.Second)); err != nil || e != 2 {
		t.Fatalf("epoch 2 at 10 s: %d, %v", e, err)
	}
	if _, _, _, err := r.Unprotect(nil, frames[3], t0.Add(14*time.Second+time.Millisecond)); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("epoch 3 after 10 s: %v", err)
	}
	// The newest epoch never expires.
	if _, e, _, err := r.Unprotect(nil, frames[6], t0.Add(time.Hour)); err != nil || e != 6 {
		t.Fatalf("newest epoch after an hour: %d, %v", e, err)
	}
	if got := r.Epochs(t0.Add(time.Hour)); fmt.Sprint(got) != "[6]" {
		t.Fatalf("epochs held after an hour: %v", got)
	}
}

func TestMLSReceiverReKeyAndLateEpoch(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	r := NewMLSReceiver()
	r.AddEpoch(10, baseKeyOf(10), now)
	r.AddEpoch(9, baseKeyOf(9), now) // learned late: superseded already
	r.AddEpoch(9, nil, now)          // ignored
	if got := r.Epochs(now.Add(10 * time.Second)); fmt.Sprint(got) != "[10 9]" {
		t.Fatalf("epochs: %v", got)
	}
	if got := r.Epochs(now.Add(11 * time.Second)); fmt.Sprint(got) != "[10]" {
		t.Fatalf("epochs after 11 s: %v", got)
	}
	s := NewMLSSender(1)
	if err := s.SetEpoch(10, baseKeyOf(10)); err != nil {
		t.Fatal(err)
	}
	ct, _ := s.Protect(nil, []byte("a"))
	r.AddEpoch(10, []byte("another key 1234"), now)
	if _, _, _, err := r.Unprotect(nil, ct, now); !errors.Is(err, ErrAuth) {
		t.Fatalf("frame under the replaced key: %v", err)
	}
	r.AddEpoch(10, baseKeyOf(10), now)
	if _, _, _, err := r.Unprotect(nil, ct, now); err != nil {
		t.Fatal(err)
	}
}

// TestMLSRemovedMember: a receiver that does not learn an epoch (a member
// removed before it) cannot open its frames.
func TestMLSRemovedMember(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	alice := NewMLSSender(0)
	removed := NewMLSReceiver()
	removed.AddEpoch(1, baseKeyOf(1), now)
	if err := alice.SetEpoch(2, baseKeyOf(2)); err != nil {
		t.Fatal(err)
	}
	ct, _ := alice.Protect(nil, []byte("secret"))
	if _, _, _, err := removed.Unprotect(nil, ct, now); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("removed member: %v", err)
	}
	// Epoch 258 has the same low byte as 2: a guessed key still fails.
	removed.AddEpoch(258, baseKeyOf(258), now)
	if _, _, _, err := removed.Unprotect(nil, ct, now); !errors.Is(err, ErrAuth) {
		t.Fatalf("other epoch with the same low byte: %v", err)
	}
}

func TestMLSReplayWindow(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	s := NewMLSSender(7)
	if err := s.SetEpoch(1, baseKeyOf(1)); err != nil {
		t.Fatal(err)
	}
	var cts [400][]byte
	for i := range cts {
		cts[i], _ = s.Protect(nil, nil)
	}
	r := NewMLSReceiver()
	r.AddEpoch(1, baseKeyOf(1), now)
	open := func(i int) error { _, _, _, err := r.Unprotect(nil, cts[i], now); return err }
	// Out of order within the window is accepted once.
	for _, i := range []int{5, 3, 4, 0, 200, 73, 150} {
		if err := open(i); err != nil {
			t.Fatalf("counter %d: %v", i, err)
		}
	}
	for _, i := range []int{5, 3, 200, 150} {
		if err := open(i); !errors.Is(err, ErrReplay) {
			t.Fatalf("repeated counter %d: %v", i, err)
		}
	}
	// Window is 128 highest: 200-127 = 73 is in it, 72 below it.
	if err := open(72); !errors.Is(err, ErrReplay) {
		t.Fatalf("counter below the window: %v", err)
	}
	if err := open(74); err != nil {
		t.Fatalf("counter at the window's bottom: %v", err)
	}
	if err := open(399); err != nil {
		t.Fatal(err)
	}
	if err := open(271); !errors.Is(err, ErrReplay) {
		t.Fatalf("counter 271 after 399: %v", err)
	}
	if err := open(272); err != nil {
		t.Fatalf("counter 272 after 399: %v", err)
	}
	// A forged frame does not touch the window.
	bad := bytes.Clone(cts[300])
	bad[len(bad)-1] ^= 1
	if _, _, _, err := r.Unprotect(nil, bad, now); !errors.Is(err, ErrAuth) {
		t.Fatalf("forged: %v", err)
	}
	if err := open(300); err != nil {
		t.Fatalf("genuine frame after a forged one: %v", err)
	}
}

// TestReplayWindowModel checks the window against a map of every accepted
// counter.
func TestReplayWindowModel(t *testing.T) {
	t.Parallel()
	var w replayWindow
	accepted := map[uint64]bool{}
	var top uint64
	seq := []uint64{}
	for i := range uint64(3000) {
		seq = append(seq, i*7%300+i/2, i/3, i+200, 1000+i*11%257)
	}
	for _, c := range seq {
		want := !accepted[c] && (len(accepted) == 0 || c > top || top-c < windowSize)
		if got := w.check(c); got != want {
			t.Fatalf("check(%d) = %v, want %v (top %d)", c, got, want, top)
		}
		if want {
			w.accept(c)
			accepted[c] = true
			top = max(top, c)
		}
	}
}

func TestMLSUnprotectMalformed(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	r := NewMLSReceiver()
	r.AddEpoch(1, baseKeyOf(1), now)
	if _, _, _, err := r.Unprotect(nil, nil, now); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty: %v", err)
	}
	k, _ := DeriveKey(AES128GCMSHA256_128, 1<<30, baseKeyOf(1))
	ct, _ := k.Seal(0, nil, nil)
	if _, _, _, err := r.Unprotect(nil, ct, now); !errors.Is(err, ErrUnknownKey) {
		t.Fatalf("KID outside the layout: %v", err)
	}
	// Forged KIDs leave no state behind.
	for leaf := range uint32(1000) {
		k, _ := DeriveKey(AES128GCMSHA256_128, MLSKeyID(leaf, 1), baseKeyOf(99))
		ct, _ := k.Seal(0, nil, nil)
		if _, _, _, err := r.Unprotect(nil, ct, now); !errors.Is(err, ErrAuth) {
			t.Fatalf("forged: %v", err)
		}
	}
	if n := len(r.epochs[0].senders); n != 0 {
		t.Fatalf("%d senders recorded from forged frames", n)
	}
}

func TestMLSConcurrent(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	r := NewMLSReceiver()
	r.AddEpoch(1, baseKeyOf(1), now)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for leaf := range uint32(4) {
		s := NewMLSSender(leaf)
		if err := s.SetEpoch(1, baseKeyOf(1)); err != nil {
			t.Fatal(err)
		}
		cts := make(chan []byte, 300)
		wg.Go(func() {
			defer close(cts)
			for i := range 300 {
				ct, err := s.Protect(meta(leaf, uint32(i)), []byte("p"))
				if err != nil {
					errs <- err
					return
				}
				cts <- ct
			}
		})
		wg.Go(func() {
			i := 0
			for ct := range cts {
				got, _, _, err := r.Unprotect(meta(leaf, uint32(i)), ct, now)
				if err != nil || got != leaf {
					errs <- fmt.Errorf("leaf %d frame %d: %d, %w", leaf, i, got, err)
					return
				}
				i++
			}
		})
	}
	wg.Go(func() {
		for e := uint64(2); e <= 1+MaxPastEpochs; e++ { // epoch 1 stays held
			r.AddEpoch(e, baseKeyOf(e), now)
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Re-keying the current epoch (a forked epoch) keeps the counter, so going
// back to a base key used before in the epoch never reuses a nonce under
// its key.
func TestMLSSenderReKeyKeepsCounter(t *testing.T) {
	t.Parallel()
	s := NewMLSSender(2)
	k1, k2 := baseKeyOf(9), []byte("another-base-key")
	seen := map[string]bool{} // base key and counter of every frame sent
	for i, bk := range [][]byte{k1, k2, k1, k2} {
		if err := s.SetEpoch(9, bk); err != nil {
			t.Fatal(err)
		}
		for range 3 {
			ct, err := s.Protect(nil, []byte("frame"))
			if err != nil {
				t.Fatal(err)
			}
			_, ctr, _, err := ParseHeader(ct)
			if err != nil {
				t.Fatal(err)
			}
			use := fmt.Sprintf("%x/%d", bk, ctr)
			if seen[use] {
				t.Fatalf("round %d: counter %d sent twice under one key", i, ctr)
			}
			seen[use] = true
		}
	}
}
