package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/client/media"
	"github.com/xchat-im/xchat/cmd/internal/callrun"
	"github.com/xchat-im/xchat/cmd/internal/clierr"
	"github.com/xchat-im/xchat/spec/wire"
)

// Calls: call start, answer and join. The commands connect, keep
// receiving (call signals arrive as messages) and hand the media to
// callrun.

// callFlags are the media flags of every call command.
type callFlags struct {
	audio, video, record, codec string
	duration                    time.Duration
	asJSON                      bool

	// Checked values, set by check.
	pcm *media.PCM
	vid *callrun.Video
	ac  media.AudioCodec
}

func (f *callFlags) add(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.audio, "audio", "", "send the audio of this WAV `FILE` (48 kHz mono 16-bit), in a loop")
	fl.StringVar(&f.video, "video", "", "send video: the test pattern, `test[:WxH[@FPS]]` (default size and rate "+callrun.DefaultVideo.String()+")")
	fl.StringVar(&f.record, "record", "", "record the other participants' audio to this WAV `FILE`")
	fl.DurationVar(&f.duration, "duration", 0, "hang up after this long (0: when the other side hangs up, or on Ctrl-C)")
	fl.StringVar(&f.codec, "codec", media.CodecPCMU, "audio `CODEC`: pcmu (G.711 μ-law, 8 kHz) or l16 (16-bit PCM, 48 kHz)")
	fl.BoolVar(&f.asJSON, "json", false, "print the call's events and summary as JSON objects, one per line")
}

// check checks the media flags and reads the audio file, before the
// command connects.
func (f *callFlags) check() error {
	if f.duration < 0 {
		return fmt.Errorf("--duration %s: want a duration of 0 or more", f.duration)
	}
	ac, err := media.CodecByName(f.codec)
	if err != nil {
		return fmt.Errorf("--codec %q: want %s", f.codec, strings.Join(media.AudioCodecNames(), " or "))
	}
	f.ac = ac
	if f.video != "" {
		v, err := callrun.ParseVideo(f.video)
		if err != nil {
			return fmt.Errorf("--%w", err)
		}
		f.vid = &v
	}
	if f.audio != "" {
		pcm, err := readWAV(f.audio)
		var fe *media.FormatError
		switch {
		case errors.As(err, &fe):
			return fmt.Errorf("--audio %s is %s: want 48 kHz mono 16-bit PCM (ffmpeg -i IN -ar 48000 -ac 1 -c:a pcm_s16le OUT.wav converts)", f.audio, formatOf(fe))
		case errors.Is(err, os.ErrNotExist):
			return fmt.Errorf("--audio %s: no such file", f.audio)
		case errors.Is(err, media.ErrWAV):
			return fmt.Errorf("--audio %s is not a WAV file (%w)", f.audio, err)
		case err != nil:
			return fmt.Errorf("--audio: %w", err)
		case len(pcm.Samples) == 0:
			return fmt.Errorf("--audio %s holds no sound", f.audio)
		}
		f.pcm = pcm
	}
	return nil
}

// readWAV reads a WAV file; its errors do not repeat the path.
func readWAV(path string) (*media.PCM, error) {
	r, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return media.ReadWAV(bufio.NewReader(r))
}

// formatOf describes a WAV format: "44100 Hz, 2 channels, 16-bit".
func formatOf(fe *media.FormatError) string {
	return fmt.Sprintf("%d Hz, %d channels, %d-bit (format %d)", fe.Rate, fe.Channels, fe.Bits, fe.Format)
}

// callOptions are the media this device offers: always audio (it
// listens), video when it sends some.
func (f *callFlags) callOptions() client.CallOptions {
	return client.CallOptions{Audio: true, Video: f.vid != nil}
}

// runOptions are callrun's options; record is the open recording or nil.
func (f *callFlags) runOptions(record io.Writer) callrun.Options {
	return callrun.Options{Audio: f.pcm, Codec: f.ac, Video: f.vid, Record: record, Duration: f.duration}
}

