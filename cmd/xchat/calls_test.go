package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/media"
)

// The calls of issue 15's "Must hold", end to end with the binaries and
// two federated homeservers each: a one-to-one call across domains, a
// group call of three members on two domains, and a callee with two
// devices. They run in parallel; the binaries are built once.
func TestCalls(t *testing.T) {
	t.Parallel()
	xchat, xchatd := buildBinaries(t)
	t.Run("OneToOne", func(t *testing.T) { t.Parallel(); testCallOneToOne(t, xchat, xchatd) })
	t.Run("Group", func(t *testing.T) { t.Parallel(); testCallGroup(t, xchat, xchatd) })
	t.Run("TwoDevices", func(t *testing.T) { t.Parallel(); testCallTwoDevices(t, xchat, xchatd) })
}

// callSummary is the last line of a call command's --json output.
type callSummary struct {
	Event               string   `json:"event"`
	CallID              string   `json:"call_id"`
	DurationMS          int64    `json:"duration_ms"`
	AudioFramesSent     uint64   `json:"audio_frames_sent"`
	AudioFramesReceived uint64   `json:"audio_frames_received"`
	VideoFramesSent     uint64   `json:"video_frames_sent"`
	VideoFramesReceived uint64   `json:"video_frames_received"`
	Lost                uint64   `json:"lost"`
	Participants        int      `json:"participants"`
	Peers               []string `json:"peers"`
	RTT                 *float64 `json:"rtt_ms_p50"`
	Recording           string   `json:"recording"`
}

// callEventLine is any other line of a call command's or recv's --json
// output about a call.
type callEventLine struct {
	Event  string `json:"event"`
	Call   string `json:"call"`
	From   string `json:"from"`
	Device uint32 `json:"device"`
}

// proc is a running xchat command whose stdout is read line by line.
type proc struct {
	args   string
	cmd    *exec.Cmd
	stderr bytes.Buffer
	lines  chan string // every stdout line, as it comes
	mu     sync.Mutex
	out    []string
	done   chan struct{}
	err    error
}

// start starts xchat args in the federation's directory; the process is
// killed when the test ends.
func (f *federation) start(t *testing.T, args ...string) *proc {
	t.Helper()
	p := &proc{args: strings.Join(args, " "), lines: make(chan string, 1<<12), done: make(chan struct{})}
	p.cmd = exec.Command(f.xchat, args...)
	p.cmd.Dir = f.dir
	p.cmd.Stderr = &p.stderr
	out, err := p.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
			p.lines <- sc.Text()
		}
		p.err = p.cmd.Wait()
		close(p.lines)
		close(p.done)
	}()
	t.Cleanup(func() {
		p.cmd.Process.Kill()
		<-p.done
	})
	return p
}

// wait waits for the process to exit 0 and returns its stdout lines.
func (p *proc) wait(t *testing.T, d time.Duration) []string {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(d):
		p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("xchat %s did not end within %s; stdout %q; stderr %s", p.args, d, p.stdout(), p.stderr.String())
	}
	if p.err != nil {
		t.Fatalf("xchat %s: %v; stdout %q; stderr %s", p.args, p.err, p.stdout(), p.stderr.String())
	}
	return p.stdout()
}

func (p *proc) stdout() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.out...)
}

// waitEvent reads the process's lines until a JSON line with this event
// and returns it; it fails the test after d or when the process ends.
func (p *proc) waitEvent(t *testing.T, event string, d time.Duration) callEventLine {
	t.Helper()
	deadline := time.After(d)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				t.Fatalf("xchat %s ended (%v) without a %q line; stdout %q; stderr %s", p.args, p.err, event, p.stdout(), p.stderr.String())
			}
			var e callEventLine
			if json.Unmarshal([]byte(l), &e) == nil && e.Event == event {
				return e
			}
		case <-deadline:
			t.Fatalf("xchat %s printed no %q line within %s; stdout %q; stderr %s", p.args, event, d, p.stdout(), p.stderr.String())
		}
	}
}

// summaryOf parses the last line of a call command's --json output.
func summaryOf(t *testing.T, who string, lines []string) callSummary {
	t.Helper()
	if len(lines) == 0 {
		t.Fatalf("%s printed nothing", who)
	}
	var s callSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil || s.Event != "summary" {
		t.Fatalf("%s: last line %q is not a summary (%v)", who, lines[len(lines)-1], err)
	}
	for _, l := range lines[:len(lines)-1] {
		if !json.Valid([]byte(l)) {
			t.Errorf("%s: line %q is not JSON", who, l)
		}
	}
	t.Logf("%s: %s", who, lines[len(lines)-1])
	return s
}

// users registers profile=address pairs on their domains' servers.
func (f *federation) users(t *testing.T, addrs ...string) {
	t.Helper()
	for _, a := range addrs {
		user, domain, _ := strings.Cut(a, "@")
		f.run(t, f.xchat, "--profile", user, "register", a, "--server", f.addrs[domain], "--ca", "CA/ca.pem")
	}
}

