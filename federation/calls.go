package federation

import (
	"context"

	"github.com/xchat-im/xchat/spec/wire"
)

// CallJoin links the local room of handle with the room of the same
// identifier on domain by fed-call-join (spec/12-calls.md section 12.4).
func (f *Federation) CallJoin(ctx context.Context, domain string, room, token []byte, handle uint32) (uint32, error) {
	return 0, wire.Errorf(wire.CodeUnavailable, "calls are not implemented yet")
}

// CallLeave unlinks this domain from the peer's room of peerHandle.
func (f *Federation) CallLeave(ctx context.Context, domain string, peerHandle uint32) error {
	return wire.Errorf(wire.CodeUnavailable, "calls are not implemented yet")
}

// SendPacket sends a call media packet to domain; it never blocks.
func (f *Federation) SendPacket(domain string, pkt []byte) bool { return false }
