package client_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/client/sframe"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// callWait bounds every wait of the call tests (a loaded CI machine).
const callWait = 30 * time.Second

// listen runs Receive on a new connection of u for the rest of the test
// and returns the call updates it reports.
func (u *user) listen() <-chan client.CallUpdate {
	u.t.Helper()
	u.c.Close()
	u.connect()
	ups := make(chan client.CallUpdate, 256)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	c := u.c
	go func() {
		defer close(done)
		err := c.Receive(ctx, client.ReceiveOptions{
			Wait:   time.Hour,
			OnCall: func(up client.CallUpdate) { ups <- up },
			OnDrop: func(id [16]byte, err error) { u.t.Logf("%s dropped %x: %v", c.Identity().Address, id, err) },
		})
		if err != nil && ctx.Err() == nil {
			u.t.Errorf("receive: %v", err)
		}
	}()
	u.t.Cleanup(func() { cancel(); <-done })
	return ups
}

// waitUpdate reads updates until one of kind arrives.
func waitUpdate(t *testing.T, ups <-chan client.CallUpdate, kind client.CallUpdateKind) client.CallUpdate {
	t.Helper()
	deadline := time.After(callWait)
	for {
		select {
		case u := <-ups:
			if u.Kind == kind {
				return u
			}
		case <-deadline:
			t.Fatalf("no %s update within %v", kind, callWait)
		}
	}
}

// waitClosed waits for ch to be closed.
func waitClosed(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(callWait):
		t.Fatalf("%s: not within %v", what, callWait)
	}
}

// queued returns the first update of kind queued on a call that ended.
func queued(c *client.Call, kind client.CallUpdateKind) (client.CallUpdate, bool) {
	for {
		select {
		case u := <-c.Updates():
			if u.Kind == kind {
				return u, true
			}
		default:
			return client.CallUpdate{}, false
		}
	}
}

func audio(c *client.Call, tag string, n int) *wire.MediaFrame {
	return &wire.MediaFrame{Kind: wire.KindAudio, Codec: "pcmu", Timestamp: c.Timestamp(),
		Payload: []byte(fmt.Sprintf("secret-audio-payload %s %06d", tag, n))}
}

// exchange has a send frames tagged tag, one every 10 ms, until b
// received want of them (datagrams may be lost), and returns those b got.
func exchange(t *testing.T, a, b *client.Call, tag string, want int) []client.ReceivedFrame {
	t.Helper()
	var got []client.ReceivedFrame
	deadline := time.Now().Add(callWait)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for n := 0; len(got) < want; n++ {
		if time.Now().After(deadline) {
			t.Fatalf("%s: %d of %d frames arrived within %v", tag, len(got), want, callWait)
		}
		if err := a.Send(audio(a, tag, n)); err != nil {
			t.Fatalf("send: %v", err)
		}
		<-tick.C
	drain:
		for {
			select {
			case f := <-b.Frames():
				if strings.Contains(string(f.Frame.Payload), tag) {
					got = append(got, f)
				}
			default:
				break drain
			}
		}
	}
	return got
}