// tone writes a WAV file of a second of a tone at freq.
func (f *federation) tone(t *testing.T, name string, freq float64) string {
	t.Helper()
	if err := media.WriteWAVFile(filepath.Join(f.dir, name), media.Tone(freq, time.Second, 0.4)); err != nil {
		t.Fatal(err)
	}
	return name
}

// checkRecording checks that a recording holds the tones heard and not
// the tone own.
func (f *federation) checkRecording(t *testing.T, name string, own float64, heard ...float64) {
	t.Helper()
	pcm, err := media.ReadWAVFile(filepath.Join(f.dir, name))
	if err != nil {
		t.Fatalf("recording %s: %v", name, err)
	}
	levels := fmt.Sprintf("%s (%s):", name, pcm.Duration())
	var minHeard float64 = 1
	for _, h := range heard {
		l := media.Level(pcm.Samples, pcm.Rate, h)
		levels += fmt.Sprintf(" %.0f Hz %.3f", h, l)
		minHeard = min(minHeard, l)
	}
	ownLevel := media.Level(pcm.Samples, pcm.Rate, own)
	levels += fmt.Sprintf("; own %.0f Hz %.3f", own, ownLevel)
	t.Log(levels)
	// Each tone is sent at 0.4 of full scale; a participant heard for
	// half the recording still shows at about 0.2.
	if minHeard < 0.05 || ownLevel > minHeard/10 {
		t.Errorf("recording %s does not hold the others' tones without its own: %s", name, levels)
	}
}

// video is the test pattern of the call tests: small, at 30 frames/s.
const video = "test:160x120@30"

// Alice on a.test calls Bob on b.test for 10 s, each sending a different
// tone and the video test pattern: each recording holds the other's tone
// and not its own, and each received at least 90% of the other's video
// frames.
func testCallOneToOne(t *testing.T, xchat, xchatd string) {
	f := startFederationWith(t, xchat, xchatd)
	f.users(t, "alice@a.test", "bob@b.test")
	f.run(t, f.xchat, "--profile", "alice", "send", "bob@b.test", "shall we talk?")
	f.run(t, f.xchat, "--profile", "bob", "recv", "--wait", "300ms")

	bob := f.start(t, "--profile", "bob", "call", "answer", "--wait", "60s", "--audio", f.tone(t, "bob.wav", 1000),
		"--video", video, "--record", "bob-rec.wav", "--json")
	alice := f.start(t, "--profile", "alice", "call", "start", "bob@b.test", "--audio", f.tone(t, "alice.wav", 440),
		"--video", video, "--record", "alice-rec.wav", "--duration", "10s", "--json")
	as := summaryOf(t, "alice", alice.wait(t, 90*time.Second))
	bs := summaryOf(t, "bob", bob.wait(t, 30*time.Second))

	if as.CallID == "" || as.CallID != bs.CallID {
		t.Errorf("call ids %q and %q", as.CallID, bs.CallID)
	}
	if as.DurationMS < 9000 || as.Participants != 2 || bs.Participants != 2 ||
		strings.Join(as.Peers, ",") != "bob@b.test" || strings.Join(bs.Peers, ",") != "alice@a.test" {
		t.Errorf("alice %+v, bob %+v", as, bs)
	}
	for _, c := range []struct {
		who          string
		got, of      uint64
		audio, audOf uint64
	}{{"alice", as.VideoFramesReceived, bs.VideoFramesSent, as.AudioFramesReceived, bs.AudioFramesSent},
		{"bob", bs.VideoFramesReceived, as.VideoFramesSent, bs.AudioFramesReceived, as.AudioFramesSent}} {
		if c.of < 150 || c.got*10 < c.of*9 {
			t.Errorf("%s received %d of the %d video frames sent to it", c.who, c.got, c.of)
		}
		if c.audOf < 250 || c.audio*10 < c.audOf*8 {
			t.Errorf("%s received %d of the %d audio frames sent to it", c.who, c.audio, c.audOf)
		}
	}
	if as.RTT == nil || bs.RTT == nil {
		t.Errorf("no round-trip time: alice %v, bob %v", as.RTT, bs.RTT)
	}
	f.checkRecording(t, "alice-rec.wav", 440, 1000)
	f.checkRecording(t, "bob-rec.wav", 1000, 440)

	// Bob's recv shows nothing of the call twice; alice's shows the call
	// she made as nothing new.
	out := f.run(t, f.xchat, "--profile", "bob", "recv", "--json", "--wait", "300ms")
	if strings.Contains(out, `"event":"incoming"`) {
		t.Errorf("bob's recv after the call shows it ringing: %s", out)
	}

	// A call that alice cancels (Ctrl-C) while it rings is a missed call
	// in bob's recv.
	alice = f.start(t, "--profile", "alice", "call", "start", "bob@b.test", "--json")
	missed := alice.waitEvent(t, "started", 60*time.Second)
	alice.cmd.Process.Signal(os.Interrupt)
	<-alice.done
	if code := alice.cmd.ProcessState.ExitCode(); code != 1 || !strings.Contains(alice.stderr.String(), "interrupted before the call was answered") {
		t.Errorf("alice's cancelled call: exit %d, stderr %q", code, alice.stderr.String())
	}
	out = f.run(t, f.xchat, "--profile", "bob", "recv", "--wait", "1s")
	if !regexp.MustCompile(`(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d missed call from alice@a.test \(audio\)$`).MatchString(out) {
		t.Errorf("bob's recv does not show the missed call %s: %q", missed.Call, out)
	}
	// Shown once.
	if out := f.run(t, f.xchat, "--profile", "bob", "recv", "--wait", "300ms"); strings.Contains(out, "call") {
		t.Errorf("bob's next recv shows a call again: %q", out)
	}
}