func (a *app) callCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "call",
		Short: "Voice and video calls: start, answer or join one, streaming a WAV file and a test pattern",
		Long: "Calls are end-to-end encrypted: signalled in the chat's group and sent as SFrame-protected media\n" +
			"through the homeservers. This reference client sends the audio of a WAV file (48 kHz mono 16-bit,\n" +
			"in a loop) and a synthetic video test pattern, and records the mix of the others' audio to a WAV\n" +
			"file. A call prints its events as it goes (ringing, answered, joined, hung up) and ends with a\n" +
			"summary; with --json every line is a JSON object with an \"event\", and the last one, the\n" +
			"\"summary\", has call_id, duration_ms, audio_frames_sent, audio_frames_received,\n" +
			"video_frames_sent, video_frames_received, lost, participants, peers and rtt_ms_p50.\n" +
			"'xchat recv' shows incoming and missed calls.",
	}
	cmd.AddCommand(a.callStartCmd(), a.callAnswerCmd(), a.callJoinCmd())
	return cmd
}

func (a *app) callStartCmd() *cobra.Command {
	var f callFlags
	var group string
	cmd := &cobra.Command{
		Use:   "start (USER@DOMAIN | --group ID) [--audio FILE.wav] [--video test[:WxH[@FPS]]] [--record FILE.wav] [--duration D] [--codec pcmu|l16] [--json]",
		Short: "Call a user (every device of theirs rings) or start a group call, stream until --duration or hang-up, print a summary",
		Long: "Rings every device of USER@DOMAIN (the one-to-one chat is created if needed) and streams once one\n" +
			"answers, or starts a call in the group --group ID, which its members join with 'xchat call join'.\n" +
			"It ends after --duration, when the other side hangs up, or on Ctrl-C (hanging up), and prints a\n" +
			"summary. A call nobody answers ends after " + fmt.Sprint(wire.RingTimeout) + " s; exit status 1 when the call was not\n" +
			"answered, declined or failed.",
		Args: func(cmd *cobra.Command, args []string) error {
			if group != "" {
				if _, err := client.ParseGroupID(group); err != nil {
					return fmt.Errorf("--group: %w", err)
				}
				if len(args) > 0 {
					return fmt.Errorf("a call goes to USER@DOMAIN or to --group ID, not both (got %q and --group)", args[0])
				}
			} else if err := cobra.MatchAll(cobra.ExactArgs(1), addressArgs(0))(cmd, args); err != nil {
				return err
			}
			return f.check()
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			var to string
			var gid []byte
			if group == "" {
				to = args[0]
				a.peers = args[:1]
			} else {
				gid, _ = client.ParseGroupID(group) // checked by Args
			}
			return a.runCall(cmd.Context(), &f, true, nil, func(ctx context.Context, s *callSession) (*client.Call, error) {
				ctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				if gid != nil {
					s.out.event(jsonCallEvent{Event: "starting", Group: hex.EncodeToString(gid)}, "starting a call in the group %x", gid)
					return s.c.StartGroupCall(ctx, gid, f.callOptions())
				}
				s.out.event(jsonCallEvent{Event: "calling", To: to}, "calling %s", to)
				return s.c.StartCall(ctx, to, f.callOptions())
			})
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "start a call in this group (an `ID` from 'xchat group list')")
	f.add(cmd)
	return cmd
}

func (a *app) callAnswerCmd() *cobra.Command {
	var f callFlags
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "answer [--wait D] [--audio FILE.wav] [--video test[:WxH[@FPS]]] [--record FILE.wav] [--duration D] [--codec pcmu|l16] [--json]",
		Short: "Wait for the next incoming call, answer it and stream until --duration or hang-up, then print a summary",
		Long: "Waits up to --wait for a call to ring on this device (one that rang while it was off counts,\n" +
			"within the ring timeout of " + fmt.Sprint(wire.RingTimeout) + " s), answers it, and streams until --duration, hang-up or\n" +
			"Ctrl-C. The other devices of the account stop ringing. Exit status 1 when no call came.",
		Args: cobra.MatchAll(noArgs, nonNegative("--wait", &wait), func(*cobra.Command, []string) error { return f.check() }),
		RunE: func(cmd *cobra.Command, _ []string) error {
			incoming := make(chan *client.IncomingCall, 16)
			// The first call that rings is taken; missed calls before it
			// are shown.
			var taken atomic.Bool
			onCall := func(s *callSession, u client.CallUpdate) {
				switch {
				case u.Kind == client.CallRinging && u.Incoming != nil && taken.CompareAndSwap(false, true):
					s.out.update(u)
					incoming <- u.Incoming
				case u.Kind == client.CallMissed && !taken.Load():
					s.out.update(u)
				}
			}
			return a.runCall(cmd.Context(), &f, false, onCall, func(ctx context.Context, s *callSession) (*client.Call, error) {
				s.out.event(jsonCallEvent{Event: "waiting"}, "waiting for a call")
				// A call that rang while another command received.
				msgs, err := s.p.Messages(ctx)
				if err != nil {
					return nil, err
				}
				in := ringingStored(msgs, wire.Mailbox{Address: a.self, Device: a.device}, time.Now())
				if in != nil && taken.CompareAndSwap(false, true) {
					s.out.update(client.CallUpdate{CallID: in.ID, Group: in.Group, Kind: client.CallRinging, From: in.From, Device: in.Device, Incoming: in})
				} else {
					select {
					case in = <-incoming:
					case <-time.After(wait):
						return nil, fmt.Errorf("no call rang within %s", wait)
					case err := <-s.recvErr:
						return nil, err
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
				a.peers = []string{in.From}
				rctx, cancel := context.WithTimeout(ctx, timeout)
				defer cancel()
				return s.c.AnswerCall(rctx, in, f.callOptions())
			})
		},
	}
	cmd.Flags().DurationVar(&wait, "wait", 10*time.Minute, "give up when no call rings within this long")
	f.add(cmd)
	return cmd
}

func (a *app) callJoinCmd() *cobra.Command {
	var f callFlags
	var group string
	var wait time.Duration
	cmd := &cobra.Command{
		Use:   "join --group ID [--wait D] [--audio FILE.wav] [--video test[:WxH[@FPS]]] [--record FILE.wav] [--duration D] [--codec pcmu|l16] [--json]",
		Short: "Join the running call of a group and stream until --duration or Ctrl-C, then print a summary",
		Long: "Joins the newest running call of the group --group ID; with --wait it waits that long for one to\n" +
			"start. It streams until --duration or Ctrl-C, then leaves the call and prints a summary.",
		Args: func(cmd *cobra.Command, args []string) error {
			if err := cobra.MatchAll(noArgs, nonNegative("--wait", &wait))(cmd, args); err != nil {
				return err
			}
			if group == "" {
				return errors.New("call join needs --group ID (an ID from 'xchat group list')")
			}
			if _, err := client.ParseGroupID(group); err != nil {
				return fmt.Errorf("--group: %w", err)
			}
			return f.check()
		},
		RunE: func(cmd *cobra.Command, _ []string) error {
			gid, _ := client.ParseGroupID(group) // checked by Args
			started := make(chan struct{}, 1)
			onCall := func(_ *callSession, u client.CallUpdate) {
				if u.Kind == client.CallRinging && string(u.Group) == string(gid) {
					select {
					case started <- struct{}{}:
					default:
					}
				}
			}
			return a.runCall(cmd.Context(), &f, true, onCall, func(ctx context.Context, s *callSession) (*client.Call, error) {
				s.out.event(jsonCallEvent{Event: "joining", Group: group}, "joining the call of the group %s", group)
				deadline := time.After(wait)
				for {
					rctx, cancel := context.WithTimeout(ctx, timeout)
					call, err := s.c.JoinCall(rctx, gid, f.callOptions())
					cancel()
					switch {
					case errors.Is(err, client.ErrNoCall) && wait == 0:
						return nil, clierr.Explain(err, "no call is running in the group %s: 'xchat call start --group %s' starts one; --wait D waits for one", group, group)
					case !errors.Is(err, client.ErrNoCall):
						return call, err
					}
					select {
					case <-started:
					case <-deadline:
						return nil, clierr.Explain(err, "no call of the group %s started within %s", group, wait)
					case err := <-s.recvErr:
						return nil, err
					case <-ctx.Done():
						return nil, ctx.Err()
					}
				}
			})
		},
	}
	cmd.Flags().StringVar(&group, "group", "", "the group (an `ID` from 'xchat group list')")
	cmd.Flags().DurationVar(&wait, "wait", 0, "wait this long for a call of the group to start")
	cmd.MarkFlagRequired("group")
	f.add(cmd)
	return cmd
}

// callSession is the connection of a call command while it runs.
type callSession struct {
	p       *client.Profile
	c       *client.Client
	out     *callOutput
	recvErr <-chan error // Receive's end: the connection failed
}

// maxCall bounds how long a call command keeps receiving.
const maxCall = 24 * time.Hour

// hangupTimeout bounds the hang-up after a call, also after Ctrl-C.
const hangupTimeout = 10 * time.Second

// runCall runs a call command: it connects (after catching up on a first
// connection when catchUp is set, so that the call starts on current
// group states), keeps receiving with onCall seeing every call signal,
// starts the call with begin (which bounds its requests by timeout),
// waits until it is answered, streams with callrun, hangs up and prints
// the summary.
func (a *app) runCall(ctx context.Context, f *callFlags, catchUp bool, onCall func(*callSession, client.CallUpdate),
	begin func(context.Context, *callSession) (*client.Call, error)) (err error) {
	var record *os.File
	if f.record != "" {
		// The recording is written beside the file and takes its name only
		// when the call succeeded: a failed call leaves an existing file
		// as it was.
		if record, err = os.CreateTemp(filepath.Dir(f.record), "."+filepath.Base(f.record)+".*.part"); err != nil {
			return fmt.Errorf("--record: %w", err)
		}
		defer func() {
			if cerr := record.Close(); err == nil && cerr != nil {
				err = fmt.Errorf("--record: %w", cerr)
			}
			if err == nil {
				if rerr := os.Rename(record.Name(), f.record); rerr != nil {
					err = fmt.Errorf("--record: %w", rerr)
				}
			}
			if err != nil {
				os.Remove(record.Name())
			}
		}()
	}
	if catchUp {
		// Receive cannot follow CatchUp on one connection: catch up on
		// one, receive on another.
		if err := a.withClient(ctx, func(*client.Client) error { return nil }); err != nil {
			return err
		}
	}
	p, c, err := a.connect(ctx)
	if err != nil {
		return err
	}
	defer p.Close()
	defer c.Close()
	out := &callOutput{w: a.stdout, asJSON: f.asJSON}
	recvErr := make(chan error, 1)
	s := &callSession{p: p, c: c, out: out, recvErr: recvErr}
	rctx, stopReceiving := context.WithCancel(ctx)
	received := make(chan struct{})
	go func() {
		defer close(received)
		err := c.Receive(rctx, client.ReceiveOptions{Wait: maxCall,
			OnCall: func(u client.CallUpdate) {
				if onCall != nil {
					onCall(s, u)
				}
			},
			// Call signals are this command's to show; other messages
			// wait for the next recv.
			OnMessage: func(m client.Message) {
				if m.Call != nil {
					p.MarkShown(rctx, m.ID)
				}
			},
		})
		if rctx.Err() == nil {
			if err == nil {
				err = errors.New("stopped receiving")
			}
			recvErr <- err
		}
	}()
	defer func() {
		stopReceiving()
		<-received
	}()

	call, err := begin(ctx, s)
	if err != nil {
		return err
	}
	out.event(jsonCallEvent{Event: "started", Call: hex.EncodeToString(call.ID())}, "call %x", call.ID())
	// From here the call is hung up however the command ends.
	hungUp := false
	hangup := func() {
		if hungUp {
			return
		}
		hungUp = true
		hctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), hangupTimeout)
		defer cancel()
		if err := call.Hangup(hctx); err != nil {
			fmt.Fprintf(a.stderr, "xchat: hanging up: %v\n", a.explain(err))
		}
	}
	defer hangup()
	ups := out.follow(call)
	defer ups.stop()

	select {
	case <-call.Connected():
	case <-call.Done():
		return ups.notAnswered(out, call)
	case err := <-recvErr:
		return err
	case <-ctx.Done():
		return clierr.Explain(ctx.Err(), "interrupted before the call was answered; it was cancelled")
	}
	out.event(jsonCallEvent{Event: "connected", Call: hex.EncodeToString(call.ID())}, "connected")

	// The call runs until the duration, a hang-up, Ctrl-C or a lost
	// connection; Ctrl-C ends a call normally.
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()
	go func() {
		select {
		case <-recvErr:
			stopRun()
		case <-runCtx.Done():
		}
	}()
	conn := newCallConn(call)
	defer conn.close()
	var w io.Writer
	if record != nil {
		w = record
	}
	sum, err := callrun.Run(runCtx, conn, f.runOptions(w))
	if err != nil {
		return err
	}
	hangup()
	ups.stop()
	sum.CallID = hex.EncodeToString(call.ID())
	if record != nil {
		sum.Recording = f.record
	}
	return out.summary(sum)
}

