package server

import "github.com/xchat-im/xchat/spec/wire"

// PeerCallJoin links origin to the local call room of the identifier room
// (spec/12-calls.md section 12.4).
func (s *Server) PeerCallJoin(origin string, room, token []byte, originHandle uint32) (uint32, error) {
	return 0, wire.Errorf(wire.CodeUnknownRequest, "calls are not relayed")
}

// PeerCallLeave unlinks origin from the local room of handle.
func (s *Server) PeerCallLeave(origin string, handle uint32) {}

// PeerPacket takes a call media packet that arrived from origin.
func (s *Server) PeerPacket(origin string, pkt []byte) {}
