package client

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/xchat-im/xchat/client/mls"
	"github.com/xchat-im/xchat/client/sframe"
	"github.com/xchat-im/xchat/spec/wire"
)

// ErrNoCall is returned by JoinCall when the group has no running call
// this device knows of.
var ErrNoCall = errors.New("no running call in this group")

// ErrCallEnded is returned by the methods of a Call that ended.
var ErrCallEnded = errors.New("the call ended")

// ErrAnsweredElsewhere is returned by AnswerCall for a call that another
// device of this account, of a lower MLS leaf index, accepted already
// (spec/12-calls.md section 12.2.1 step 3).
var ErrAnsweredElsewhere = errors.New("the call was answered on another device")

// ErrInCall is returned when a call is started or answered while this
// client takes part in another one.
var ErrInCall = errors.New("this device is in another call")

// groupCallWindow is how long after its invite a group call may be
// joined (spec/12-calls.md section 12.2.2).
const groupCallWindow = 12 * time.Hour

// CallOptions are the media a device sends in a call.
type CallOptions struct {
	Audio, Video bool
}

func (o CallOptions) media() uint64 {
	var m uint64
	if o.Audio {
		m |= wire.MediaAudio
	}
	if o.Video {
		m |= wire.MediaVideo
	}
	if m == 0 {
		m = wire.MediaAudio
	}
	return m
}

// IncomingCall is an invite to a call received by this device.
type IncomingCall struct {
	ID, Group []byte
	Direct    bool   // a one-to-one call
	From      string // the caller
	Device    uint32 // the caller's device
	Media     uint64 // wire.MediaAudio | wire.MediaVideo
	SentAt    time.Time
	Room      []byte // the relay room, secret
	Token     []byte // the room token, secret
}

// CallUpdateKind names what a CallUpdate reports.
type CallUpdateKind int

// Kinds of CallUpdate.
const (
	CallRinging           CallUpdateKind = iota + 1 // an invite rings on this device
	CallMissed                                      // an invite was not answered here in time, or the caller gave up
	CallAnsweredElsewhere                           // another device of this account took the call
	CallDeclined                                    // a callee device declined
	CallBusy                                        // a callee device is in another call
	CallAccepted                                    // a callee device accepted
	CallHungUp                                      // a participant ended the call (one-to-one) or the call ended here
	CallJoined                                      // a member joined a group call
	CallLeft                                        // a member left a group call
	CallRingingRemote                               // a callee device rings
)

var callUpdateNames = [...]string{"", "ringing", "missed", "answered elsewhere", "declined", "busy", "accepted", "hung up", "joined", "left", "ringing remote"}

func (k CallUpdateKind) String() string {
	if k > 0 && int(k) < len(callUpdateNames) {
		return callUpdateNames[k]
	}
	return fmt.Sprintf("call update %d", int(k))
}

// CallUpdate reports a call signal received, or an event of a call on this
// device (a ring timeout).
type CallUpdate struct {
	CallID, Group []byte
	Kind          CallUpdateKind
	From          string // the device the signal came from (this device for a local event)
	Device        uint32
	Incoming      *IncomingCall // for CallRinging and CallMissed
	Reason        uint64        // the hang-up reason (wire.HangupNormal, ...)
}

// ReceivedFrame is one media frame of a call, decrypted.
type ReceivedFrame struct {
	Source  uint32 // the sender's source identifier
	From    string // the sending device's account
	Device  uint32 // and device
	Frame   *wire.MediaFrame
	Arrived time.Time // when its last packet arrived
}

// CallStats counts what a call sent and received.
type CallStats struct {
	FramesSent     map[uint64]uint64 // by kind (wire.KindAudio, wire.KindVideo)
	FramesReceived map[uint64]uint64 // by kind, decrypted and valid
	Lost           uint64            // frames missing in the sequences received
	Incomplete     uint64            // frames dropped before all their packets arrived
	Undecryptable  uint64            // frames that did not decrypt or decode
	Dropped        uint64            // frames not delivered because Frames was not read
	Participants   int               // len(Participants())
	RTT            []time.Duration   // round-trip samples (spec 12.8.3), the newest last
}