// callOutput prints a call's events and summary: lines for a person, or
// JSON objects with --json. Its methods may be called from any goroutine.
type callOutput struct {
	mu     sync.Mutex
	w      io.Writer
	asJSON bool
}

// jsonCallEvent is a line of the call commands' --json output, and the
// line of recv --json for a call.
type jsonCallEvent struct {
	Event  string   `json:"event"`
	Call   string   `json:"call,omitempty"` // the call identifier
	To     string   `json:"to,omitempty"`
	From   string   `json:"from,omitempty"`
	Device uint32   `json:"device,omitempty"`
	Group  string   `json:"group,omitempty"` // group calls
	Media  []string `json:"media,omitempty"`
	Reason string   `json:"reason,omitempty"`
	SentAt string   `json:"sent_at,omitempty"`
}

// jsonSummary is the last line of the call commands' --json output.
type jsonSummary struct {
	Event string `json:"event"` // "summary"
	*callrun.Summary
}

// event prints e, or the formatted line without --json.
func (o *callOutput) event(e jsonCallEvent, format string, args ...any) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.asJSON {
		json.NewEncoder(o.w).Encode(e)
		return
	}
	fmt.Fprintf(o.w, format+"\n", args...)
}

// update prints a call signal.
func (o *callOutput) update(u client.CallUpdate) {
	e := callEvent(u)
	o.event(e, "%s", callText(u, e))
}

