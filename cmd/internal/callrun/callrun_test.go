package callrun

import (
	"bytes"
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/media"
	"github.com/xchat-im/xchat/spec/wire"
)

// pipe is one end of an in-memory call: what it sends arrives at peer.
type pipe struct {
	source uint32
	from   string
	in     chan Frame
	peer   *pipe
	done   chan struct{}
	mu     sync.Mutex
	sent   int
}

func newPipes() (*pipe, *pipe) {
	a := &pipe{source: 1, from: "alice@a.test", in: make(chan Frame, 4096), done: make(chan struct{})}
	b := &pipe{source: 2, from: "bob@b.test", in: make(chan Frame, 4096), done: make(chan struct{})}
	a.peer, b.peer = b, a
	return a, b
}

func (p *pipe) Send(f *wire.MediaFrame) error {
	if err := f.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	p.sent++
	p.mu.Unlock()
	c := *f
	c.Payload = bytes.Clone(f.Payload)
	p.peer.in <- Frame{Source: p.source, From: p.from, Frame: &c, Arrived: time.Now()}
	return nil
}

func (p *pipe) Frames() <-chan Frame  { return p.in }
func (p *pipe) Done() <-chan struct{} { return p.done }
func (p *pipe) Stats() Stats          { return Stats{} }
func (p *pipe) Source() uint32        { return p.source }

// Two runs joined by pipes, each sending its own tone and video: each
// recording holds the other's tone and not its own, the counts add up
// and round trips are measured with echoes.
func TestRunPipes(t *testing.T) {
	t.Parallel()
	a, b := newPipes()
	const d = 1500 * time.Millisecond
	var recA, recB bytes.Buffer
	video := Video{W: 64, H: 48, FPS: 20}
	var wg sync.WaitGroup
	var sumA, sumB *Summary
	var errA, errB error
	wg.Add(2)
	go func() {
		defer wg.Done()
		sumA, errA = Run(context.Background(), a, Options{Audio: media.Tone(440, time.Second, 0.5), Video: &video, Record: &recA, Duration: d})
	}()
	go func() {
		defer wg.Done()
		sumB, errB = Run(context.Background(), b, Options{Audio: media.Tone(1000, 700*time.Millisecond, 0.5), Codec: media.L16,
			Video: &video, Record: &recB, Duration: d})
	}()
	wg.Wait()
	if errA != nil || errB != nil {
		t.Fatal(errA, errB)
	}
	for _, c := range []struct {
		name       string
		s, other   *Summary
		rec        *bytes.Buffer
		own, heard float64
	}{{"alice", sumA, sumB, &recA, 440, 1000}, {"bob", sumB, sumA, &recB, 1000, 440}} {
		s := c.s
		t.Logf("%s: %+v rtt %v", c.name, *s, s.RTTp50)
		// Generous bounds: the machine may be loaded.
		if s.AudioFramesSent < 30 || s.VideoFramesSent < 10 {
			t.Errorf("%s sent %d audio and %d video frames in %s", c.name, s.AudioFramesSent, s.VideoFramesSent, d)
		}
		if s.Participants != 2 || len(s.Peers) != 1 || s.RTTp50 == nil || s.Lost != 0 {
			t.Errorf("%s: participants %d, peers %v, rtt %v, lost %d", c.name, s.Participants, s.Peers, s.RTTp50, s.Lost)
		}
		pcm, err := media.ReadWAV(bytes.NewReader(c.rec.Bytes()))
		if err != nil {
			t.Fatalf("%s's recording: %v", c.name, err)
		}
		if got := time.Duration(len(pcm.Samples)) * time.Second / 48000; got < d/2 || got > d+time.Second {
			t.Errorf("%s's recording lasts %s, the call %s", c.name, got, d)
		}
		heard, own := media.Level(pcm.Samples, 48000, c.heard), media.Level(pcm.Samples, 48000, c.own)
		if heard < 0.1 || own > heard/10 {
			t.Errorf("%s's recording: level %.3f at %.0f Hz (the other's tone), %.3f at %.0f Hz (its own)", c.name, heard, c.heard, own, c.own)
		}
	}
	if sumB.AudioFramesReceived == 0 || sumB.AudioFramesReceived > sumA.AudioFramesSent || sumB.VideoFramesReceived > sumA.VideoFramesSent {
		t.Errorf("bob received %d/%d audio and video of alice's %d/%d", sumB.AudioFramesReceived, sumB.VideoFramesReceived,
			sumA.AudioFramesSent, sumA.VideoFramesSent)
	}
	var text strings.Builder
	sumA.CallID = "00"
	if err := sumA.WriteText(&text); err != nil || !strings.Contains(text.String(), "with bob@b.test (2 participants)") {
		t.Errorf("summary text %q, %v", text.String(), err)
	}
}

// A frame whose payload does not match the test pattern, or whose audio
// does not decode, counts as lost; the call's end stops Run.
func TestRunLostAndDone(t *testing.T) {
	t.Parallel()
	a, _ := newPipes()
	a.in <- Frame{Source: 9, From: "x@a.test", Frame: &wire.MediaFrame{Kind: wire.KindVideo, Codec: "test", Payload: []byte("not a pattern")}}
	a.in <- Frame{Source: 9, From: "x@a.test", Frame: &wire.MediaFrame{Kind: wire.KindAudio, Codec: "pcmu", Payload: []byte{1, 2}}}
	a.in <- Frame{Source: 9, From: "x@a.test", Frame: &wire.MediaFrame{Kind: wire.KindAudio, Codec: "opus", Payload: []byte{1, 2}}}
	a.in <- Frame{Source: 9, From: "x@a.test", Frame: &wire.MediaFrame{Kind: wire.KindVideo, Codec: "test", Payload: media.TestPattern{W: 8, H: 8}.Frame(4)}}
	time.AfterFunc(300*time.Millisecond, func() { close(a.done) })
	s, err := Run(context.Background(), a, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if s.Lost != 3 || s.VideoFramesReceived != 1 || s.AudioFramesReceived != 0 || s.AudioFramesSent != 0 || s.Participants != 2 {
		t.Errorf("summary %+v", *s)
	}
}

func TestParseVideo(t *testing.T) {
	for in, want := range map[string]Video{"test": DefaultVideo, "test:160x120": {160, 120, 30}, "test:64x48@5": {64, 48, 5}} {
		if got, err := ParseVideo(in); err != nil || got != want {
			t.Errorf("ParseVideo(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "cam", "test:", "test:10", "test:0x10", "test:10x10@0", "test:10x10@61", "test:1000x1000", "test:axb"} {
		if _, err := ParseVideo(bad); err == nil {
			t.Errorf("ParseVideo(%q) accepted", bad)
		}
	}
}