// maxRTTSamples bounds CallStats.RTT.
const maxRTTSamples = 4096

type callRole int

const (
	roleCaller callRole = iota + 1
	roleCallee
	roleMember // group call
)

// Call is this device's part in a call: its room on the homeserver, its
// SFrame keys and the media it sends and receives.
type Call struct {
	cl     *Client
	id     []byte
	group  []byte
	direct bool
	role   callRole
	media  uint64
	room   []byte
	token  []byte
	start  time.Time

	handle uint32
	source uint32

	sendMu sync.Mutex // serialises Send: sequence and SFrame counter; never taken with mu held
	seq    uint32
	sender callSender

	frames    chan ReceivedFrame
	updates   chan CallUpdate
	connected chan struct{}
	done      chan struct{}
	connOnce  sync.Once
	doneOnce  sync.Once

	mu       sync.Mutex
	epoch    uint64
	leaf     uint32
	recv     *sframe.MLSReceiver
	leaves   map[uint64]map[uint32]wire.Mailbox // epoch → leaf index → device, of the epochs held
	parts    map[wire.Mailbox]bool              // devices taking part, this one included
	baseKeys map[uint64][]byte                  // epoch → SFrame base key (kept for tests)
	partner  *wire.Mailbox                      // the callee device that took a one-to-one call
	partLeaf uint32
	heard    map[wire.Mailbox]bool // callee devices heard from (ringing or busy)
	busy     map[wire.Mailbox]bool
	ringStop *time.Timer
	rs       reassembler
	stats    CallStats
	newest   *echoState // the newest frame received, for echoes
	ended    bool
	lastLoad time.Time // when Send last had the group's epoch read from the profile
}

// echoState is what an echo (spec 12.8.3) reports of a received frame.
type echoState struct {
	source  uint32
	ts      uint64
	arrived time.Time
}

// callRegistry is a Client's calls and ringing invites.
type callRegistry struct {
	mu       sync.Mutex
	byID     map[string]*Call
	byHandle map[uint32]*Call
	ringing  map[string]*ringingCall
	answered map[string]uint32 // call → lowest leaf of an own device that accepted it
	timeout  time.Duration
	onCall   func(CallUpdate)
	dgram    sync.Once
}

// ringingCall is an invite that rings on this device.
type ringingCall struct {
	in    *IncomingCall
	timer *time.Timer
}

// SetRingTimeout sets how long a call rings unanswered (default
// wire.RingTimeout seconds): for calls this device starts and for invites
// it receives. Tests shorten it.
func (cl *Client) SetRingTimeout(d time.Duration) {
	cl.calls.mu.Lock()
	defer cl.calls.mu.Unlock()
	cl.calls.timeout = d
}

func (cl *Client) ringTimeout() time.Duration {
	cl.calls.mu.Lock()
	defer cl.calls.mu.Unlock()
	if cl.calls.timeout > 0 {
		return cl.calls.timeout
	}
	return wire.RingTimeout * time.Second
}

// inCall reports whether a call of this client has not ended.
func (cl *Client) inCall() bool {
	cl.calls.mu.Lock()
	defer cl.calls.mu.Unlock()
	return len(cl.calls.byID) > 0
}

func (cl *Client) findCall(id []byte) *Call {
	cl.calls.mu.Lock()
	defer cl.calls.mu.Unlock()
	return cl.calls.byID[string(id)]
}

// StartCall calls a user in the one-to-one chat with that user (created
// when there is none): it joins a new room at the homeserver and sends the
// invite. The call rings for the ring timeout; Connected is closed when a
// device of the callee accepts.
func (cl *Client) StartCall(ctx context.Context, to string, o CallOptions) (*Call, error) {
	to, err := wire.NormalizeAddress(to)
	if err != nil {
		return nil, err
	}
	row, err := cl.p.directGroup(ctx, to)
	if err != nil {
		return nil, err
	}
	var id []byte
	if row != nil {
		id = row.ID
	} else if id, err = cl.createGroup(ctx, wire.GroupKindDirect, "", []string{to}); err != nil {
		return nil, err
	}
	return cl.startCall(ctx, id, true, o)
}

