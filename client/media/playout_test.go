package media_test

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/media"
)

// ts is the timestamp of frame i of a sender.
func ts(i int) time.Duration { return time.Duration(i) * media.FrameDuration }

func isSilence(s []int16) bool {
	for _, x := range s {
		if x != 0 {
			return false
		}
	}
	return true
}

// TestPlayoutMixesTwoSourcesWithALostFrame plays Alice's 440 Hz and Bob's
// 1000 Hz tones, one frame of each per tick, with Bob's frame 4 lost.
func TestPlayoutMixesTwoSourcesWithALostFrame(t *testing.T) {
	t.Parallel()
	const frames = 10
	a, b := media.Tone(440, ts(frames), 0.3), media.Tone(1000, ts(frames), 0.3)
	p := media.NewPlayout(0)
	rec := &media.PCM{Rate: media.Rate}
	for tick := range frames + 3 {
		if tick < frames {
			p.Add(1, ts(tick)+time.Millisecond, a.Frame(tick)) // a little jitter in the timestamps
			if tick != 4 {
				p.Add(2, 500*time.Second+ts(tick), b.Frame(tick)) // another clock origin
			}
		}
		rec.Append(p.Next())
	}
	for k := range 3 {
		if !isSilence(rec.Frame(k)) {
			t.Fatalf("slot %d played before the 60 ms delay", k)
		}
	}
	for i := range frames {
		out := rec.Frame(i + 3)
		la, lb := media.DB(media.Level(out, media.Rate, 440)), media.DB(media.Level(out, media.Rate, 1000))
		af, bf := a.Frame(i), b.Frame(i)
		for j := range out {
			want := af[j]
			if i != 4 {
				want += bf[j]
			}
			if out[j] != want {
				t.Fatalf("frame %d sample %d: %d, want %d", i, j, out[j], want)
			}
		}
		if i == 4 {
			t.Logf("frame %d (Bob's lost): 440 Hz %.1f dBFS, 1000 Hz %.1f dBFS", i, la, lb)
			if lb > -60 || la < -12 {
				t.Errorf("lost frame: 1000 Hz at %.1f dBFS, 440 Hz at %.1f dBFS", lb, la)
			}
		} else if la < -12 || lb < -12 {
			t.Errorf("frame %d: 440 Hz %.1f dBFS, 1000 Hz %.1f dBFS", i, la, lb)
		}
	}
	st := p.Stats()
	if st[1] != (media.PlayoutStats{Received: 10, Played: 10}) {
		t.Errorf("Alice: %+v", st[1])
	}
	if st[2] != (media.PlayoutStats{Received: 9, Played: 9, Lost: 1}) {
		t.Errorf("Bob: %+v", st[2])
	}
}

func TestPlayoutSilenceForALostFrame(t *testing.T) {
	t.Parallel()
	a := media.Tone(440, ts(6), 0.5)
	p := media.NewPlayout(60 * time.Millisecond)
	var out [][]int16
	for tick := range 9 {
		if tick < 6 && tick != 2 {
			p.Add(7, ts(tick), a.Frame(tick))
		}
		out = append(out, p.Next())
	}
	for i, f := range out {
		want := !(i >= 3 && i != 5)
		if isSilence(f) != want {
			t.Errorf("slot %d: silence %v, want %v", i, isSilence(f), want)
		}
	}
	if st := p.Stats()[7]; st.Lost != 1 || st.Played != 5 {
		t.Errorf("stats %+v", st)
	}
}

func TestPlayoutReordersLateAndDuplicateFrames(t *testing.T) {
	t.Parallel()
	a := media.Tone(440, ts(10), 0.5)
	p := media.NewPlayout(0)
	var out [][]int16
	next := func() { out = append(out, p.Next()) }
	p.Add(1, ts(0), a.Frame(0))
	p.Add(1, ts(2), a.Frame(2)) // out of order, within the delay
	p.Add(1, ts(1), a.Frame(1))
	p.Add(1, ts(1), a.Frame(1)) // duplicate while buffered
	for range 4 {
		next() // plays slot 0 at the 4th tick
	}
	p.Add(1, ts(0), a.Frame(0)) // duplicate of a played frame
	next()                      // slot 1
	next()                      // slot 2
	next()                      // slot 3: missing
	p.Add(1, ts(3), a.Frame(3)) // late
	p.Add(1, ts(4), a.Frame(4))
	next()                      // slot 4
	next()                      // slot 5: missing, nothing newer yet
	next()                      // slot 6: missing
	p.Add(1, ts(7), a.Frame(7)) // slots 5 and 6 were lost
	next()

	for i, want := range map[int][]int16{3: a.Frame(0), 4: a.Frame(1), 5: a.Frame(2), 6: nil, 7: a.Frame(4), 8: nil, 9: nil, 10: a.Frame(7)} {
		if want == nil {
			if !isSilence(out[i]) {
				t.Errorf("tick %d: not silence", i)
			}
		} else if !slices.Equal(out[i], want) {
			t.Errorf("tick %d: wrong frame", i)
		}
	}
	want := media.PlayoutStats{Received: 8, Played: 5, Lost: 3, Late: 1, Duplicate: 2}
	if st := p.Stats()[1]; st != want {
		t.Errorf("stats %+v, want %+v", st, want)
	}
}

func TestPlayoutClipsAndRestarts(t *testing.T) {
	t.Parallel()
	loud := make([]int16, media.FrameSamples)
	for i := range loud {
		loud[i] = 30000
		if i%2 == 1 {
			loud[i] = -30000
		}
	}
	p := media.NewPlayout(20 * time.Millisecond)
	p.Add(1, 0, loud)
	p.Add(2, 0, loud)
	p.Add(3, 0, loud[:10]) // short: padded with silence
	p.Next()
	out := p.Next()
	if out[0] != 32767 || out[1] != -32768 || out[100] != 32767 || out[101] != -32768 {
		t.Errorf("mix not clipped: %d %d %d %d", out[0], out[1], out[100], out[101])
	}
	// A jump of the sender's clock (an hour) restarts its timeline: the
	// frame plays after the delay instead of waiting an hour.
	p.Add(1, time.Hour, loud)
	p.Next()
	if out := p.Next(); out[0] != 30000 {
		t.Errorf("frame after a clock jump not played: %d", out[0])
	}
	if st := p.Stats()[1]; st.Received != 2 || st.Played != 2 || st.Lost != 0 {
		t.Errorf("stats %+v", st)
	}
}

func TestPlayoutConcurrentAddAndNext(t *testing.T) {
	t.Parallel()
	p := media.NewPlayout(0)
	frame := media.Tone(440, media.FrameDuration, 0.1).Samples
	var wg sync.WaitGroup
	for src := range uint32(4) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				p.Add(src, ts(i), frame)
			}
		}()
	}
	for range 200 {
		if len(p.Next()) != media.FrameSamples {
			t.Fatal("short output")
		}
	}
	wg.Wait()
	for src, st := range p.Stats() {
		if st.Received != 200 {
			t.Errorf("source %d: %+v", src, st)
		}
	}
}
