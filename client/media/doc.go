// Package media holds the reference client's call media (spec section
// 12.8): 48 kHz mono 16-bit PCM read from and written to WAV files, the
// audio codecs "pcmu" (G.711 μ-law at 8 kHz) and "l16" (16-bit big-endian
// PCM at 48 kHz) in 20 ms frames, a playout (jitter) buffer that delays
// every source by 60 ms, fills missing frames with silence and mixes the
// sources, the synthetic "test" video pattern, and the measurements tests
// and benchmarks need: tone generation, the level of one frequency in a
// span of samples, and percentiles.
//
// The package is pure computation: it does no I/O beyond the readers and
// writers it is given and keeps no global mutable state. Every decoder of
// peer input (ReadWAV, the codecs' Decode, CheckTestPattern) returns a
// typed error for bad input and never panics.
package media

import "time"

// Audio framing of the reference client (spec section 12.8.1).
const (
	// Rate is the sample rate of the client's PCM: 48,000 samples/s.
	Rate = 48000
	// FrameDuration is the duration of one audio frame.
	FrameDuration = 20 * time.Millisecond
	// FrameSamples is the number of 48 kHz samples in one audio frame.
	FrameSamples = Rate / 50
	// PlayoutDelay is the delay the playout buffer adds to every source.
	PlayoutDelay = 60 * time.Millisecond
)

// Codec names of the reference client (spec section 12.8).
const (
	CodecPCMU = "pcmu"
	CodecL16  = "l16"
	CodecTest = "test"
)