func (o *callOutput) summary(s *callrun.Summary) error {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.asJSON {
		return json.NewEncoder(o.w).Encode(jsonSummary{Event: "summary", Summary: s})
	}
	return s.WriteText(o.w)
}

// callEvents names the kinds of call update in output.
var callEvents = map[client.CallUpdateKind]string{
	client.CallRinging:           "incoming",
	client.CallMissed:            "missed",
	client.CallAnsweredElsewhere: "answered_elsewhere",
	client.CallDeclined:          "declined",
	client.CallBusy:              "busy",
	client.CallAccepted:          "accepted",
	client.CallHungUp:            "hung_up",
	client.CallJoined:            "joined",
	client.CallLeft:              "left",
	client.CallRingingRemote:     "ringing",
}

// hangupReasons names the reasons of a hang-up.
var hangupReasons = map[uint64]string{wire.HangupNormal: "normal", wire.HangupNoAnswer: "no_answer", wire.HangupFailed: "failed"}

// callEvent is the JSON line of a call update.
func callEvent(u client.CallUpdate) jsonCallEvent {
	e := jsonCallEvent{Event: callEvents[u.Kind], Call: hex.EncodeToString(u.CallID), From: u.From, Device: u.Device}
	if e.Event == "" {
		e.Event = fmt.Sprintf("unknown(%d)", u.Kind)
	}
	if u.Kind == client.CallHungUp {
		e.Reason = hangupReasons[u.Reason]
	}
	if in := u.Incoming; in != nil {
		e.Media = mediaNames(in.Media)
		e.SentAt = in.SentAt.UTC().Format(time.RFC3339Nano)
		if !in.Direct {
			e.Group = hex.EncodeToString(in.Group)
		}
	}
	return e
}

