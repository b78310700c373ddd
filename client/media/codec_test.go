package media_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/media"
)

// throughCodec encodes and decodes p frame by frame.
func throughCodec(t *testing.T, c media.AudioCodec, p *media.PCM) *media.PCM {
	t.Helper()
	out := &media.PCM{Rate: media.Rate}
	for i := range p.FrameCount() {
		payload := c.Encode(p.Frame(i))
		dec, err := c.Decode(payload)
		if err != nil {
			t.Fatalf("%s: decode frame %d: %v", c.Name(), i, err)
		}
		if len(dec) != media.FrameSamples {
			t.Fatalf("%s: decoded %d samples, want %d", c.Name(), len(dec), media.FrameSamples)
		}
		out.Append(dec)
	}
	return out
}

func TestPCMUKeepsToneLevel(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ freq, other float64 }{{440, 1000}, {1000, 440}, {300, 2000}} {
		in := media.Tone(tc.freq, time.Second, 0.5)
		out := throughCodec(t, media.PCMU, in)
		lin, lout := media.DB(media.Level(in.Samples, media.Rate, tc.freq)), media.DB(media.Level(out.Samples, media.Rate, tc.freq))
		leak := media.DB(media.Level(out.Samples, media.Rate, tc.other))
		t.Logf("pcmu %v Hz: level in %.2f dBFS, out %.2f dBFS; %v Hz after coding %.1f dBFS", tc.freq, lin, lout, tc.other, leak)
		if d := lout - lin; d < -2 || d > 1 {
			t.Errorf("%v Hz tone changed level by %.2f dB through pcmu", tc.freq, d)
		}
		if leak > lin-35 {
			t.Errorf("%v Hz detector sees %.1f dBFS of a %v Hz tone at %.1f dBFS", tc.other, leak, tc.freq, lin)
		}
	}
}

func TestPCMUFrameSizeAndKnownValues(t *testing.T) {
	t.Parallel()
	b := media.PCMU.Encode(make([]int16, media.FrameSamples))
	if len(b) != media.PCMUFrameBytes {
		t.Fatalf("pcmu frame of %d bytes, want %d", len(b), media.PCMUFrameBytes)
	}
	if !bytes.Equal(b, bytes.Repeat([]byte{0xFF}, media.PCMUFrameBytes)) {
		t.Errorf("silence encodes to %x, want all 0xff (G.711 μ-law zero)", b[:8])
	}
	// G.711 μ-law: 0x80 and 0x00 are the largest magnitudes, ±32124.
	for _, tc := range []struct {
		u    byte
		want int16
	}{{0xFF, 0}, {0x7F, 0}, {0x80, 32124}, {0x00, -32124}, {0xF0, 120}, {0x70, -120}, {0xEF, 132}, {0x6F, -132}} {
		dec, err := media.PCMU.Decode(bytes.Repeat([]byte{tc.u}, media.PCMUFrameBytes))
		if err != nil {
			t.Fatal(err)
		}
		if dec[0] != tc.want || dec[media.FrameSamples/2] != tc.want {
			t.Errorf("μ-law %#x decodes to %d, want %d", tc.u, dec[0], tc.want)
		}
	}
	// A short frame is padded, a full-scale one clipped without wrapping.
	loud := make([]int16, 10)
	for i := range loud {
		loud[i] = -32768
	}
	dec, err := media.PCMU.Decode(media.PCMU.Encode(loud))
	if err != nil {
		t.Fatal(err)
	}
	if dec[0] > -30000 || dec[100] != 0 {
		t.Errorf("short loud frame decodes to %d … %d", dec[0], dec[100])
	}
}

func TestL16RoundTripIsExact(t *testing.T) {
	t.Parallel()
	in := media.Tone(440, 100*time.Millisecond, 0.9)
	in.Samples[3] = -32768
	in.Samples[4] = 32767
	b := media.L16.Encode(in.Frame(0))
	if len(b) != media.L16FrameBytes {
		t.Fatalf("l16 frame of %d bytes, want %d", len(b), media.L16FrameBytes)
	}
	if b[6] != 0x80 || b[7] != 0x00 || b[8] != 0x7F || b[9] != 0xFF {
		t.Errorf("l16 is not big-endian: % x", b[6:10])
	}
	out := throughCodec(t, media.L16, in)
	if len(out.Samples) != len(in.Samples) {
		t.Fatalf("%d samples out, %d in", len(out.Samples), len(in.Samples))
	}
	for i := range in.Samples {
		if in.Samples[i] != out.Samples[i] {
			t.Fatalf("sample %d: %d became %d", i, in.Samples[i], out.Samples[i])
		}
	}
}

func TestCodecErrors(t *testing.T) {
	t.Parallel()
	for _, name := range media.AudioCodecNames() {
		c, err := media.CodecByName(name)
		if err != nil || c.Name() != name {
			t.Fatalf("CodecByName(%q) = %v, %v", name, c, err)
		}
		for _, n := range []int{0, 1, 159, 161, 1919, 1921} {
			if _, err := c.Decode(make([]byte, n)); !errors.Is(err, media.ErrPayload) {
				t.Errorf("%s: decode of %d bytes: %v, want ErrPayload", name, n, err)
			}
		}
	}
	if _, err := media.CodecByName("opus"); !errors.Is(err, media.ErrUnknownCodec) {
		t.Errorf("CodecByName(opus) = %v, want ErrUnknownCodec", err)
	}
}