// StartGroupCall starts a call in a group: it joins a new room and sends
// the invite to the group. Connected is closed at once.
func (cl *Client) StartGroupCall(ctx context.Context, group []byte, o CallOptions) (*Call, error) {
	row, _, err := cl.activeGroup(ctx, group)
	if err != nil {
		return nil, err
	}
	return cl.startCall(ctx, group, row.Kind == wire.GroupKindDirect, o)
}

func (cl *Client) startCall(ctx context.Context, group []byte, direct bool, o CallOptions) (*Call, error) {
	if cl.inCall() {
		return nil, ErrInCall
	}
	id, room, token := make([]byte, wire.CallIDLen), make([]byte, wire.RoomIDLen), make([]byte, wire.RoomTokenLen)
	rand.Read(id)
	rand.Read(room)
	rand.Read(token)
	role := roleMember
	if direct {
		role = roleCaller
	}
	c, err := cl.newCall(ctx, id, group, direct, role, o.media(), room, token)
	if err != nil {
		return nil, err
	}
	sig := &wire.CallSignal{CallID: id, Kind: wire.SignalInvite, Media: c.media, Room: room, Token: token}
	if err := cl.sendSignal(ctx, group, sig); err != nil {
		c.end(ctx, nil)
		return nil, err
	}
	if direct {
		c.mu.Lock()
		c.ringStop = time.AfterFunc(cl.ringTimeout(), c.noAnswer)
		c.mu.Unlock()
	} else {
		c.setConnected()
	}
	return c, nil
}

// AnswerCall takes an incoming call on this device: it joins the room and
// sends accept (one-to-one) or join (group).
func (cl *Client) AnswerCall(ctx context.Context, in *IncomingCall, o CallOptions) (*Call, error) {
	if cl.inCall() {
		return nil, ErrInCall
	}
	cl.stopRinging(in.ID)
	if in.Direct {
		cl.calls.mu.Lock()
		leaf, taken := cl.calls.answered[string(in.ID)]
		cl.calls.mu.Unlock()
		if taken {
			_, g, err := cl.activeGroup(ctx, in.Group)
			if err != nil {
				return nil, err
			}
			if leaf < uint32(g.OwnLeaf()) {
				return nil, ErrAnsweredElsewhere
			}
		}
	}
	return cl.takePart(ctx, in, o)
}

// takePart joins a call this device did not start.
func (cl *Client) takePart(ctx context.Context, in *IncomingCall, o CallOptions) (*Call, error) {
	role, kind := roleMember, uint64(wire.SignalJoin)
	if in.Direct {
		role, kind = roleCallee, wire.SignalAccept
	}
	c, err := cl.newCall(ctx, in.ID, in.Group, in.Direct, role, o.media(), in.Room, in.Token)
	if err != nil {
		return nil, err
	}
	caller := wire.Mailbox{Address: in.From, Device: in.Device}
	c.mu.Lock()
	c.parts[caller] = true
	c.mu.Unlock()
	if err := cl.sendSignal(ctx, in.Group, &wire.CallSignal{CallID: in.ID, Kind: kind, Media: c.media}); err != nil {
		c.end(ctx, nil)
		return nil, err
	}
	c.setConnected()
	return c, nil
}

// DeclineCall refuses an incoming call: it stops ringing here and sends
// decline, which ends the call for the caller and every callee device.
func (cl *Client) DeclineCall(ctx context.Context, in *IncomingCall) error {
	cl.stopRinging(in.ID)
	return cl.sendSignal(ctx, in.Group, &wire.CallSignal{CallID: in.ID, Kind: wire.SignalDecline})
}

