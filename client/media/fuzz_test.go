package media_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/media"
)

func FuzzReadWAV(f *testing.F) {
	samples := media.Tone(440, 5*time.Millisecond, 0.5).Samples
	good := wavBytes(f, &media.PCM{Rate: media.Rate, Samples: samples})
	f.Add(good)
	f.Add(good[:44])
	f.Add(good[:50])
	f.Add(good[:20])
	f.Add(riff(chunk("LIST", []byte("INFOx")), chunk("fmt ", fmtChunk(1, 1, media.Rate, 16)), chunk("data", pcmData(samples))))
	f.Add(riff(chunk("fmt ", extensibleFmt(1)), chunk("data", pcmData(samples))))
	f.Add(riff(chunk("fmt ", fmtChunk(1, 2, 44100, 16)), chunk("data", pcmData(samples))))
	f.Add(riff(chunk("data", pcmData(samples))))
	f.Add([]byte("RIFF\xff\xff\xff\xffWAVEfmt \xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := media.ReadWAV(bytes.NewReader(b))
		if err != nil {
			if !errors.Is(err, media.ErrWAV) && !errors.Is(err, media.ErrWAVFormat) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if p.Rate != media.Rate {
			t.Fatalf("rate %d", p.Rate)
		}
		again, err := media.ReadWAV(bytes.NewReader(wavBytes(t, p)))
		if err != nil || !slices.Equal(again.Samples, p.Samples) {
			t.Fatalf("rewritten WAV does not read back: %v", err)
		}
	})
}

func FuzzCodecDecode(f *testing.F) {
	tone := media.Tone(440, media.FrameDuration, 0.5).Samples
	f.Add(media.CodecPCMU, media.PCMU.Encode(tone))
	f.Add(media.CodecL16, media.L16.Encode(tone))
	f.Add(media.CodecPCMU, []byte{})
	f.Add(media.CodecL16, make([]byte, 1919))
	f.Add(media.CodecPCMU, bytes.Repeat([]byte{0x00, 0x80}, 80))
	f.Fuzz(func(t *testing.T, name string, payload []byte) {
		c, err := media.CodecByName(name)
		if err != nil {
			c = media.PCMU
			if len(payload) == media.L16FrameBytes {
				c = media.L16
			}
		}
		s, err := c.Decode(payload)
		if err != nil {
			if !errors.Is(err, media.ErrPayload) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if len(s) != media.FrameSamples {
			t.Fatalf("%s decoded %d samples", c.Name(), len(s))
		}
		enc := c.Encode(s)
		if c == media.L16 && !bytes.Equal(enc, payload) {
			t.Fatal("l16 does not round trip")
		}
		if _, err := c.Decode(enc); err != nil {
			t.Fatalf("re-encoded frame does not decode: %v", err)
		}
	})
}

func FuzzCheckTestPattern(f *testing.F) {
	for _, n := range []uint32{0, 1, 30, 251} {
		f.Add(media.TestPattern{W: 32, H: 20}.Frame(n))
	}
	f.Add(media.TestPattern{W: 0, H: 0}.Frame(5))
	f.Add([]byte{0, 32, 0, 20, 0, 0, 0, 1, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0, 1, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		n, key, err := media.CheckTestPattern(b)
		if err != nil {
			if !errors.Is(err, media.ErrTestPattern) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		w, h := int(b[0])<<8|int(b[1]), int(b[2])<<8|int(b[3])
		if !bytes.Equal(media.TestPattern{W: w, H: h}.Frame(n), b) || key != media.IsTestKeyFrame(n) {
			t.Fatalf("accepted a payload that is not frame %d", n)
		}
	})
}
