// Package callrun runs the media of one call for the xchat command: it
// sends a WAV file's audio in 20 ms frames and the video test pattern at
// its frame rate, plays the other participants' audio out through a
// jitter buffer into a recording, and sums up what was sent and received.
// It drives any Conn, so that tests can run it without a network.
package callrun

import (
	"context"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"

	"github.com/xchat-im/xchat/client/media"
	"github.com/xchat-im/xchat/spec/wire"
)

// Frame is a media frame received in a call.
type Frame struct {
	Source  uint32 // the sending device's source identifier
	From    string // its user's address
	Frame   *wire.MediaFrame
	Arrived time.Time
}

// Stats are the counters the call keeps itself.
type Stats struct {
	// Lost counts frames missing from the sources' sequences and frames
	// that did not decrypt.
	Lost uint64
	// Participants is the number of devices in the call, this one
	// included; 0 when the call does not know.
	Participants int
	// RTT are round-trip samples, when the call measures them.
	RTT []time.Duration
}

// Conn is the call that Run drives.
type Conn interface {
	// Send encrypts and sends one frame to the other participants.
	Send(f *wire.MediaFrame) error
	// Frames delivers the frames of the other participants.
	Frames() <-chan Frame
	// Done is closed when the call ended.
	Done() <-chan struct{}
	Stats() Stats
}

// Sourcer is a Conn that tells its own source identifier: Run then
// measures round-trip times with echoes (spec 12.8.3), unless the Conn
// reports samples of its own.
type Sourcer interface {
	Source() uint32
}

// Options say what a call sends and records.
type Options struct {
	// Audio is sent in 20 ms frames, in a loop; nil sends no audio. It
	// must be 48 kHz mono (media.ReadWAV reads only that).
	Audio *media.PCM
	// Codec encodes the audio; nil is PCMU.
	Codec media.AudioCodec
	// Video is the test pattern sent; nil sends no video.
	Video *Video
	// Record, when not nil, receives a WAV file of the mix of the other
	// participants' audio, one 20 ms playout tick after another, when the
	// call ends (the mix is kept in memory until then: 5.8 MB a minute).
	Record io.Writer
	// Duration ends the call after this long; 0 runs it until ctx is
	// done or the call ends.
	Duration time.Duration
}

// Run sends and receives the media of conn until the duration passed,
// ctx is done or the call ended, and returns the summary (without
// CallID, which Run does not know). It returns an error only when the
// options are unusable or the recording cannot be written.
func Run(ctx context.Context, conn Conn, o Options) (*Summary, error) {
	if o.Codec == nil {
		o.Codec = media.PCMU
	}
	if o.Audio != nil && (o.Audio.Rate != 48000 || len(o.Audio.Samples) == 0) {
		return nil, fmt.Errorf("audio of %d samples at %d Hz: want 48000 Hz and at least one sample", len(o.Audio.Samples), o.Audio.Rate)
	}
	if o.Duration > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, o.Duration)
		defer cancel()
	}
	r := &runner{o: o, conn: conn, start: time.Now(), heard: map[uint32]heard{}, peers: map[string]bool{},
		sources: map[uint32]bool{}}
	if s, ok := conn.(Sourcer); ok {
		r.echo, r.self = true, s.Source()
	}
	sctx, stopSending := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.send(sctx, conn.Done())
	}()
	recording := r.receive(ctx)
	stopSending()
	wg.Wait()
	s := r.summary()
	if o.Record != nil {
		pcm := &media.PCM{Rate: 48000, Samples: recording}
		if err := media.WriteWAV(o.Record, pcm); err != nil {
			return s, fmt.Errorf("recording: %w", err)
		}
		s.RecordedMS = int64(len(recording)) * 1000 / 48000
	}
	return s, nil
}

// heard is the newest frame of a source, for echoes.
type heard struct {
	ts      uint64    // its timestamp
	arrived time.Time // when it arrived
}