// JoinCall joins the newest call of a group that this device received an
// invite for, at most 12 hours ago, and that some participant has not
// left (spec/12-calls.md section 12.2.2). It fails with ErrNoCall when
// there is none.
func (cl *Client) JoinCall(ctx context.Context, group []byte, o CallOptions) (*Call, error) {
	if cl.inCall() {
		return nil, ErrInCall
	}
	in, err := cl.runningCall(ctx, group)
	if err != nil {
		return nil, err
	}
	cl.stopRinging(in.ID)
	in.Direct = false // a group call is joined, never accepted
	return cl.takePart(ctx, in, o)
}

// runningCall finds the newest invite of a group whose participants have
// not all left, from the stored call messages.
func (cl *Client) runningCall(ctx context.Context, group []byte) (*IncomingCall, error) {
	msgs, err := cl.p.Messages(ctx)
	if err != nil {
		return nil, err
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		m := msgs[i]
		if m.Call == nil || m.Call.Kind != wire.SignalInvite || string(m.Group) != string(group) {
			continue
		}
		if time.Since(m.SentAt) > groupCallWindow {
			break
		}
		in := &IncomingCall{ID: m.Call.CallID, Group: m.Group, Direct: m.Direct, From: m.From, Device: m.FromDevice,
			Media: m.Call.Media, SentAt: m.SentAt, Room: m.Call.Room, Token: m.Call.Token}
		present := map[wire.Mailbox]bool{{Address: m.From, Device: m.FromDevice}: true}
		for _, n := range msgs[i+1:] {
			if n.Call == nil || string(n.Call.CallID) != string(m.Call.CallID) {
				continue
			}
			dev := wire.Mailbox{Address: n.From, Device: n.FromDevice}
			switch n.Call.Kind {
			case wire.SignalJoin, wire.SignalAccept:
				present[dev] = true
			case wire.SignalLeave, wire.SignalHangup:
				delete(present, dev)
			}
		}
		if len(present) > 0 {
			return in, nil
		}
	}
	return nil, ErrNoCall
}

// sendSignal sends a call signal to a group.
func (cl *Client) sendSignal(ctx context.Context, group []byte, sig *wire.CallSignal) error {
	err := cl.sendContent(ctx, group, &wire.Content{Type: wire.ContentCall, SentAt: uint64(time.Now().UnixMilli()), Call: sig})
	if err != nil {
		return fmt.Errorf("call signal: %w", err)
	}
	return nil
}

// newCall joins a room at the homeserver and registers the call.
func (cl *Client) newCall(ctx context.Context, id, group []byte, direct bool, role callRole, media uint64, room, token []byte) (*Call, error) {
	_, g, err := cl.activeGroup(ctx, group)
	if err != nil {
		return nil, err
	}
	domains := []string{}
	_, own := wire.SplitAddress(cl.id.Address)
	_, users := groupDevices(g)
	for _, u := range users {
		if _, d := wire.SplitAddress(u); d != own && !slices.Contains(domains, d) {
			domains = append(domains, d)
		}
	}
	c := &Call{cl: cl, id: id, group: group, direct: direct, role: role, media: media, room: room, token: token,
		start: time.Now(), frames: make(chan ReceivedFrame, 512), updates: make(chan CallUpdate, 64),
		connected: make(chan struct{}), done: make(chan struct{}), recv: sframe.NewMLSReceiver(),
		leaves: map[uint64]map[uint32]wire.Mailbox{}, parts: map[wire.Mailbox]bool{cl.id.Mailbox(): true},
		baseKeys: map[uint64][]byte{}, heard: map[wire.Mailbox]bool{}, busy: map[wire.Mailbox]bool{}}
	var src [4]byte
	rand.Read(src[:])
	c.source = binary.BigEndian.Uint32(src[:])
	c.leaf = uint32(g.OwnLeaf())
	c.sender = callSender{p: cl.p, group: group, leaf: c.leaf}
	if err := c.rekey(g); err != nil {
		return nil, err
	}
	cl.startDatagrams()
	var ok wire.CallJoinOK
	if err := cl.c.do(ctx, &wire.CallJoin{Room: room, Token: token, Domains: domains}, &ok); err != nil {
		return nil, fmt.Errorf("join the call room: %w", err)
	}
	c.handle = ok.Handle
	cl.calls.mu.Lock()
	defer cl.calls.mu.Unlock()
	if cl.calls.byID == nil {
		cl.calls.byID, cl.calls.byHandle = map[string]*Call{}, map[uint32]*Call{}
	}
	if _, dup := cl.calls.byID[string(id)]; dup {
		go cl.c.do(context.WithoutCancel(ctx), &wire.CallLeave{Handle: ok.Handle}, &wire.OK{})
		return nil, ErrInCall
	}
	cl.calls.byID[string(id)] = c
	cl.calls.byHandle[ok.Handle] = c
	return c, nil
}

