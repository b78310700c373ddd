package client

import (
	"bytes"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/sframe"
	"github.com/xchat-im/xchat/spec/wire"
)

func pkt(src, seq uint32, idx, count uint8, data string) wire.MediaPacket {
	return wire.MediaPacket{Handle: 7, Source: src, Seq: seq, Index: idx, Count: count, Data: []byte(data)}
}

// Reassembly follows spec/12-calls.md section 12.6.
func TestReassembly(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	t.Run("out of order fragments", func(t *testing.T) {
		var r reassembler
		if ct, _ := r.add(pkt(1, 5, 2, 3, "c"), t0); ct != nil {
			t.Fatal("complete after one of three")
		}
		r.add(pkt(1, 5, 0, 3, "a"), t0)
		r.add(pkt(1, 5, 0, 3, "a"), t0) // duplicate
		ct, _ := r.add(pkt(1, 5, 1, 3, "b"), t0)
		if string(ct) != "abc" {
			t.Fatalf("got %q", ct)
		}
		if ct, _ := r.add(pkt(1, 5, 1, 3, "b"), t0); ct != nil {
			t.Fatal("a completed frame came back")
		}
	})
	t.Run("count mismatch drops the frame", func(t *testing.T) {
		var r reassembler
		r.add(pkt(1, 1, 0, 2, "a"), t0)
		_, res := r.add(pkt(1, 1, 1, 3, "b"), t0)
		if res.incomplete != 1 {
			t.Fatalf("%+v", res)
		}
		if ct, _ := r.add(pkt(1, 1, 1, 2, "b"), t0); ct != nil {
			t.Fatal("a frame with disagreeing counts completed")
		}
	})
	t.Run("one second", func(t *testing.T) {
		var r reassembler
		r.add(pkt(1, 1, 0, 2, "a"), t0)
		_, res := r.add(pkt(1, 2, 0, 1, "x"), t0.Add(1001*time.Millisecond))
		if res.incomplete != 1 {
			t.Fatalf("%+v", res)
		}
		if ct, _ := r.add(pkt(1, 1, 1, 2, "b"), t0.Add(1002*time.Millisecond)); ct != nil {
			t.Fatal("an expired frame completed")
		}
	})
	t.Run("32 newer frames", func(t *testing.T) {
		var r reassembler
		r.add(pkt(1, 100, 0, 2, "a"), t0)
		var dropped uint64
		for i := uint32(1); i <= wire.ReassemblyFrames; i++ {
			_, res := r.add(pkt(1, 100+i, 0, 1, "x"), t0)
			dropped += res.incomplete
		}
		if dropped != 1 {
			t.Fatalf("dropped %d", dropped)
		}
	})
	t.Run("gaps, late frames and wrapping", func(t *testing.T) {
		var r reassembler
		r.add(pkt(2, 1<<32-2, 0, 1, "x"), t0)
		_, res := r.add(pkt(2, 1, 0, 1, "y"), t0) // skips 2^32-1 and 0
		if res.lost != 2 {
			t.Fatalf("%+v", res)
		}
		ct, res := r.add(pkt(2, 0, 0, 1, "z"), t0)
		if !res.late || !bytes.Equal(ct, []byte("z")) {
			t.Fatalf("%q %+v", ct, res)
		}
	})
	t.Run("sources are bounded", func(t *testing.T) {
		var r reassembler
		for i := range uint32(maxCallSources + 10) {
			r.add(pkt(i, 0, 0, 2, "a"), t0.Add(time.Duration(i)))
		}
		if len(r.sources) > maxCallSources {
			t.Fatalf("%d sources", len(r.sources))
		}
	})
}

