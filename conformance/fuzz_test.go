package conformance

import (
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

// FuzzPushFrame feeds push frames, as a server under test could send them,
// through what the suite does with them: the strict decoder, then the
// generic look at each delivery's keys (test 7.12/10). Neither may panic,
// and a frame the strict decoder accepts must be readable generically.
func FuzzPushFrame(f *testing.F) {
	for _, p := range []any{
		&wire.CaughtUp{},
		&wire.Deliver{Deliveries: []wire.Delivery{{ID: make([]byte, 16), Sealed: []byte{1}, ReceivedAt: 1, Lane: 1}}},
	} {
		b, err := wire.EncodePush(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[1:]) // the payload; both frames are shorter than 64 bytes
	}
	f.Add([]byte{0xa2, 0x00, 0x18, 0x20, 0x01, 0x81, 0xa5, 0x01, 0x40, 0x02, 0x40, 0x03, 0x00, 0x04, 0x00, 0x05, 0x61, 0x78})
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) > wire.MaxFrame {
			return
		}
		m, err := wire.DecodePush(b)
		if err != nil {
			return
		}
		if _, ok := m.(*wire.Deliver); !ok {
			return
		}
		keys, err := deliveryKeys(b)
		if err != nil {
			t.Fatalf("a valid deliver frame is unreadable: %v", err)
		}
		if len(keys) < 4*len(m.(*wire.Deliver).Deliveries) {
			t.Fatalf("%d keys for %d deliveries", len(keys), len(m.(*wire.Deliver).Deliveries))
		}
	})
}