// runner is one Run.
type runner struct {
	o     Options
	conn  Conn
	start time.Time
	echo  bool   // measure round trips with echoes
	self  uint32 // this device's source, when echo

	mu         sync.Mutex
	heard      map[uint32]heard // by source, when echo
	order      []uint32         // sources heard, in order, for echoing each in turn
	next       int              // the index in order to echo next
	rtt        []time.Duration
	audioSent  uint64
	videoSent  uint64
	sendErrors uint64
	// Written by receive only.
	audioRecv, videoRecv, lost uint64
	peers                      map[string]bool
	sources                    map[uint32]bool
}

// send sends audio and video frames on their schedules until ctx is
// done or done is closed. A frame late by more than a few intervals (the
// machine was busy) is skipped rather than sent in a burst.
func (r *runner) send(ctx context.Context, done <-chan struct{}) {
	var audioN, videoN uint64
	videoEvery := time.Duration(0)
	var pattern media.TestPattern
	if r.o.Video != nil {
		videoEvery = time.Second / time.Duration(r.o.Video.FPS)
		pattern = media.TestPattern{W: r.o.Video.W, H: r.o.Video.H}
	}
	frame := make([]int16, media.FrameSamples)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		now := time.Since(r.start)
		if r.o.Audio != nil {
			for due := time.Duration(audioN) * media.FrameDuration; due <= now; due = time.Duration(audioN) * media.FrameDuration {
				if now-due > 5*media.FrameDuration {
					audioN++ // skipped
					continue
				}
				r.audioFrame(frame, audioN)
				r.sendFrame(&wire.MediaFrame{Kind: wire.KindAudio, Codec: r.o.Codec.Name(), Timestamp: uint64(due / time.Microsecond),
					Payload: r.o.Codec.Encode(frame)}, &r.audioSent)
				audioN++
			}
		}
		if r.o.Video != nil {
			for due := time.Duration(videoN) * videoEvery; due <= now; due = time.Duration(videoN) * videoEvery {
				if now-due > 3*videoEvery {
					videoN++
					continue
				}
				r.sendFrame(&wire.MediaFrame{Kind: wire.KindVideo, Codec: "test", Timestamp: uint64(due / time.Microsecond),
					Payload: pattern.Frame(uint32(videoN))}, &r.videoSent)
				videoN++
			}
		}
		next := time.Duration(1<<62 - 1)
		if r.o.Audio != nil {
			next = time.Duration(audioN) * media.FrameDuration
		}
		if r.o.Video != nil {
			next = min(next, time.Duration(videoN)*videoEvery)
		}
		timer.Reset(next - time.Since(r.start))
		select {
		case <-ctx.Done():
			return
		case <-done:
			return
		case <-timer.C:
		}
	}
}

// audioFrame fills frame with the n-th 20 ms of the audio, which loops.
func (r *runner) audioFrame(frame []int16, n uint64) {
	s := r.o.Audio.Samples
	off := int((n * uint64(len(frame))) % uint64(len(s)))
	for i := range frame {
		frame[i] = s[off]
		if off++; off == len(s) {
			off = 0
		}
	}
}

// sendFrame adds an echo when it measures round trips, sends f and
// counts it in sent.
func (r *runner) sendFrame(f *wire.MediaFrame, sent *uint64) {
	r.mu.Lock()
	if r.echo && len(r.order) > 0 {
		src := r.order[r.next%len(r.order)]
		r.next++
		h := r.heard[src]
		f.Echo = []uint64{uint64(src), h.ts, uint64(time.Since(h.arrived) / time.Microsecond)}
	}
	r.mu.Unlock()
	err := r.conn.Send(f)
	r.mu.Lock()
	if err != nil {
		r.sendErrors++
	} else {
		*sent++
	}
	r.mu.Unlock()
}

