package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// ErrFrameTooLarge is returned by Call.Send for a frame whose SFrame
// ciphertext would pass wire.MaxCallFrame bytes.
var ErrFrameTooLarge = errors.New("media frame too large")

// startDatagrams starts, once per connection, the reader that gives the
// media packets arriving on the connection to the calls their handles
// name.
func (cl *Client) startDatagrams() {
	cl.calls.dgram.Do(func() {
		qc := cl.c.qc
		go func() {
			for {
				b, err := qc.ReceiveDatagram(qc.Context())
				if err != nil {
					return
				}
				h, ok := wire.PacketHandle(b)
				if !ok {
					continue
				}
				cl.calls.mu.Lock()
				c := cl.calls.byHandle[h]
				cl.calls.mu.Unlock()
				if c != nil {
					c.packet(b, time.Now())
				}
			}
		}()
	})
}

// Send protects a media frame with SFrame under the group's current epoch,
// splits it into packets and sends them to the homeserver as datagrams.
// When f has no echo and a frame was received, Send adds the echo of the
// newest one (spec/12-calls.md section 12.8.3).
func (c *Call) Send(f *wire.MediaFrame) error {
	select {
	case <-c.done:
		return ErrCallEnded
	default:
	}
	if err := f.Validate(); err != nil {
		return err
	}
	fr := *f
	c.mu.Lock()
	if time.Since(c.lastLoad) > epochCheck {
		// Another process of this profile may have moved the group on.
		c.lastLoad = time.Now()
		go c.reload()
	}
	if fr.Echo == nil && c.newest != nil {
		held := time.Since(c.newest.arrived).Microseconds()
		fr.Echo = []uint64{uint64(c.newest.source), c.newest.ts, uint64(max(held, 0))}
	}
	c.mu.Unlock()
	pt, err := wire.Marshal(&fr)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	seq := c.seq
	ct, err := c.sender.protect(ctx, wire.FrameMetadata(c.source, seq), pt)
	if err != nil {
		return fmt.Errorf("protect a media frame: %w", err)
	}
	frags := wire.Fragments(ct)
	if frags == nil {
		return fmt.Errorf("%w: %d bytes of ciphertext, at most %d", ErrFrameTooLarge, len(ct), wire.MaxCallFrame)
	}
	c.seq++
	buf := make([]byte, 0, wire.MaxCallPacket)
	for i, d := range frags {
		buf = wire.AppendMediaPacket(buf[:0], &wire.MediaPacket{Handle: c.handle, Source: c.source, Seq: seq,
			Index: uint8(i), Count: uint8(len(frags)), Data: d})
		if err := c.cl.c.qc.SendDatagram(buf); err != nil {
			return fmt.Errorf("send a media packet: %w", closeReason(err))
		}
	}
	c.mu.Lock()
	if c.stats.FramesSent == nil {
		c.stats.FramesSent = map[uint64]uint64{}
	}
	c.stats.FramesSent[fr.Kind]++
	c.mu.Unlock()
	return nil
}

// epochCheck is how often Send has the group's epoch read from the
// profile, besides the commits this client processes or makes.
const epochCheck = time.Second

// reload reads the call's group from the profile and takes its epoch's
// keys, or ends the call when this device left the group.
func (c *Call) reload() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	row, err := c.cl.p.group(ctx, c.group)
	if err != nil || row == nil {
		return
	}
	g, err := c.cl.loadGroup(ctx, row)
	if err != nil {
		return
	}
	if g.Epoch() == c.currentEpoch() && !g.Removed() && row.Active {
		return
	}
	c.cl.groupChanged(ctx, g)
}

func (c *Call) currentEpoch() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.epoch
}

// packet takes one media packet of the call's room.
func (c *Call) packet(b []byte, now time.Time) {
	p, err := wire.ParseMediaPacket(b)
	if err != nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.ended {
		return
	}
	ct, res := c.rs.add(p, now)
	c.stats.Incomplete += res.incomplete
	c.stats.Lost += res.lost
	if res.late && c.stats.Lost > 0 {
		c.stats.Lost--
	}
	if ct == nil {
		return
	}
	leaf, epoch, pt, err := c.recv.Unprotect(wire.FrameMetadata(p.Source, p.Seq), ct, now)
	if err != nil {
		c.stats.Undecryptable++
		return
	}
	f, err := wire.DecodeMediaFrame(pt)
	if err != nil {
		c.stats.Undecryptable++
		return
	}
	mb, ok := c.leaves[epoch][leaf]
	if !ok {
		c.stats.Undecryptable++
		return
	}
	c.parts[mb] = true
	if c.stats.FramesReceived == nil {
		c.stats.FramesReceived = map[uint64]uint64{}
	}
	if f.Echo != nil && f.Echo[0] == uint64(c.source) {
		nowTS := uint64(now.Sub(c.start).Microseconds())
		if rtt := int64(nowTS) - int64(f.Echo[1]) - int64(f.Echo[2]); rtt >= 0 && rtt < int64(time.Minute/time.Microsecond) {
			if len(c.stats.RTT) >= maxRTTSamples {
				c.stats.RTT = c.stats.RTT[1:]
			}
			c.stats.RTT = append(c.stats.RTT, time.Duration(rtt)*time.Microsecond)
		}
	}
	c.newest = &echoState{source: p.Source, ts: f.Timestamp, arrived: now}
	select {
	case c.frames <- ReceivedFrame{Source: p.Source, From: mb.Address, Device: mb.Device, Frame: f, Arrived: now}:
		c.stats.FramesReceived[f.Kind]++
	default:
		c.stats.Dropped++
	}
}