// mediaNames names the media bits of a call signal.
func mediaNames(m uint64) []string {
	var names []string
	if m&wire.MediaAudio != 0 {
		names = append(names, "audio")
	}
	if m&wire.MediaVideo != 0 {
		names = append(names, "video")
	}
	return names
}

// callText is a call update in words, after the sender.
func callText(u client.CallUpdate, e jsonCallEvent) string {
	who := u.From
	if u.Device != 0 {
		who = fmt.Sprintf("%s (device %d)", u.From, u.Device)
	}
	what := ""
	if len(e.Media) > 0 {
		what = " (" + strings.Join(e.Media, ", ") + ")"
	}
	if e.Group != "" {
		what += " in the group " + e.Group
	}
	switch u.Kind {
	case client.CallRinging:
		return "incoming call from " + u.From + what
	case client.CallMissed:
		return "missed call from " + u.From + what
	case client.CallAnsweredElsewhere:
		return "call from " + u.From + " answered on another device"
	case client.CallDeclined:
		return who + " declined the call"
	case client.CallBusy:
		return who + " is busy"
	case client.CallAccepted:
		return who + " answered"
	case client.CallHungUp:
		if u.Reason == wire.HangupNoAnswer {
			return who + " stopped calling (no answer)"
		}
		return who + " hung up"
	case client.CallJoined:
		return who + " joined"
	case client.CallLeft:
		return who + " left"
	case client.CallRingingRemote:
		return "ringing at " + who
	}
	return fmt.Sprintf("%s: call signal %s", who, e.Event)
}

