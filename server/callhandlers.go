package server

import (
	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// callJoin answers call-join (spec/12-calls.md section 12.3).
func (c *conn) callJoin(dev *store.Device, r *wire.CallJoin) ([]byte, error) {
	if c.s.calls == nil {
		return nil, wire.Errorf(wire.CodeUnknownRequest, "calls are not relayed here")
	}
	if !c.qc.ConnectionState().SupportsDatagrams.Remote {
		return nil, wire.Errorf(wire.CodeMalformed, "the connection does not support DATAGRAMs (max_datagram_frame_size)")
	}
	h, err := c.s.calls.join(c, dev.Address, r)
	if err != nil {
		return nil, err
	}
	return wire.EncodeSuccess(&wire.CallJoinOK{Handle: h})
}

// callLeave answers call-leave: success also when the connection was not
// in the room.
func (c *conn) callLeave(r *wire.CallLeave) ([]byte, error) {
	if c.s.calls == nil {
		return nil, wire.Errorf(wire.CodeUnknownRequest, "calls are not relayed here")
	}
	c.s.calls.leave(c, r.Handle)
	return wire.EncodeSuccess(&wire.OK{})
}