// A one-to-one call: Alice calls, Bob's device rings and answers, frames
// go both ways, Alice hangs up and the call ends on both sides.
func TestCallOneToOne(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	ctx := t.Context()
	aUps, bUps := alice.listen(), bob.listen()
	ac, err := alice.c.StartCall(ctx, "bob@a.test", client.CallOptions{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	ring := waitUpdate(t, bUps, client.CallRinging)
	if ring.Incoming == nil || !ring.Incoming.Direct || ring.Incoming.From != "alice@a.test" || !bytes.Equal(ring.CallID, ac.ID()) {
		t.Fatalf("ringing %+v", ring)
	}
	waitUpdate(t, aUps, client.CallRingingRemote)
	bc, err := bob.c.AnswerCall(ctx, ring.Incoming, client.CallOptions{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ac.Connected(), "alice connected")
	got := exchange(t, ac, bc, "a2b", 10)
	if got[0].From != "alice@a.test" || got[0].Source != ac.Source() || got[0].Frame.Codec != "pcmu" {
		t.Fatalf("bob got %+v", got[0])
	}
	back := exchange(t, bc, ac, "b2a", 10)
	if back[0].From != "bob@a.test" || back[0].Device != 1 {
		t.Fatalf("alice got %+v", back[0])
	}
	if st := ac.Stats(); st.FramesSent[wire.KindAudio] < 10 || st.FramesReceived[wire.KindAudio] < 10 || st.Participants != 2 {
		t.Fatalf("alice's stats %+v", st)
	}
	if p := bc.Participants(); len(p) != 2 || p[0] != "alice@a.test/1" || p[1] != "bob@a.test/1" {
		t.Fatalf("bob's participants %q", p)
	}
	if len(ac.Stats().RTT) == 0 {
		t.Error("alice has no round-trip sample though bob echoed her frames")
	}
	if err := ac.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, bc.Done(), "bob's call ended")
	if u := waitUpdate(t, bUps, client.CallHungUp); u.From != "alice@a.test" || u.Reason != wire.HangupNormal {
		t.Fatalf("hang-up %+v", u)
	}
	if err := ac.Send(audio(ac, "late", 0)); !errors.Is(err, client.ErrCallEnded) {
		t.Fatalf("send after hang-up: %v", err)
	}
	// The invite is stored as a call message.
	msgs, err := bob.p.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var invites int
	for _, m := range msgs {
		if m.Type == wire.ContentCall && m.Call != nil && m.Call.Kind == wire.SignalInvite && bytes.Equal(m.Call.CallID, ac.ID()) {
			invites++
		}
	}
	if invites != 1 {
		t.Fatalf("%d stored invites", invites)
	}
}

// Bob has two devices: both ring, one answers, the other is told the call
// was answered elsewhere. When both answer, the device of the lower leaf
// keeps the call.
func TestCallTwoDevices(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	bob2 := linkDevice(t, s, bob)
	ctx := t.Context()
	aUps, bUps, b2Ups := alice.listen(), bob.listen(), bob2.listen()

	ac, err := alice.c.StartCall(ctx, "bob@a.test", client.CallOptions{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	ring := waitUpdate(t, bUps, client.CallRinging)
	ring2 := waitUpdate(t, b2Ups, client.CallRinging)
	if !bytes.Equal(ring.CallID, ring2.CallID) {
		t.Fatal("two calls rang")
	}
	bc, err := bob.c.AnswerCall(ctx, ring.Incoming, client.CallOptions{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	if u := waitUpdate(t, b2Ups, client.CallAnsweredElsewhere); u.From != "bob@a.test" || u.Device != 1 {
		t.Fatalf("answered elsewhere %+v", u)
	}
	if r := bob2.c.Ringing(); len(r) != 0 {
		t.Fatalf("bob's second device still rings %d calls", len(r))
	}
	waitClosed(t, ac.Connected(), "alice connected")
	exchange(t, ac, bc, "a2b", 5)
	if err := bc.Hangup(ctx); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ac.Done(), "alice's call ended")
	waitUpdate(t, aUps, client.CallHungUp)

	// Both answer the next call: bob's first device (leaf 1) keeps it.
	ac, err = alice.c.StartCall(ctx, "bob@a.test", client.CallOptions{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	ring = waitUpdate(t, bUps, client.CallRinging)
	ring2 = waitUpdate(t, b2Ups, client.CallRinging)
	var wg sync.WaitGroup
	var calls [2]*client.Call
	var errs [2]error
	for i, x := range []struct {
		u  *user
		in *client.IncomingCall
	}{{bob, ring.Incoming}, {bob2, ring2.Incoming}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			calls[i], errs[i] = x.u.c.AnswerCall(ctx, x.in, client.CallOptions{Audio: true})
		}()
	}
	wg.Wait()
	if errs[0] != nil {
		t.Fatalf("bob's first device: %v", errs[0])
	}
	if errs[1] != nil && !errors.Is(errs[1], client.ErrAnsweredElsewhere) {
		t.Fatalf("bob's second device: %v", errs[1])
	}
	if calls[1] != nil {
		waitClosed(t, calls[1].Done(), "the second device left the call")
	}
	waitClosed(t, ac.Connected(), "alice connected")
	exchange(t, ac, calls[0], "tie", 5)
	exchange(t, calls[0], ac, "tie-back", 5)
	select {
	case <-calls[0].Done():
		t.Fatal("the device of the lower leaf lost the call")
	default:
	}
}

// A decline ends the call for the caller.
func TestCallDecline(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	ctx := t.Context()
	alice.listen()
	bUps := bob.listen()
	ac, err := alice.c.StartCall(ctx, "bob@a.test", client.CallOptions{Audio: true, Video: true})
	if err != nil {
		t.Fatal(err)
	}
	ring := waitUpdate(t, bUps, client.CallRinging)
	if ring.Incoming.Media != wire.MediaAudio|wire.MediaVideo {
		t.Fatalf("media %d", ring.Incoming.Media)
	}
	if err := bob.c.DeclineCall(ctx, ring.Incoming); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ac.Done(), "alice's call ended")
	if u, ok := queued(ac, client.CallDeclined); !ok || u.From != "bob@a.test" {
		t.Fatalf("declined %v: %+v", ok, u)
	}
	select {
	case <-ac.Connected():
		t.Fatal("a declined call connected")
	default:
	}
}

// A call nobody answers ends at the ring timeout: the caller hangs up with
// reason no answer and the callee's device stops ringing by itself.
func TestCallRingTimeout(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	ctx := t.Context()
	alice.listen()
	bUps := bob.listen()
	alice.c.SetRingTimeout(4 * time.Second)
	bob.c.SetRingTimeout(4 * time.Second)
	ac, err := alice.c.StartCall(ctx, "bob@a.test", client.CallOptions{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	waitUpdate(t, bUps, client.CallRinging)
	waitClosed(t, ac.Done(), "alice's call ended")
	if u, ok := queued(ac, client.CallHungUp); !ok || u.Reason != wire.HangupNoAnswer {
		t.Fatalf("alice's hang-up %v: %+v", ok, u)
	}
	if u := waitUpdate(t, bUps, client.CallMissed); u.Incoming == nil || u.Incoming.From != "alice@a.test" {
		t.Fatalf("missed %+v", u)
	}
	if r := bob.c.Ringing(); len(r) != 0 {
		t.Fatalf("bob still rings %d calls", len(r))
	}
}

// observer is a device of another account in a call's room that records
// every datagram the relay forwards to it.
type observer struct {
	mu   sync.Mutex
	pkts [][]byte
}

func (o *observer) packets() [][]byte {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([][]byte(nil), o.pkts...)
}

// observe joins the room of in with a raw connection.
func observe(t *testing.T, s *servertest.Server, in *client.IncomingCall) *observer {
	t.Helper()
	qc, err := quic.DialAddr(servertest.Context(t), s.Addr, servertest.TLSConfig(t, s, wire.ALPN), &quic.Config{EnableDatagrams: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	r := &servertest.Raw{T: t, QC: qc}
	d := servertest.NewDevice(t, "eve@a.test")
	if err := r.Register(d, nil); err != nil {
		t.Fatal(err)
	}
	var ok wire.CallJoinOK
	if err := r.Request(&wire.CallJoin{Room: in.Room, Token: in.Token, Domains: []string{}}, &ok); err != nil {
		t.Fatal(err)
	}
	o := &observer{}
	go func() {
		for {
			b, err := qc.ReceiveDatagram(context.Background())
			if err != nil {
				return
			}
			o.mu.Lock()
			o.pkts = append(o.pkts, b)
			o.mu.Unlock()
		}
	}()
	return o
}

// A group call of three; a raw observer in the room sees no plaintext;
// Carol, removed from the group during the call, leaves it, and the keys
// she had cannot open the frames sent after her removal, which Bob's can.
func TestCallGroupRemovedMember(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob, carol := register(t, s, "alice@a.test"), register(t, s, "bob@a.test"), register(t, s, "carol@a.test")
	ctx := t.Context()
	gid, err := alice.c.CreateGroup(ctx, "call", []string{"bob@a.test", "carol@a.test"})
	if err != nil {
		t.Fatal(err)
	}
	alice.listen()
	bUps, cUps := bob.listen(), carol.listen()
	ac, err := alice.c.StartGroupCall(ctx, gid, client.CallOptions{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	waitClosed(t, ac.Connected(), "alice connected")
	ring := waitUpdate(t, bUps, client.CallRinging)
	if ring.Incoming.Direct {
		t.Fatal("a group call rang as one-to-one")
	}
	bc, err := bob.c.AnswerCall(ctx, ring.Incoming, client.CallOptions{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	waitUpdate(t, cUps, client.CallRinging)
	cc, err := carol.c.JoinCall(ctx, gid, client.CallOptions{Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	obs := observe(t, s, ring.Incoming)
	exchange(t, ac, bc, "before", 5)
	exchange(t, ac, cc, "before-c", 5)
	exchange(t, bc, cc, "bob-c", 3)

	sent := ac.Stats().FramesSent[wire.KindAudio] // the sequence of Alice's next frame
	carolKeys := client.CallBaseKeys(cc)
	if err := alice.c.RemoveMember(ctx, gid, "carol@a.test"); err != nil {
		t.Fatal(err)
	}
	waitClosed(t, cc.Done(), "carol's call ended at her removal")
	after := exchange(t, ac, bc, "after", 10)
	if after[0].From != "alice@a.test" {
		t.Fatalf("bob got %+v", after[0])
	}
	deadline := time.Now().Add(callWait)
	var ours [][]byte
	for {
		ours = ours[:0]
		for _, b := range obs.packets() {
			p, err := wire.ParseMediaPacket(b)
			if err == nil && p.Source == ac.Source() && p.Seq >= uint32(sent) && p.Count == 1 {
				ours = append(ours, b)
			}
		}
		if len(ours) >= 5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if len(ours) < 5 {
		t.Fatalf("the observer saw %d of Alice's frames after the removal", len(ours))
	}
	// Carol's keys (every epoch she knew) open none of them; Bob's open them.
	now := time.Now()
	carolRecv, bobRecv := sframe.NewMLSReceiver(), sframe.NewMLSReceiver()
	for e, k := range carolKeys {
		carolRecv.AddEpoch(e, k, now)
	}
	for e, k := range client.CallBaseKeys(bc) {
		bobRecv.AddEpoch(e, k, now)
	}
	opened := 0
	for _, b := range ours {
		p, _ := wire.ParseMediaPacket(b)
		md := wire.FrameMetadata(p.Source, p.Seq)
		if _, _, pt, err := carolRecv.Unprotect(md, p.Data, now); err == nil {
			t.Fatalf("carol's keys opened frame %d: %q", p.Seq, pt)
		}
		if _, _, _, err := bobRecv.Unprotect(md, p.Data, now); err == nil {
			opened++
		}
	}
	if opened == 0 {
		t.Fatal("bob's keys opened none of the frames the observer saw")
	}
	// The relay forwarded ciphertext only.
	for _, b := range obs.packets() {
		if bytes.Contains(b, []byte("secret-audio-payload")) || bytes.Contains(b, []byte("pcmu")) {
			t.Fatalf("the relay forwarded plaintext: %q", b)
		}
	}
	if st := bc.Stats(); st.Undecryptable != 0 && st.FramesReceived[wire.KindAudio] == 0 {
		t.Fatalf("bob's stats %+v", st)
	}
}
