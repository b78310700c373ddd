package media

import (
	"fmt"
	"math"
)

// PCMUFrameBytes is the size of one 20 ms pcmu frame: 160 samples at 8 kHz.
const PCMUFrameBytes = 160

// pcmuDecimation is the ratio of Rate to the 8 kHz rate of pcmu.
const pcmuDecimation = FrameSamples / PCMUFrameBytes

// PCMUCodec is the "pcmu" codec: G.711 μ-law at 8,000 samples/s. Encode
// low-passes and decimates 48 kHz to 8 kHz (the mean of each 6 samples);
// Decode interpolates linearly back to 48 kHz. Each frame is coded on its
// own.
type PCMUCodec struct{}

// PCMU is the "pcmu" codec.
var PCMU PCMUCodec

// Name returns "pcmu".
func (PCMUCodec) Name() string { return CodecPCMU }

// Encode decimates the frame to 8 kHz and μ-law encodes it into
// PCMUFrameBytes bytes.
func (PCMUCodec) Encode(frame []int16) []byte {
	frame = fitFrame(frame)
	b := make([]byte, PCMUFrameBytes)
	for i := range b {
		sum := 0
		for _, s := range frame[i*pcmuDecimation : (i+1)*pcmuDecimation] {
			sum += int(s)
		}
		b[i] = ulawEncode(roundDiv(sum, pcmuDecimation))
	}
	return b
}

// Decode μ-law decodes PCMUFrameBytes bytes and interpolates them to
// FrameSamples samples at 48 kHz.
func (PCMUCodec) Decode(payload []byte) ([]int16, error) {
	if len(payload) != PCMUFrameBytes {
		return nil, fmt.Errorf("%w: pcmu payload of %d bytes, want %d", ErrPayload, len(payload), PCMUFrameBytes)
	}
	var lin [PCMUFrameBytes]float64
	for i, u := range payload {
		lin[i] = float64(ulawDecode(u))
	}
	out := make([]int16, FrameSamples)
	// 8 kHz sample i stands for the middle of its 6 input samples,
	// position 6i + 2.5 at 48 kHz; ends hold the first and last value.
	for t := range out {
		p := (float64(t) - (pcmuDecimation-1)/2.0) / pcmuDecimation
		var v float64
		switch {
		case p <= 0:
			v = lin[0]
		case p >= PCMUFrameBytes-1:
			v = lin[PCMUFrameBytes-1]
		default:
			i := int(p)
			f := p - float64(i)
			v = lin[i]*(1-f) + lin[i+1]*f
		}
		out[t] = int16(math.Round(v))
	}
	return out, nil
}

// roundDiv divides n by d (d > 0), rounding half away from zero.
func roundDiv(n, d int) int {
	if n < 0 {
		return -((-n + d/2) / d)
	}
	return (n + d/2) / d
}

// G.711 μ-law constants.
const (
	ulawBias = 0x84
	ulawClip = 32635
)

// ulawEncode encodes a linear sample as G.711 μ-law.
func ulawEncode(x int) byte {
	var sign byte
	if x < 0 {
		x = -x
		sign = 0x80
	}
	if x > ulawClip {
		x = ulawClip
	}
	x += ulawBias
	exp := 7
	for mask := 0x4000; x&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (x >> (exp + 3)) & 0x0F
	return ^(sign | byte(exp<<4) | byte(mant))
}

// ulawDecode decodes a G.711 μ-law byte to a linear sample.
func ulawDecode(u byte) int16 {
	u = ^u
	exp := int(u>>4) & 7
	mant := int(u & 0x0F)
	x := ((mant << 3) + ulawBias) << exp
	x -= ulawBias
	if u&0x80 != 0 {
		return int16(-x)
	}
	return int16(x)
}
