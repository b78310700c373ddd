package client

import (
	"bytes"
	"context"
	"testing"

	"github.com/xchat-im/xchat/client/sframe"
	"github.com/xchat-im/xchat/spec/wire"
)

// Two calls of one device in one epoch share the SFrame key of its leaf
// (the KID depends only on leaf and epoch): their counters must not meet,
// also after the process restarts (spec/12-calls.md section 12.7).
func TestCallSenderCountersNeverReused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	group, base := []byte("group-1"), bytes.Repeat([]byte{7}, 16)
	seen := map[uint64]bool{}
	protect := func(p *Profile, frames int) {
		t.Helper()
		s := callSender{p: p, group: group, leaf: 3}
		if err := s.setEpoch(5, base); err != nil {
			t.Fatal(err)
		}
		for i := range frames {
			ct, err := s.protect(context.Background(), wire.FrameMetadata(1, uint32(i)), []byte("frame"))
			if err != nil {
				t.Fatal(err)
			}
			kid, ctr, _, err := sframe.ParseHeader(ct)
			if err != nil || kid != sframe.MLSKeyID(3, 5) {
				t.Fatalf("kid %d, %v", kid, err)
			}
			if seen[ctr] {
				t.Fatalf("counter %d used twice under KID %d", ctr, kid)
			}
			seen[ctr] = true
		}
	}
	p, err := OpenProfile(dir)
	if err != nil {
		t.Fatal(err)
	}
	protect(p, 3)              // a call
	protect(p, counterBlock+2) // another call in the same epoch, past a block
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p, err = OpenProfile(dir) // a restart
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	protect(p, 3)
	// Another epoch starts again from 0.
	s := callSender{p: p, group: group, leaf: 3}
	s.setEpoch(6, base)
	ct, err := s.protect(context.Background(), wire.FrameMetadata(1, 0), []byte("x"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ctr, _, _ := sframe.ParseHeader(ct); ctr != 0 {
		t.Fatalf("first counter of a new epoch %d, want 0", ctr)
	}
}