// rekey takes the SFrame keys of the group's current epoch (spec 12.7).
func (c *Call) rekey(g *mls.Group) error {
	epoch := g.Epoch()
	base, err := g.Export(wire.ContextSFrame, nil, 16)
	if err != nil {
		return fmt.Errorf("SFrame base key: %w", err)
	}
	leaves := map[uint32]wire.Mailbox{}
	for _, m := range g.Members() {
		if mb, ok := memberDevice(m); ok {
			leaves[uint32(m.Leaf)] = mb
		}
	}
	c.mu.Lock()
	// A leaf may name another device in another epoch (a member removed,
	// another added in its place): frames are attributed by their epoch.
	c.leaves[epoch] = leaves
	held := c.recv.Epochs(time.Now())
	for e := range c.leaves {
		if e != epoch && !slices.Contains(held, e) {
			delete(c.leaves, e)
		}
	}
	if _, known := c.baseKeys[epoch]; known || epoch < c.epoch {
		if !known {
			c.baseKeys[epoch] = base
			c.recv.AddEpoch(epoch, base, time.Now())
		}
		c.mu.Unlock()
		return nil
	}
	c.baseKeys[epoch] = base
	c.recv.AddEpoch(epoch, base, time.Now())
	c.epoch = epoch
	c.mu.Unlock()
	// Send holds sendMu while it takes mu: never the other way round.
	c.sendMu.Lock()
	defer c.sendMu.Unlock()
	if err := c.sender.setEpoch(epoch, base); err != nil && !errors.Is(err, sframe.ErrUnknownKey) {
		return err
	}
	return nil
}

// groupChanged gives the calls of a group its new epoch, or ends them when
// this device is no longer a member.
func (cl *Client) groupChanged(ctx context.Context, g *mls.Group) {
	gid := g.GroupID()
	cl.calls.mu.Lock()
	var calls []*Call
	for _, c := range cl.calls.byID {
		if string(c.group) == string(gid) {
			calls = append(calls, c)
		}
	}
	cl.calls.mu.Unlock()
	for _, c := range calls {
		if g.Removed() {
			c.end(ctx, &CallUpdate{Kind: CallLeft, From: cl.id.Address, Device: cl.id.Device, Reason: wire.HangupFailed})
			continue
		}
		if err := c.rekey(g); err != nil {
			c.end(ctx, &CallUpdate{Kind: CallHungUp, From: cl.id.Address, Device: cl.id.Device, Reason: wire.HangupFailed})
		}
	}
}

// ID returns the call identifier.
func (c *Call) ID() []byte { return slices.Clone(c.id) }

// Group returns the identifier of the call's group.
func (c *Call) Group() []byte { return slices.Clone(c.group) }

// Source returns this device's source identifier in the call.
func (c *Call) Source() uint32 { return c.source }

// Timestamp returns the microseconds since the call began on this device,
// the clock of MediaFrame.Timestamp and of round-trip times.
func (c *Call) Timestamp() uint64 { return uint64(time.Since(c.start).Microseconds()) }