// callUpdates prints the signalling of a call while it runs and keeps
// the last update, to tell why a call ended before it was answered.
type callUpdates struct {
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once
	mu      sync.Mutex
	last    *client.CallUpdate
}

// follow prints the updates of call until stop.
func (o *callOutput) follow(call *client.Call) *callUpdates {
	u := &callUpdates{done: make(chan struct{}), stopped: make(chan struct{})}
	go func() {
		defer close(u.stopped)
		for {
			select {
			case up, ok := <-call.Updates():
				if !ok {
					return
				}
				o.update(up)
				u.mu.Lock()
				u.last = &up
				u.mu.Unlock()
			case <-u.done:
				return
			}
		}
	}()
	return u
}

// stop stops printing updates and waits until the printing ended.
func (u *callUpdates) stop() {
	u.once.Do(func() { close(u.done) })
	<-u.stopped
}

// notAnswered is the error of a call that ended before it was answered.
func (u *callUpdates) notAnswered(o *callOutput, call *client.Call) error {
	u.stop()
	last := u.last
	// The update that ended it may still wait in the channel.
	for more := true; more; {
		select {
		case up, ok := <-call.Updates():
			if !ok {
				more = false
				break
			}
			o.update(up)
			last = &up
		default:
			more = false
		}
	}
	if last != nil {
		switch last.Kind {
		case client.CallDeclined:
			return fmt.Errorf("%s declined the call", last.From)
		case client.CallBusy:
			return fmt.Errorf("%s is busy", last.From)
		case client.CallAnsweredElsewhere:
			return errors.New("the call was answered on another device")
		case client.CallHungUp:
			return fmt.Errorf("%s hung up before the call was answered", last.From)
		}
	}
	return fmt.Errorf("no answer within %d s", wire.RingTimeout)
}

// callConn is a client call as callrun drives it.
type callConn struct {
	call   *client.Call
	frames chan callrun.Frame
	done   chan struct{}
	once   sync.Once
}