// A group call of three members on two domains: each recording holds the
// two other tones.
func testCallGroup(t *testing.T, xchat, xchatd string) {
	f := startFederationWith(t, xchat, xchatd)
	f.users(t, "alice@a.test", "bob@b.test", "carol@a.test")
	gid := strings.TrimSpace(f.run(t, f.xchat, "--profile", "alice", "group", "create", "trio", "bob@b.test", "carol@a.test"))
	tones := map[string]float64{"alice": 600, "bob": 1100, "carol": 1700}
	join := func(user string) *proc {
		return f.start(t, "--profile", user, "call", "join", "--group", gid, "--wait", "60s", "--duration", "8s",
			"--audio", f.tone(t, user+".wav", tones[user]), "--video", video, "--record", user+"-rec.wav", "--json")
	}
	bob, carol := join("bob"), join("carol")
	alice := f.start(t, "--profile", "alice", "call", "start", "--group", gid, "--duration", "8s",
		"--audio", f.tone(t, "alice.wav", tones["alice"]), "--video", video, "--record", "alice-rec.wav", "--json")
	sums := map[string]callSummary{}
	for user, p := range map[string]*proc{"alice": alice, "bob": bob, "carol": carol} {
		sums[user] = summaryOf(t, user, p.wait(t, 90*time.Second))
	}
	for user, s := range sums {
		if s.CallID != sums["alice"].CallID || s.Participants != 3 || len(s.Peers) != 2 || s.AudioFramesReceived == 0 || s.VideoFramesReceived == 0 {
			t.Errorf("%s: %+v", user, s)
		}
		var heard []float64
		for other, freq := range tones {
			if other != user {
				heard = append(heard, freq)
			}
		}
		f.checkRecording(t, user+"-rec.wav", tones[user], heard...)
	}
}

// Bob with two devices: both ring, one answers, the other stops ringing
// (its recv shows the call answered elsewhere).
func testCallTwoDevices(t *testing.T, xchat, xchatd string) {
	f := startFederationWith(t, xchat, xchatd)
	f.users(t, "alice@a.test", "bob@b.test")
	code := strings.TrimSpace(f.run(t, f.xchat, "--profile", "bob", "device", "link", "--wait", "0"))
	f.run(t, f.xchat, "--profile", "bob2", "register", "--link", code, "--server", f.addrs["b.test"], "--ca", "CA/ca.pem")
	if out := f.run(t, f.xchat, "--profile", "bob", "recv", "--wait", "300ms"); !strings.Contains(out, "linked device 2") {
		t.Fatalf("bob's recv after the link: %q", out)
	}
	f.run(t, f.xchat, "--profile", "alice", "send", "bob@b.test", "two phones?")
	f.run(t, f.xchat, "--profile", "bob2", "recv", "--wait", "300ms")

	phone2 := f.start(t, "--profile", "bob2", "recv", "--json", "--wait", "60s")
	bob := f.start(t, "--profile", "bob", "call", "answer", "--wait", "60s", "--duration", "2s", "--json")
	alice := f.start(t, "--profile", "alice", "call", "start", "bob@b.test", "--audio", f.tone(t, "alice.wav", 440), "--json")

	in1 := bob.waitEvent(t, "incoming", 60*time.Second)
	in2 := phone2.waitEvent(t, "incoming", 60*time.Second)
	if in1.Call == "" || in1.Call != in2.Call || in1.From != "alice@a.test" {
		t.Fatalf("bob's devices rang with %+v and %+v", in1, in2)
	}
	elsewhere := phone2.waitEvent(t, "answered_elsewhere", 60*time.Second)
	if elsewhere.Call != in1.Call {
		t.Errorf("device 2 stopped ringing for call %s, it rang for %s", elsewhere.Call, in1.Call)
	}
	phone2.cmd.Process.Signal(os.Interrupt)
	bs := summaryOf(t, "bob", bob.wait(t, 60*time.Second))
	as := summaryOf(t, "alice", alice.wait(t, 60*time.Second))
	if bs.CallID != in1.Call || as.CallID != in1.Call || bs.AudioFramesReceived == 0 {
		t.Errorf("alice %+v, bob %+v", as, bs)
	}
}