// Receiver limits besides those of spec 12.6.
const (
	maxCallSources = 256 // sources a call reassembles frames of at once
	// maxPartialFrames bounds the incomplete frames of one source: packets
	// of ever older sequences make no frame newer than the others, so the
	// 32-newer rule alone does not bound them within the 1 s window.
	maxPartialFrames = 2 * wire.ReassemblyFrames
)

// reassembler puts frames back together from their packets (spec 12.6).
type reassembler struct {
	sources map[uint32]*sourceFrames
}

// sourceFrames is the reassembly state of one source.
type sourceFrames struct {
	partial  map[uint32]*partialFrame
	newest   uint32 // highest sequence seen
	any      bool   // newest is set
	done     uint64 // bit i: frame newest-i was completed
	lastSeen time.Time
}

// partialFrame is a frame some of whose packets arrived.
type partialFrame struct {
	count uint8
	parts [][]byte
	got   int
	size  int
	first time.Time
	newer int // frames of the source newer than this one that arrived since
	bad   bool
}

// addResult counts what one packet changed.
type addResult struct {
	incomplete uint64 // frames dropped incomplete (timeout, newer frames, count mismatch)
	lost       uint64 // sequence numbers skipped
	late       bool   // the packet began a frame older than the newest
}

// newer reports whether sequence a is after b, with wrapping.
func newer(a, b uint32) bool { return int32(a-b) > 0 }

// add takes a parsed packet and returns the frame's whole ciphertext when
// the packet completed it.
func (r *reassembler) add(p wire.MediaPacket, now time.Time) ([]byte, addResult) {
	var res addResult
	if r.sources == nil {
		r.sources = map[uint32]*sourceFrames{}
	}
	s := r.sources[p.Source]
	if s == nil {
		if len(r.sources) >= maxCallSources {
			r.evictSource()
		}
		s = &sourceFrames{partial: map[uint32]*partialFrame{}}
		r.sources[p.Source] = s
	}
	s.lastSeen = now
	// Incomplete frames expire 1 s after their first packet.
	for seq, f := range s.partial {
		if now.Sub(f.first) > wire.ReassemblyWindow*time.Millisecond {
			delete(s.partial, seq)
			res.incomplete++
		}
	}
	f := s.partial[p.Seq]
	if f == nil {
		switch {
		case !s.any:
			s.newest, s.any = p.Seq, true
		case newer(p.Seq, s.newest):
			d := p.Seq - s.newest
			res.lost = uint64(d - 1)
			s.newest = p.Seq
			if d >= 64 {
				s.done = 0
			} else {
				s.done <<= d
			}
		case s.newest-p.Seq < 64 && s.done&(1<<(s.newest-p.Seq)) != 0:
			return nil, res // a packet of a frame already complete
		case p.Seq != s.newest:
			res.late = true
		}
		// A frame is dropped once 32 newer frames of its source arrived.
		for seq, o := range s.partial {
			if newer(p.Seq, seq) {
				if o.newer++; o.newer >= wire.ReassemblyFrames {
					delete(s.partial, seq)
					res.incomplete++
				}
			}
		}
		if len(s.partial) >= maxPartialFrames {
			// Drop the oldest incomplete frame.
			var oldest uint32
			first := true
			for seq := range s.partial {
				if first || newer(oldest, seq) {
					oldest, first = seq, false
				}
			}
			delete(s.partial, oldest)
			res.incomplete++
		}
		f = &partialFrame{count: p.Count, parts: make([][]byte, p.Count), first: now}
		s.partial[p.Seq] = f
	}
	switch {
	case f.bad:
		return nil, res
	case f.count != p.Count:
		// Packets that disagree on the count drop the frame.
		f.bad, f.parts = true, nil
		res.incomplete++
		return nil, res
	case f.parts[p.Index] != nil:
		return nil, res
	}
	f.parts[p.Index] = append([]byte(nil), p.Data...)
	f.got++
	f.size += len(p.Data)
	if f.got < int(f.count) {
		return nil, res
	}
	delete(s.partial, p.Seq)
	if i := s.newest - p.Seq; i < 64 {
		s.done |= 1 << i
	}
	ct := make([]byte, 0, f.size)
	for _, d := range f.parts {
		ct = append(ct, d...)
	}
	return ct, res
}

// evictSource forgets the source heard from least recently.
func (r *reassembler) evictSource() {
	var oldest uint32
	var at time.Time
	first := true
	for id, s := range r.sources {
		if first || s.lastSeen.Before(at) {
			oldest, at, first = id, s.lastSeen, false
		}
	}
	delete(r.sources, oldest)
}