func newCallConn(call *client.Call) *callConn {
	cc := &callConn{call: call, frames: make(chan callrun.Frame, 64), done: make(chan struct{})}
	go func() {
		defer close(cc.frames)
		for {
			select {
			case rf, ok := <-call.Frames():
				if !ok {
					return
				}
				select {
				case cc.frames <- callrun.Frame{Source: rf.Source, From: rf.From, Frame: rf.Frame, Arrived: rf.Arrived}:
				case <-cc.done:
					return
				}
			case <-cc.done:
				return
			}
		}
	}()
	return cc
}

func (cc *callConn) close()                        { cc.once.Do(func() { close(cc.done) }) }
func (cc *callConn) Send(f *wire.MediaFrame) error { return cc.call.Send(f) }
func (cc *callConn) Frames() <-chan callrun.Frame  { return cc.frames }
func (cc *callConn) Done() <-chan struct{}         { return cc.call.Done() }
func (cc *callConn) Stats() callrun.Stats          { return callStats(cc.call.Stats()) }

// recvLine prints a call update as recv does: a line after the time, or
// a JSON object.
func (o *callOutput) recvLine(u client.CallUpdate) {
	e := callEvent(u)
	at := time.Now()
	if u.Incoming != nil {
		at = u.Incoming.SentAt
	}
	o.event(e, "%s %s", at.Local().Format("2006-01-02 15:04:05"), callText(u, e))
}

// storedCall is the update that the stored call message msgs[i], not
// yet shown, stands for: an invite from another device is an incoming
// call while it may still ring, else a missed call or one answered on
// another device of this account; other signals and invites this device
// answered are not shown.
func storedCall(msgs []client.Message, i int, self wire.Mailbox, now time.Time) (client.CallUpdate, bool) {
	m := &msgs[i]
	sig := m.Call
	if sig == nil || sig.Kind != wire.SignalInvite || (m.From == self.Address && m.FromDevice == self.Device) {
		return client.CallUpdate{}, false
	}
	in := &client.IncomingCall{ID: sig.CallID, Group: m.Group, Direct: m.Direct, From: m.From, Device: m.FromDevice,
		Media: sig.Media, SentAt: m.SentAt, Room: sig.Room, Token: sig.Token}
	u := client.CallUpdate{CallID: sig.CallID, Group: m.Group, Kind: client.CallRinging, From: m.From, Device: m.FromDevice, Incoming: in}
	if now.Sub(m.SentAt) >= wire.RingTimeout*time.Second {
		u.Kind = client.CallMissed
	}
	for _, n := range msgs[i+1:] {
		if n.Call == nil || string(n.Call.CallID) != string(sig.CallID) {
			continue
		}
		switch k := n.Call.Kind; {
		case (k == wire.SignalAccept || k == wire.SignalJoin) && n.From == self.Address && n.FromDevice == self.Device:
			return u, false
		case k == wire.SignalAccept && n.From == self.Address:
			u.Kind = client.CallAnsweredElsewhere
		case (k == wire.SignalHangup || k == wire.SignalDecline) && u.Kind == client.CallRinging:
			u.Kind = client.CallMissed
		}
	}
	return u, true
}

// ringingStored returns the newest stored invite that still rings on
// this device (see storedCall), or nil.
func ringingStored(msgs []client.Message, self wire.Mailbox, now time.Time) *client.IncomingCall {
	for i := len(msgs) - 1; i >= 0; i-- {
		if now.Sub(msgs[i].SentAt) >= wire.RingTimeout*time.Second {
			break
		}
		if u, ok := storedCall(msgs, i, self, now); ok && u.Kind == client.CallRinging {
			return u.Incoming
		}
	}
	return nil
}

// callStats are the counters of a client call that callrun sums up.
func callStats(s client.CallStats) callrun.Stats {
	return callrun.Stats{Lost: s.Lost + s.Incomplete + s.Undecryptable, Participants: s.Participants, RTT: s.RTT}
}
