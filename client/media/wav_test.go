package media_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/media"
)

// wavBytes writes p as WAV.
func wavBytes(t testing.TB, p *media.PCM) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := media.WriteWAV(&b, p); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// chunk makes a RIFF chunk, padded to an even size.
func chunk(id string, body []byte) []byte {
	b := append([]byte(id), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(body)))
	b = append(b, body...)
	if len(body)%2 == 1 {
		b = append(b, 0)
	}
	return b
}

// riff wraps chunks in a RIFF/WAVE header.
func riff(chunks ...[]byte) []byte {
	body := []byte("WAVE")
	for _, c := range chunks {
		body = append(body, c...)
	}
	b := append([]byte("RIFF"), 0, 0, 0, 0)
	binary.LittleEndian.PutUint32(b[4:], uint32(len(body)))
	return append(b, body...)
}

// fmtChunk is a plain fmt chunk body.
func fmtChunk(format, channels, rate, bits int) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b[0:], uint16(format))
	binary.LittleEndian.PutUint16(b[2:], uint16(channels))
	binary.LittleEndian.PutUint32(b[4:], uint32(rate))
	binary.LittleEndian.PutUint32(b[8:], uint32(rate*channels*bits/8))
	binary.LittleEndian.PutUint16(b[12:], uint16(channels*bits/8))
	binary.LittleEndian.PutUint16(b[14:], uint16(bits))
	return b
}

// extensibleFmt is a WAVE_FORMAT_EXTENSIBLE fmt chunk body of sub-format tag.
func extensibleFmt(tag int) []byte {
	b := fmtChunk(0xFFFE, 1, media.Rate, 16)
	b = binary.LittleEndian.AppendUint16(b, 22)
	b = binary.LittleEndian.AppendUint16(b, 16)
	b = binary.LittleEndian.AppendUint32(b, 4)
	b = binary.LittleEndian.AppendUint16(b, uint16(tag))
	return append(b, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71)
}

func pcmData(s []int16) []byte {
	b := make([]byte, 0, 2*len(s))
	for _, x := range s {
		b = binary.LittleEndian.AppendUint16(b, uint16(x))
	}
	return b
}

