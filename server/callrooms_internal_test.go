package server

import (
	"bytes"
	"io"
	"log/slog"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

// testRelay returns a relay of a server of domain a.test that is not
// serving: enough for the room bookkeeping.
func testRelay(t *testing.T) *relay {
	t.Helper()
	s := &Server{cfg: Config{Domain: "a.test", Limits: Limits{}.withDefaults()}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
	r := newRelay(s)
	t.Cleanup(r.stop)
	return r
}

// A call-join handled after its connection left its rooms on close (the
// request ran concurrently with the connection's end) admits nothing:
// otherwise the dead connection stays a member, the room never closes and
// the account's rooms stay counted.
func TestCallJoinAfterLeaveAll(t *testing.T) {
	t.Parallel()
	r := testRelay(t)
	c := &conn{}
	r.leaveAll(c)
	req := &wire.CallJoin{Room: bytes.Repeat([]byte{1}, wire.RoomIDLen), Token: bytes.Repeat([]byte{2}, wire.RoomTokenLen)}
	if _, err := r.join(c, "alice@a.test", req); err == nil {
		t.Fatal("call-join after the connection left its rooms was admitted")
	}
	if n := r.openRooms.Load(); n != 0 {
		t.Fatalf("%d rooms open, want 0", n)
	}
	if n := r.accountRooms["alice@a.test"]; n != 0 {
		t.Fatalf("account in %d rooms, want 0", n)
	}
}