// FuzzCallPacket feeds arbitrary datagrams to the receive path of a call:
// nothing panics, and nothing that is not a complete, authentic frame is
// delivered.
func FuzzCallPacket(f *testing.F) {
	f.Add(wire.AppendMediaPacket(nil, &wire.MediaPacket{Handle: 1, Source: 2, Seq: 3, Index: 0, Count: 1, Data: []byte("frame")}), []byte{})
	f.Add(wire.AppendMediaPacket(nil, &wire.MediaPacket{Handle: 1, Source: 2, Seq: 3, Index: 1, Count: 2, Data: []byte("b")}),
		wire.AppendMediaPacket(nil, &wire.MediaPacket{Handle: 1, Source: 2, Seq: 3, Index: 0, Count: 2, Data: []byte("a")}))
	f.Add([]byte{0, 0, 0, 1}, []byte{0xff})
	f.Fuzz(func(t *testing.T, a, b []byte) {
		c := newTestCall()
		now := time.Unix(0, 0)
		c.packet(a, now)
		c.packet(b, now.Add(time.Millisecond))
		c.packet(a, now.Add(2*time.Second))
		select {
		case fr := <-c.frames:
			t.Fatalf("delivered %+v without a key", fr)
		default:
		}
	})
}

// newTestCall is a call with no connection and no keys, for the receive
// path alone.
func newTestCall() *Call {
	return &Call{recv: sframe.NewMLSReceiver(), frames: make(chan ReceivedFrame, 4), leaves: map[uint64]map[uint32]wire.Mailbox{},
		parts: map[wire.Mailbox]bool{}, start: time.Unix(0, 0)}
}

// A hostile sender that sends first packets of ever older frames within
// the 1 s window must not make a source hold unbounded incomplete frames.
func TestReassemblyBoundsPartialFrames(t *testing.T) {
	t.Parallel()
	t0 := time.Unix(1000, 0)
	var r reassembler
	var dropped uint64
	for i := range uint32(10000) {
		_, res := r.add(pkt(1, 1_000_000-i, 0, 111, "x"), t0)
		dropped += res.incomplete
	}
	if n := len(r.sources[1].partial); n > maxPartialFrames {
		t.Fatalf("%d incomplete frames held for one source, at most %d", n, maxPartialFrames)
	}
	if dropped == 0 {
		t.Fatal("no incomplete frame counted as dropped")
	}
}

// A frame is attributed to the device its leaf named in the frame's
// epoch, not to a device that took the leaf in a later epoch.
func TestCallFrameAttributedByEpoch(t *testing.T) {
	t.Parallel()
	now := time.Unix(0, 0)
	c := newTestCall()
	carol := wire.Mailbox{Address: "carol@b.test", Device: 1}
	dave := wire.Mailbox{Address: "dave@b.test", Device: 1}
	base1, base2 := bytes.Repeat([]byte{1}, 16), bytes.Repeat([]byte{2}, 16)
	c.recv.AddEpoch(1, base1, now)
	c.leaves[1] = map[uint32]wire.Mailbox{2: carol}
	c.recv.AddEpoch(2, base2, now)
	c.leaves[2] = map[uint32]wire.Mailbox{2: dave} // carol removed, dave at her leaf
	s := sframe.NewMLSSender(2)
	if err := s.SetEpoch(1, base1); err != nil {
		t.Fatal(err)
	}
	pt, _ := wire.Marshal(&wire.MediaFrame{Kind: wire.KindAudio, Codec: "pcmu", Payload: []byte{1}})
	ct, err := s.Protect(wire.FrameMetadata(9, 0), pt)
	if err != nil {
		t.Fatal(err)
	}
	c.packet(wire.AppendMediaPacket(nil, &wire.MediaPacket{Handle: 7, Source: 9, Seq: 0, Count: 1, Data: ct}), now)
	select {
	case fr := <-c.frames:
		if fr.From != carol.Address {
			t.Fatalf("a frame of epoch 1 attributed to %s, want %s", fr.From, carol.Address)
		}
	default:
		t.Fatalf("frame not delivered: %+v", c.stats)
	}
}