func TestWAVRoundTrip(t *testing.T) {
	t.Parallel()
	in := media.Tone(440, 250*time.Millisecond, 0.7)
	in.Samples[0], in.Samples[1] = -32768, 32767
	b := wavBytes(t, in)
	if len(b) != 44+2*len(in.Samples) || string(b[:4]) != "RIFF" || string(b[8:16]) != "WAVEfmt " {
		t.Fatalf("WAV header % x", b[:16])
	}
	out, err := media.ReadWAV(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	if out.Rate != media.Rate || !slices.Equal(out.Samples, in.Samples) {
		t.Fatalf("round trip changed the audio: rate %d, %d samples", out.Rate, len(out.Samples))
	}
	if out.Duration() != 250*time.Millisecond || out.FrameCount() != 13 {
		t.Errorf("duration %v, %d frames", out.Duration(), out.FrameCount())
	}
	if f := out.Frame(12); len(f) != media.FrameSamples || f[media.FrameSamples-1] != 0 || f[0] != in.Samples[12*media.FrameSamples] {
		t.Errorf("last frame not silence-padded")
	}
	if out.Frame(13) != nil || out.Frame(-1) != nil {
		t.Errorf("frame out of range is not nil")
	}

	path := filepath.Join(t.TempDir(), "tone.wav")
	if err := media.WriteWAVFile(path, in); err != nil {
		t.Fatal(err)
	}
	if out, err = media.ReadWAVFile(path); err != nil || !slices.Equal(out.Samples, in.Samples) {
		t.Fatalf("file round trip: %v", err)
	}
	if _, err := media.ReadWAVFile(filepath.Join(t.TempDir(), "missing.wav")); err == nil {
		t.Error("missing file read")
	}
}

func TestWAVToleratesOtherChunks(t *testing.T) {
	t.Parallel()
	samples := media.Tone(1000, 20*time.Millisecond, 0.5).Samples
	list := chunk("LIST", []byte("INFOISFT\x05\x00\x00\x00xchat\x00")) // odd-sized: padded
	for name, b := range map[string][]byte{
		"LIST before fmt": riff(list, chunk("fmt ", fmtChunk(1, 1, media.Rate, 16)), chunk("data", pcmData(samples))),
		"LIST and fact between": riff(chunk("fmt ", fmtChunk(1, 1, media.Rate, 16)), list, chunk("fact", []byte{1, 2, 3, 4}),
			chunk("data", pcmData(samples))),
		"chunk after data": riff(chunk("fmt ", fmtChunk(1, 1, media.Rate, 16)), chunk("data", pcmData(samples)), list),
		"extensible PCM":   riff(chunk("fmt ", extensibleFmt(1)), chunk("data", pcmData(samples))),
		"fmt with cbSize":  riff(chunk("fmt ", append(fmtChunk(1, 1, media.Rate, 16), 0, 0)), chunk("data", pcmData(samples))),
		"streaming size": func() []byte {
			b := riff(chunk("fmt ", fmtChunk(1, 1, media.Rate, 16)), chunk("data", pcmData(samples)))
			binary.LittleEndian.PutUint32(b[40:], 0xFFFFFFFF)
			return b
		}(),
	} {
		p, err := media.ReadWAV(bytes.NewReader(b))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !slices.Equal(p.Samples, samples) {
			t.Errorf("%s: %d samples read, want %d", name, len(p.Samples), len(samples))
		}
	}
}

func TestWAVRejects(t *testing.T) {
	t.Parallel()
	data := chunk("data", pcmData(make([]int16, 100)))
	for name, tc := range map[string]struct {
		b    []byte
		want media.FormatError // zero: ErrWAV
	}{
		"stereo":           {b: riff(chunk("fmt ", fmtChunk(1, 2, media.Rate, 16)), data), want: media.FormatError{Format: 1, Channels: 2, Rate: 48000, Bits: 16}},
		"44.1 kHz":         {b: riff(chunk("fmt ", fmtChunk(1, 1, 44100, 16)), data), want: media.FormatError{Format: 1, Channels: 1, Rate: 44100, Bits: 16}},
		"8-bit":            {b: riff(chunk("fmt ", fmtChunk(1, 1, media.Rate, 8)), data), want: media.FormatError{Format: 1, Channels: 1, Rate: 48000, Bits: 8}},
		"float":            {b: riff(chunk("fmt ", fmtChunk(3, 1, media.Rate, 32)), data), want: media.FormatError{Format: 3, Channels: 1, Rate: 48000, Bits: 32}},
		"extensible mulaw": {b: riff(chunk("fmt ", extensibleFmt(7)), data), want: media.FormatError{Format: 7, Channels: 1, Rate: 48000, Bits: 16}},
		"empty":            {b: nil},
		"not RIFF":         {b: []byte("RIFX\x00\x00\x00\x00WAVEfmt ")},
		"not WAVE":         {b: []byte("RIFF\x00\x00\x00\x00AVI fmt ")},
		"no data":          {b: riff(chunk("fmt ", fmtChunk(1, 1, media.Rate, 16)))},
		"data before fmt":  {b: riff(data, chunk("fmt ", fmtChunk(1, 1, media.Rate, 16)))},
		"short fmt":        {b: riff(chunk("fmt ", fmtChunk(1, 1, media.Rate, 16)[:14]), data)},
		"truncated fmt":    {b: riff(chunk("fmt ", fmtChunk(1, 1, media.Rate, 16)))[:30]},
		"truncated LIST":   {b: riff(chunk("fmt ", fmtChunk(1, 1, media.Rate, 16)), chunk("LIST", make([]byte, 100)))[:60]},
		"bad block align": {b: func() []byte {
			f := fmtChunk(1, 1, media.Rate, 16)
			f[12] = 4
			return riff(chunk("fmt ", f), data)
		}()},
	} {
		_, err := media.ReadWAV(bytes.NewReader(tc.b))
		var fe *media.FormatError
		switch {
		case err == nil:
			t.Errorf("%s: read", name)
		case tc.want == (media.FormatError{}):
			if !errors.Is(err, media.ErrWAV) || errors.Is(err, media.ErrWAVFormat) {
				t.Errorf("%s: %v, want ErrWAV", name, err)
			}
		case !errors.Is(err, media.ErrWAVFormat) || !errors.As(err, &fe):
			t.Errorf("%s: %v, want a *FormatError", name, err)
		case *fe != tc.want:
			t.Errorf("%s: %+v, want %+v", name, *fe, tc.want)
		default:
			t.Logf("%s: %v", name, err)
		}
	}
}