// receive takes the frames of the others, mixes their audio through the
// playout into the recording at every tick, and returns the recording
// when ctx is done or the call ended.
func (r *runner) receive(ctx context.Context) []int16 {
	playout := media.NewPlayout(media.PlayoutDelay)
	codecs := map[string]media.AudioCodec{}
	var recording []int16
	var ticks uint64
	tick := time.NewTimer(media.FrameDuration)
	defer tick.Stop()
	frames := r.conn.Frames()
	for {
		select {
		case <-ctx.Done():
			return recording
		case <-r.conn.Done():
			return recording
		case f, ok := <-frames:
			if !ok {
				frames = nil
				continue
			}
			r.took(f, playout, codecs)
		case <-tick.C:
			// Catch up on ticks missed while the machine was busy, so that
			// the recording is as long as the call.
			for elapsed := time.Since(r.start); time.Duration(ticks+1)*media.FrameDuration <= elapsed; ticks++ {
				if r.o.Record != nil {
					recording = append(recording, playout.Next()...)
				} else {
					playout.Next()
				}
			}
			tick.Reset(time.Duration(ticks+1)*media.FrameDuration - time.Since(r.start))
		}
	}
}

// took counts a received frame, gives its audio to the playout and
// takes a round-trip sample from its echo.
func (r *runner) took(f Frame, playout *media.Playout, codecs map[string]media.AudioCodec) {
	if f.Frame == nil {
		r.lost++
		return
	}
	r.peers[f.From] = true
	r.sources[f.Source] = true
	switch f.Frame.Kind {
	case wire.KindAudio:
		c, ok := codecs[f.Frame.Codec]
		if !ok {
			var err error
			if c, err = media.CodecByName(f.Frame.Codec); err != nil {
				c = nil
			}
			codecs[f.Frame.Codec] = c
		}
		if c == nil {
			r.lost++
			break
		}
		samples, err := c.Decode(f.Frame.Payload)
		if err != nil {
			r.lost++
			break
		}
		r.audioRecv++
		playout.Add(f.Source, time.Duration(f.Frame.Timestamp)*time.Microsecond, samples)
	case wire.KindVideo:
		if f.Frame.Codec == "test" {
			if _, _, err := media.CheckTestPattern(f.Frame.Payload); err != nil {
				r.lost++
				break
			}
		}
		r.videoRecv++
	}
	if !r.echo {
		return
	}
	arrived := f.Arrived
	if arrived.IsZero() {
		arrived = time.Now()
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.heard[f.Source]; !ok {
		r.order = append(r.order, f.Source)
	}
	r.heard[f.Source] = heard{ts: f.Frame.Timestamp, arrived: arrived}
	if e := f.Frame.Echo; len(e) == 3 && e[0] == uint64(r.self) {
		now := uint64(arrived.Sub(r.start) / time.Microsecond)
		if now >= e[1]+e[2] {
			r.rtt = append(r.rtt, time.Duration(now-e[1]-e[2])*time.Microsecond)
		}
	}
}

// summary sums up the run.
func (r *runner) summary() *Summary {
	st := r.conn.Stats()
	r.mu.Lock()
	defer r.mu.Unlock()
	s := &Summary{
		DurationMS:      time.Since(r.start).Milliseconds(),
		AudioFramesSent: r.audioSent, AudioFramesReceived: r.audioRecv,
		VideoFramesSent: r.videoSent, VideoFramesReceived: r.videoRecv,
		Lost: st.Lost + r.lost, SendErrors: r.sendErrors, Peers: []string{},
	}
	for p := range r.peers {
		s.Peers = append(s.Peers, p)
	}
	sort.Strings(s.Peers)
	s.Participants = max(st.Participants, len(r.sources)+1)
	rtt := st.RTT
	if len(rtt) == 0 {
		rtt = r.rtt
	}
	if len(rtt) > 0 {
		ms := float64(media.DurationPercentile(rtt, 50)) / float64(time.Millisecond)
		s.RTTp50 = &ms
	}
	return s
}
