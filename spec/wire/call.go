package wire

import (
	"encoding/binary"
	"unicode/utf8"
)

// Call limits and constants of spec/12-calls.md.
const (
	CallIDLen          = 16 // bytes of a call identifier
	RoomIDLen          = 16 // bytes of a relay room identifier
	RoomTokenLen       = 32 // bytes of a room admission token
	MaxCallDomains     = 32 // other domains named by one call-join
	MaxCallPacket      = 1200
	CallPacketHeader   = 14                               // bytes of a media packet's header
	MaxPacketData      = MaxCallPacket - CallPacketHeader // bytes of SFrame ciphertext in one packet
	MaxCallFrame       = 131072                           // bytes of one frame's SFrame ciphertext
	MaxPacketFragments = (MaxCallFrame + MaxPacketData - 1) / MaxPacketData
	MaxCodecName       = 32     // bytes of a codec name
	RingTimeout        = 60     // seconds a call rings unanswered
	ReassemblyFrames   = 32     // newer frames of a source after which an incomplete frame is dropped
	ReplayWindow       = 128    // SFrame counters of a key a receiver checks for replay
	ReassemblyWindow   = 1000   // milliseconds a receiver waits for a frame's fragments
	CallRoomIdle       = 120    // seconds a room without a local member is kept (default policy)
	SFrameSuite        = 0x0004 // AES_128_GCM_SHA256_128 (RFC 9605 section 4.5)
	SFrameEpochBits    = 8      // E of the KID layout (RFC 9605 section 5.2)
	SFrameIndexBits    = 16     // S of the KID layout
	ContextSFrame      = "SFrame 1.0 Base Key"
	CallPastEpochs     = 4      // past epochs whose SFrame keys a receiver keeps
	CallEpochGrace     = 10_000 // milliseconds a past epoch's keys are kept
	MaxCallMembers     = 32     // devices of one server in one room (default policy)
	MaxCallRooms       = 4      // rooms the devices of one account are in at once (default policy)
	MaxCallFrameRate   = 200    // frames a second of one sending device (default policy)
	MaxCallPacketRate  = 2500   // packets a second of one sending device (default policy)
	MaxPeerRooms       = 1000   // rooms one origin domain has linked on a server (default policy)
)

// Call signal kinds (section 12.2).
const (
	SignalInvite  = 1
	SignalRinging = 2
	SignalAccept  = 3
	SignalDecline = 4
	SignalBusy    = 5
	SignalHangup  = 6
	SignalJoin    = 7
	SignalLeave   = 8
)

// Media bits of CallSignal.Media.
const (
	MediaAudio = 1
	MediaVideo = 2
)

// Hang-up reasons of CallSignal.Reason.
const (
	HangupNormal   = 1
	HangupNoAnswer = 2
	HangupFailed   = 3
)

// Media kinds of MediaFrame.Kind.
const (
	KindAudio = 1
	KindVideo = 2
)

// CallSignal is call signalling content (ContentCall), carried in the
// conversation's MLS group (spec/12-calls.md section 12.2).
type CallSignal struct {
	CallID []byte `cbor:"1,keyasint"`
	Kind   uint64 `cbor:"2,keyasint"`
	Media  uint64 `cbor:"3,keyasint,omitempty"` // invite, accept, join
	Room   []byte `cbor:"4,keyasint,omitempty"` // invite
	Token  []byte `cbor:"5,keyasint,omitempty"` // invite
	Reason uint64 `cbor:"6,keyasint,omitempty"` // hangup
}

