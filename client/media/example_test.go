package media_test

import (
	"fmt"
	"time"

	"github.com/xchat-im/xchat/client/media"
)

// A sender encodes its WAV frame by frame; a receiver decodes each frame,
// gives it to a playout buffer and records one Next per 20 ms tick.
func Example() {
	send := media.Tone(440, 200*time.Millisecond, 0.5) // or media.ReadWAVFile(path)
	codec, _ := media.CodecByName(media.CodecPCMU)
	playout := media.NewPlayout(media.PlayoutDelay)
	rec := &media.PCM{Rate: media.Rate}
	for i := range send.FrameCount() + 3 {
		if i < send.FrameCount() {
			payload := codec.Encode(send.Frame(i)) // MediaFrame{Kind: audio, Codec: codec.Name(), Timestamp: i*20000 µs, Payload}
			samples, err := codec.Decode(payload)
			if err == nil {
				playout.Add(1, time.Duration(i)*media.FrameDuration, samples)
			}
		}
		rec.Append(playout.Next())
	}
	tone := media.DB(media.Level(rec.Samples, media.Rate, 440))
	other := media.DB(media.Level(rec.Samples, media.Rate, 1000))
	fmt.Printf("recorded %v, 440 Hz above -10 dBFS: %v, 1000 Hz below -60 dBFS: %v, lost %d\n",
		rec.Duration(), tone > -10, other < -60, playout.Stats()[1].Lost)
	// Output: recorded 260ms, 440 Hz above -10 dBFS: true, 1000 Hz below -60 dBFS: true, lost 0
}
