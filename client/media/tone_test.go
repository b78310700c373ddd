package media_test

import (
	"math"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/media"
)

func TestToneAndLevel(t *testing.T) {
	t.Parallel()
	p := media.Tone(440, 500*time.Millisecond, 0.25)
	if len(p.Samples) != 24000 || p.Rate != media.Rate {
		t.Fatalf("tone of %d samples at %d Hz", len(p.Samples), p.Rate)
	}
	if l := media.Level(p.Samples, media.Rate, 440); math.Abs(l-0.25) > 0.0025 {
		t.Errorf("level of a 0.25 tone at its frequency: %.4f", l)
	}
	if r := media.RMS(p.Samples); math.Abs(r-0.25/math.Sqrt2) > 0.002 {
		t.Errorf("RMS of a 0.25 sine: %.4f", r)
	}
	for _, f := range []float64{1000, 600, 2000, 50} {
		if l := media.DB(media.Level(p.Samples, media.Rate, f)); l > -60 {
			t.Errorf("a 440 Hz tone shows %.1f dBFS at %v Hz", l, f)
		}
	}
	// One 20 ms frame is enough to tell 440 Hz from 1000 Hz.
	frame := p.Frame(3)
	in, out := media.DB(media.Level(frame, media.Rate, 440)), media.DB(media.Level(frame, media.Rate, 1000))
	t.Logf("one frame of a -12 dBFS 440 Hz tone: %.1f dBFS at 440 Hz, %.1f dBFS at 1000 Hz", in, out)
	if math.Abs(in-media.DB(0.25)) > 1 || out > in-40 {
		t.Errorf("one frame: %.1f dBFS at 440 Hz, %.1f dBFS at 1000 Hz", in, out)
	}

	if media.Level(nil, media.Rate, 440) != 0 || media.Level(p.Samples, 0, 440) != 0 || media.RMS(nil) != 0 {
		t.Error("level of nothing is not 0")
	}
	if s := media.Silence(time.Second); len(s.Samples) != media.Rate || media.RMS(s.Samples) != 0 {
		t.Error("silence is not a second of zeros")
	}
	if media.DB(0) != -120 || math.Abs(media.DB(0.5)+6.02) > 0.01 || media.DB(1) != 0 {
		t.Errorf("DB: %v %v %v", media.DB(0), media.DB(0.5), media.DB(1))
	}
	if full := media.Tone(100, 20*time.Millisecond, 3); media.Level(full.Samples, media.Rate, 100) > 1.01 {
		t.Error("amplitude not clamped to full scale")
	}
}