// Validate checks the signal against the CDDL rule call-signal.
func (s *CallSignal) Validate() error {
	switch {
	case len(s.CallID) != CallIDLen:
		return Errorf(CodeMalformed, "call identifier of %d bytes", len(s.CallID))
	case s.Kind < SignalInvite || s.Kind > SignalLeave:
		return Errorf(CodeMalformed, "call signal kind %d", s.Kind)
	case s.Media > MediaAudio|MediaVideo:
		return Errorf(CodeMalformed, "call media %d", s.Media)
	case s.Reason > HangupFailed:
		return Errorf(CodeMalformed, "hang-up reason %d", s.Reason)
	}
	if s.Kind == SignalInvite {
		if len(s.Room) != RoomIDLen || len(s.Token) != RoomTokenLen {
			return Errorf(CodeMalformed, "invite with a room of %d bytes and a token of %d", len(s.Room), len(s.Token))
		}
		if s.Media == 0 {
			return Errorf(CodeMalformed, "invite without media")
		}
	} else if s.Room != nil || s.Token != nil {
		return Errorf(CodeMalformed, "room or token outside an invite")
	}
	return nil
}

// CallJoin asks the client's homeserver to admit the connection to a call
// room, creating the room when it does not exist, and to link it with the
// rooms of the same identifier on the other domains named.
type CallJoin struct {
	Header
	Room    []byte   `cbor:"1,keyasint"`
	Token   []byte   `cbor:"2,keyasint"`
	Domains []string `cbor:"3,keyasint"`
}

// CallJoinOK answers CallJoin with the room's handle, the first four bytes
// of every media packet of the room on this server.
type CallJoinOK struct {
	Header
	Handle uint32 `cbor:"1,keyasint"`
}

// CallLeave takes the connection out of the room of Handle.
type CallLeave struct {
	Header
	Handle uint32 `cbor:"1,keyasint"`
}

// FedCallJoin links the origin's room of the identifier Room with the
// listener's (section 12.4): Handle is the origin's handle of the room,
// which the listener writes into the packets it forwards to the origin.
type FedCallJoin struct {
	Header
	Room   []byte `cbor:"1,keyasint"`
	Token  []byte `cbor:"2,keyasint"`
	Handle uint32 `cbor:"3,keyasint"`
}

// FedCallJoinOK answers FedCallJoin with the listener's handle of the room.
type FedCallJoinOK struct {
	Header
	Handle uint32 `cbor:"1,keyasint"`
}

// FedCallLeave unlinks the origin from the listener's room of Handle (the
// listener's handle).
type FedCallLeave struct {
	Header
	Handle uint32 `cbor:"1,keyasint"`
}

func validRoom(room, token []byte) error {
	if len(room) != RoomIDLen {
		return Errorf(CodeMalformed, "room identifier of %d bytes", len(room))
	}
	if len(token) != RoomTokenLen {
		return Errorf(CodeMalformed, "room token of %d bytes", len(token))
	}
	return nil
}

func (r *CallJoin) Validate() error {
	if err := validRoom(r.Room, r.Token); err != nil {
		return err
	}
	for _, d := range r.Domains {
		if ValidateDomain(d) != nil {
			return Errorf(CodeInvalidAddress, "domain %q", d)
		}
	}
	if len(r.Domains) > MaxCallDomains {
		return Errorf(CodeLimitExceeded, "%d domains, at most %d", len(r.Domains), MaxCallDomains)
	}
	return nil
}

func (r *CallLeave) Validate() error    { return nil }
func (r *FedCallJoin) Validate() error  { return validRoom(r.Room, r.Token) }
func (r *FedCallLeave) Validate() error { return nil }

// MediaPacket is the layout of one QUIC DATAGRAM of call media (section
// 12.5): a 14-byte header the relays read, then a fragment of one frame's
// SFrame ciphertext, which they cannot.
type MediaPacket struct {
	Handle uint32 // the receiving server's room handle
	Source uint32 // the sending device's source identifier for the call
	Seq    uint32 // the frame's number from that source
	Index  uint8  // this fragment's index, 0 to Count-1
	Count  uint8  // fragments of the frame, 1 to MaxPacketFragments
	Data   []byte // the fragment
}

