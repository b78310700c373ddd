package media

import (
	"errors"
	"fmt"
)

// AudioCodec encodes and decodes 20 ms frames of 48 kHz mono audio.
// Implementations are stateless and safe for concurrent use.
type AudioCodec interface {
	// Name is the codec name carried in a media frame (spec 12.8).
	Name() string
	// Encode encodes one frame of FrameSamples samples; a shorter frame
	// is padded with silence, a longer one truncated.
	Encode(frame []int16) []byte
	// Decode decodes the payload of one frame into FrameSamples samples
	// at 48 kHz; a payload of the wrong size gives an error wrapping
	// ErrPayload.
	Decode(payload []byte) ([]int16, error)
}

// ErrUnknownCodec is wrapped by CodecByName's error for a name the package
// does not implement.
var ErrUnknownCodec = errors.New("media: unknown codec")

// ErrPayload is wrapped by the errors of the codecs' Decode for a payload
// that is not one frame of the codec.
var ErrPayload = errors.New("media: bad codec payload")

// CodecByName returns the audio codec of a codec name ("pcmu", "l16").
func CodecByName(name string) (AudioCodec, error) {
	switch name {
	case CodecPCMU:
		return PCMU, nil
	case CodecL16:
		return L16, nil
	}
	return nil, fmt.Errorf("%w %q (want one of %v)", ErrUnknownCodec, name, AudioCodecNames())
}

// AudioCodecNames lists the names CodecByName knows, the default first.
func AudioCodecNames() []string {
	return []string{CodecPCMU, CodecL16}
}
