package wire

import "crypto/sha256"

// Delivery lanes.
const (
	LaneToken   = 0 // admitted with a delivery token
	LaneRequest = 1 // first contact, without a token
	LaneNotice  = 2 // a notice from the device's own homeserver; Sealed holds an encoded Notice
)

// Notice tells a device that an envelope it submitted for another domain
// was not delivered.
type Notice struct {
	ID   []byte  `cbor:"1,keyasint"` // the envelope
	To   Mailbox `cbor:"2,keyasint"` // its recipient
	Code Code    `cbor:"3,keyasint"` // why
}

// NoticeID returns the delivery id of the notice about an envelope.
func NoticeID(id []byte, to Mailbox) []byte {
	h := sha256.Sum256(withContext(ContextNotice, id, to.Encode()))
	return h[:16]
}

// Deliver pushes waiting envelopes to a device.
type Deliver struct {
	Header
	Deliveries []Delivery `cbor:"1,keyasint"`
}

// Delivery is one envelope pushed to a device.
type Delivery struct {
	ID         []byte `cbor:"1,keyasint"`
	Sealed     []byte `cbor:"2,keyasint"`
	ReceivedAt uint64 `cbor:"3,keyasint"` // Unix milliseconds, server clock
	Lane       uint8  `cbor:"4,keyasint"` // 0 token, 1 request
	// Origin is the domain that relayed the envelope; empty (absent) for
	// an envelope of a local send (spec/07-envelopes.md section 7.14).
	Origin string `cbor:"5,keyasint,omitempty"`
}

// CaughtUp says that everything waiting at authentication was pushed.
type CaughtUp struct {
	Header
}

// UnknownPush is a well-formed push frame of a type this package does not
// know. Clients ignore it (spec/03-framing.md section 3.4).
type UnknownPush struct {
	Header
}

// EncodePush sets the frame's type and returns it.
func EncodePush(p any) ([]byte, error) {
	switch v := p.(type) {
	case *Deliver:
		v.Type = TypeDeliver
	case *CaughtUp:
		v.Type = TypeCaughtUp
	default:
		return nil, Errorf(CodeInternal, "not a push frame: %T", p)
	}
	return EncodeFrame(p)
}

// DecodePush decodes and validates a push frame payload: a *Deliver, a
// *CaughtUp, or an *UnknownPush for a type that a client must ignore.
func DecodePush(b []byte) (any, error) {
	t, err := peekType(b)
	if err != nil {
		return nil, err
	}
	switch t {
	case TypeDeliver:
		var d Deliver
		if err := decodeChecked(b, &d); err != nil {
			return nil, err
		}
		if len(d.Deliveries) == 0 || len(d.Deliveries) > MaxDeliveriesPerPush {
			return nil, Errorf(CodeMalformed, "%d deliveries, want 1 to %d", len(d.Deliveries), MaxDeliveriesPerPush)
		}
		for _, x := range d.Deliveries {
			if len(x.ID) != 16 || len(x.Sealed) == 0 || x.Lane > LaneNotice {
				return nil, Errorf(CodeMalformed, "invalid delivery")
			}
			if x.Origin != "" {
				if err := ValidateDomain(x.Origin); err != nil {
					return nil, Errorf(CodeMalformed, "delivery origin: %v", err)
				}
			}
		}
		return &d, nil
	case TypeCaughtUp:
		return &CaughtUp{Header{Type: TypeCaughtUp}}, nil
	}
	return &UnknownPush{Header{Type: t}}, nil
}
