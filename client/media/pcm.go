package media

import "time"

// PCM is mono 16-bit linear audio at Rate samples per second.
type PCM struct {
	Rate    int
	Samples []int16
}

// Duration is the play time of the samples.
func (p *PCM) Duration() time.Duration {
	r := p.Rate
	if r <= 0 {
		r = Rate
	}
	return time.Duration(len(p.Samples)) * time.Second / time.Duration(r)
}

// FrameCount is the number of 20 ms frames of FrameSamples samples the
// audio splits into; the last may be partial.
func (p *PCM) FrameCount() int {
	return (len(p.Samples) + FrameSamples - 1) / FrameSamples
}

// Frame returns a copy of frame i: FrameSamples samples, the last frame
// padded with silence. It returns nil when i is out of range.
func (p *PCM) Frame(i int) []int16 {
	if i < 0 || i >= p.FrameCount() {
		return nil
	}
	f := make([]int16, FrameSamples)
	copy(f, p.Samples[i*FrameSamples:])
	return f
}

// Append adds samples at the end, for example the output of Playout.Next
// to record a call.
func (p *PCM) Append(samples []int16) {
	p.Samples = append(p.Samples, samples...)
}

// fitFrame returns frame as exactly FrameSamples samples: shorter frames
// are padded with silence, longer ones truncated.
func fitFrame(frame []int16) []int16 {
	if len(frame) == FrameSamples {
		return frame
	}
	f := make([]int16, FrameSamples)
	copy(f, frame)
	return f
}