// AppendMediaPacket appends the packet's encoding to b.
func AppendMediaPacket(b []byte, p *MediaPacket) []byte {
	b = binary.BigEndian.AppendUint32(b, p.Handle)
	b = binary.BigEndian.AppendUint32(b, p.Source)
	b = binary.BigEndian.AppendUint32(b, p.Seq)
	b = append(b, p.Index, p.Count)
	return append(b, p.Data...)
}

// ParseMediaPacket parses a datagram. Data aliases b. It fails with a
// malformed error when b is shorter than the header or longer than
// MaxCallPacket, the fragment count is 0 or above MaxPacketFragments, the index
// is not below the count, or a fragment holds no data.
func ParseMediaPacket(b []byte) (MediaPacket, error) {
	if len(b) <= CallPacketHeader || len(b) > MaxCallPacket {
		return MediaPacket{}, Errorf(CodeMalformed, "media packet of %d bytes", len(b))
	}
	p := MediaPacket{
		Handle: binary.BigEndian.Uint32(b),
		Source: binary.BigEndian.Uint32(b[4:]),
		Seq:    binary.BigEndian.Uint32(b[8:]),
		Index:  b[12],
		Count:  b[13],
		Data:   b[CallPacketHeader:],
	}
	if p.Count == 0 || p.Count > MaxPacketFragments || p.Index >= p.Count {
		return MediaPacket{}, Errorf(CodeMalformed, "fragment %d of %d", p.Index, p.Count)
	}
	return p, nil
}

// PacketHandle returns the handle of a datagram without parsing the rest,
// and false when it is too short to hold one.
func PacketHandle(b []byte) (uint32, bool) {
	if len(b) < 4 {
		return 0, false
	}
	return binary.BigEndian.Uint32(b), true
}

// SetPacketHandle overwrites the handle of an encoded packet.
func SetPacketHandle(b []byte, h uint32) { binary.BigEndian.PutUint32(b, h) }

// FrameMetadata returns the SFrame metadata of a frame (section 12.7): its
// source and sequence number, authenticated with the frame.
func FrameMetadata(source, seq uint32) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b, source)
	binary.BigEndian.PutUint32(b[4:], seq)
	return b
}

// Fragments splits a frame's SFrame ciphertext into packet payloads of at
// most MaxPacketData bytes, all full but the last, and returns nil when
// it is empty or longer than MaxCallFrame.
func Fragments(ct []byte) [][]byte {
	if len(ct) == 0 || len(ct) > MaxCallFrame {
		return nil
	}
	var out [][]byte
	for len(ct) > 0 {
		n := min(len(ct), MaxPacketData)
		out = append(out, ct[:n])
		ct = ct[n:]
	}
	return out
}

// MediaFrame is the plaintext of one SFrame-protected media frame
// (section 12.6).
type MediaFrame struct {
	Kind      uint64   `cbor:"1,keyasint"`
	Codec     string   `cbor:"2,keyasint"`
	Timestamp uint64   `cbor:"3,keyasint"` // microseconds since the sender joined the call
	Payload   []byte   `cbor:"4,keyasint"`
	Echo      []uint64 `cbor:"5,keyasint,omitempty"` // [source, timestamp, held µs]
}

// Validate checks the frame against the CDDL rule media-frame.
func (f *MediaFrame) Validate() error {
	switch {
	case f.Kind != KindAudio && f.Kind != KindVideo:
		return Errorf(CodeMalformed, "media kind %d", f.Kind)
	case len(f.Codec) == 0 || len(f.Codec) > MaxCodecName || !utf8.ValidString(f.Codec):
		return Errorf(CodeMalformed, "codec name of %d bytes", len(f.Codec))
	case f.Echo != nil && len(f.Echo) != 3:
		return Errorf(CodeMalformed, "echo of %d values", len(f.Echo))
	}
	return nil
}

// DecodeMediaFrame decodes and validates a media frame's plaintext.
func DecodeMediaFrame(b []byte) (*MediaFrame, error) {
	f := new(MediaFrame)
	if err := decodeChecked(b, f); err != nil {
		return nil, err
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return f, nil
}
