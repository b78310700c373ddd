package media

import (
	"encoding/binary"
	"fmt"
)

// L16FrameBytes is the size of one 20 ms l16 frame: 960 samples of 2 bytes.
const L16FrameBytes = 2 * FrameSamples

// L16Codec is the "l16" codec: 16-bit signed big-endian PCM at 48 kHz.
type L16Codec struct{}

// L16 is the "l16" codec.
var L16 L16Codec

// Name returns "l16".
func (L16Codec) Name() string { return CodecL16 }

// Encode writes the frame's samples big-endian.
func (L16Codec) Encode(frame []int16) []byte {
	frame = fitFrame(frame)
	b := make([]byte, L16FrameBytes)
	for i, s := range frame {
		binary.BigEndian.PutUint16(b[2*i:], uint16(s))
	}
	return b
}

// Decode reads L16FrameBytes bytes of big-endian samples.
func (L16Codec) Decode(payload []byte) ([]int16, error) {
	if len(payload) != L16FrameBytes {
		return nil, fmt.Errorf("%w: l16 payload of %d bytes, want %d", ErrPayload, len(payload), L16FrameBytes)
	}
	s := make([]int16, FrameSamples)
	for i := range s {
		s[i] = int16(binary.BigEndian.Uint16(payload[2*i:]))
	}
	return s, nil
}
