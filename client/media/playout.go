package media

import (
	"sync"
	"time"
)

// playoutWindow bounds, in 20 ms slots, how far ahead of the playout point
// a frame may be buffered and how far behind it a frame counts as late;
// a frame beyond either restarts its source's timeline (the sender's
// clock jumped or it rejoined).
const playoutWindow = 50

// PlayoutStats counts the frames of one source in a Playout.
type PlayoutStats struct {
	// Received counts every frame given to Add.
	Received uint64
	// Played counts the frames mixed into the output.
	Played uint64
	// Lost counts the 20 ms slots, from the source's first frame to its
	// newest, played as silence because their frame was missing then.
	Lost uint64
	// Late counts frames dropped because their slot had been played.
	Late uint64
	// Duplicate counts frames dropped because their slot already had one.
	Duplicate uint64
}

// Playout is a jitter buffer for the audio of several sources: it delays
// each source by a fixed number of 20 ms slots from its first frame, plays
// one slot per Next call, fills a missing frame with silence, drops late
// and duplicate frames, and mixes the sources by adding their samples,
// clipped. It is safe for concurrent use (Add from a receiver, Next from a
// 20 ms ticker).
type Playout struct {
	mu    sync.Mutex
	delay int64 // slots
	tick  int64 // Next calls so far
	src   map[uint32]*playoutSource
}

// playoutSource is the timeline of one source: slot k (the frame with
// timestamp ts0 + k·20 ms) plays at the Next call of index anchor + k.
type playoutSource struct {
	anchor  int64
	ts0     time.Duration
	frames  map[int64][]int16
	highest int64          // highest slot received, -1 before any
	full    [64]playedSlot // recently played slots that had a frame, by slot mod 64
	stats   PlayoutStats
}

// playedSlot records that a slot was played with a frame.
type playedSlot struct {
	slot int64
	ok   bool
}

// NewPlayout returns a playout buffer that delays every source by delay,
// rounded to 20 ms slots; delay 0 means PlayoutDelay.
func NewPlayout(delay time.Duration) *Playout {
	if delay == 0 {
		delay = PlayoutDelay
	}
	slots := int64((delay + FrameDuration/2) / FrameDuration)
	if slots < 0 {
		slots = 0
	}
	return &Playout{delay: slots, src: make(map[uint32]*playoutSource)}
}

// Add gives the playout one decoded frame of a source: samples (copied;
// padded or truncated to FrameSamples) taken at ts on the sender's clock,
// the frame's timestamp. The first frame of a source sets its timeline:
// it plays after the delay, and each later frame 20 ms per 20 ms of ts
// after it.
func (p *Playout) Add(source uint32, ts time.Duration, samples []int16) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st := p.src[source]
	if st == nil {
		st = &playoutSource{}
		p.src[source] = st
		p.restart(st, ts)
	}
	st.stats.Received++
	slot := slotOf(ts - st.ts0)
	played := p.tick - 1 - st.anchor // highest slot already played
	if slot > played+p.delay+playoutWindow || slot < played-playoutWindow {
		p.restart(st, ts)
		slot, played = 0, p.tick-1-st.anchor
	}
	if slot <= played {
		if st.full[mod64(slot)] == (playedSlot{slot, true}) {
			st.stats.Duplicate++
			return
		}
		st.stats.Late++
		if slot > st.highest {
			st.stats.Lost += uint64(slot - st.highest)
			st.highest = slot
		}
		return
	}
	if _, ok := st.frames[slot]; ok {
		st.stats.Duplicate++
		return
	}
	f := make([]int16, FrameSamples)
	copy(f, samples)
	st.frames[slot] = f
	if slot > st.highest {
		if played > st.highest {
			st.stats.Lost += uint64(played - st.highest)
		}
		st.highest = slot
	}
}

// restart starts a new timeline for st whose slot 0 is the frame at ts,
// played after the delay.
func (p *Playout) restart(st *playoutSource, ts time.Duration) {
	st.anchor = p.tick + p.delay
	st.ts0 = ts
	st.frames = make(map[int64][]int16)
	st.highest = -1
	st.full = [64]playedSlot{}
}

// Next plays the next 20 ms slot: FrameSamples samples, the clipped sum of
// the frames of every source due now, silence where none is. Call it once
// per 20 ms.
func (p *Playout) Next() []int16 {
	p.mu.Lock()
	defer p.mu.Unlock()
	var acc [FrameSamples]int32
	for _, st := range p.src {
		slot := p.tick - st.anchor
		f, ok := st.frames[slot]
		if !ok {
			if slot >= 0 && slot < st.highest {
				st.stats.Lost++
			}
			continue
		}
		delete(st.frames, slot)
		st.full[mod64(slot)] = playedSlot{slot, true}
		st.stats.Played++
		for i, s := range f {
			acc[i] += int32(s)
		}
	}
	p.tick++
	out := make([]int16, FrameSamples)
	for i, v := range acc {
		out[i] = clip16(v)
	}
	return out
}

// Stats returns the counts of every source seen so far.
func (p *Playout) Stats() map[uint32]PlayoutStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := make(map[uint32]PlayoutStats, len(p.src))
	for id, st := range p.src {
		m[id] = st.stats
	}
	return m
}

// slotOf rounds a timestamp offset to the nearest 20 ms slot.
func slotOf(d time.Duration) int64 {
	if d < 0 {
		return -int64((-d + FrameDuration/2) / FrameDuration)
	}
	return int64((d + FrameDuration/2) / FrameDuration)
}

func mod64(slot int64) int64 { return slot & 63 }

// clip16 clamps v to the range of an int16.
func clip16(v int32) int16 {
	switch {
	case v > 32767:
		return 32767
	case v < -32768:
		return -32768
	}
	return int16(v)
}