// Frames returns the media frames received, decrypted, in arrival order.
// A frame that finds the channel full is dropped and counted.
func (c *Call) Frames() <-chan ReceivedFrame { return c.frames }

// Updates returns this call's signalling: accepted, declined, busy,
// ringing remote, hung up, joined, left. An update that finds the channel
// full is dropped.
func (c *Call) Updates() <-chan CallUpdate { return c.updates }

// Connected is closed when a callee device accepted (one-to-one) or at
// once (a group call, or the callee's side).
func (c *Call) Connected() <-chan struct{} { return c.connected }

// Done is closed when the call ended on this device.
func (c *Call) Done() <-chan struct{} { return c.done }

// Participants returns the devices in the call as far as this device
// knows, as "address/device", sorted; this device included.
func (c *Call) Participants() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.participants()
}

func (c *Call) participants() []string {
	out := make([]string, 0, len(c.parts))
	for mb := range c.parts {
		out = append(out, fmt.Sprintf("%s/%d", mb.Address, mb.Device))
	}
	slices.Sort(out)
	return out
}

// Stats returns the call's counters.
func (c *Call) Stats() CallStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.FramesSent, s.FramesReceived = map[uint64]uint64{}, map[uint64]uint64{}
	for k, v := range c.stats.FramesSent {
		s.FramesSent[k] = v
	}
	for k, v := range c.stats.FramesReceived {
		s.FramesReceived[k] = v
	}
	s.RTT = slices.Clone(c.stats.RTT)
	s.Participants = len(c.parts)
	return s
}

// Hangup ends the call on this device: it sends hang-up (one-to-one) or
// leave (group) and leaves the room.
func (c *Call) Hangup(ctx context.Context) error {
	c.mu.Lock()
	ended := c.ended
	c.mu.Unlock()
	if ended {
		return nil
	}
	sig := &wire.CallSignal{CallID: c.id, Kind: wire.SignalHangup, Reason: wire.HangupNormal}
	if !c.direct {
		sig = &wire.CallSignal{CallID: c.id, Kind: wire.SignalLeave}
	}
	err := c.cl.sendSignal(ctx, c.group, sig)
	c.end(ctx, nil)
	return err
}

// noAnswer ends a call nobody accepted within the ring timeout.
func (c *Call) noAnswer() {
	select {
	case <-c.connected:
		return
	default:
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c.cl.sendSignal(ctx, c.group, &wire.CallSignal{CallID: c.id, Kind: wire.SignalHangup, Reason: wire.HangupNoAnswer})
	c.end(ctx, &CallUpdate{Kind: CallHungUp, From: c.cl.id.Address, Device: c.cl.id.Device, Reason: wire.HangupNoAnswer})
}

func (c *Call) setConnected() {
	c.connOnce.Do(func() { close(c.connected) })
}

// update queues an update of this call, dropped when Updates is full.
func (c *Call) update(u CallUpdate) {
	u.CallID, u.Group = c.id, c.group
	select {
	case c.updates <- u:
	default:
	}
}

// end ends the call on this device: it reports u (when not nil) as the
// last update, leaves the room and closes Done.
func (c *Call) end(ctx context.Context, u *CallUpdate) {
	c.doneOnce.Do(func() {
		c.mu.Lock()
		c.ended = true
		if c.ringStop != nil {
			c.ringStop.Stop()
		}
		c.mu.Unlock()
		cl := c.cl
		cl.calls.mu.Lock()
		if cl.calls.byID[string(c.id)] == c {
			delete(cl.calls.byID, string(c.id))
		}
		if cl.calls.byHandle[c.handle] == c {
			delete(cl.calls.byHandle, c.handle)
		}
		cl.calls.mu.Unlock()
		if u != nil {
			c.update(*u)
		}
		if c.handle != 0 || c.room != nil {
			lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			cl.c.do(lctx, &wire.CallLeave{Handle: c.handle}, &wire.OK{})
			cancel()
		}
		close(c.done)
	})
}
