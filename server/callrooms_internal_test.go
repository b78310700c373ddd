package server

import (
	"bytes"
	"context"
	"fmt"
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

// blockingFed is a Federation whose fed-call-join never answers before
// its context ends.
type blockingFed struct{ Federation }

func (blockingFed) CallJoin(ctx context.Context, _ string, _, _ []byte, _ uint32) (uint32, error) {
	<-ctx.Done()
	return 0, ctx.Err()
}

func (blockingFed) CallLeave(context.Context, string, uint32) error { return nil }

// A room links at most wire.MaxCallDomains other domains, however many
// different ones its members name in call-joins (a member that leaves and
// joins again naming new domains each time).
func TestCallRoomDomainsBounded(t *testing.T) {
	t.Parallel()
	r := testRelay(t)
	r.s.fed = blockingFed{}
	stay, churn := &conn{callOut: make(chan []byte, 1)}, &conn{callOut: make(chan []byte, 1)}
	room, token := bytes.Repeat([]byte{1}, wire.RoomIDLen), bytes.Repeat([]byte{2}, wire.RoomTokenLen)
	h, err := r.join(stay, "alice@a.test", &wire.CallJoin{Room: room, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		var domains []string
		for j := range wire.MaxCallDomains {
			domains = append(domains, fmt.Sprintf("d%d-%d.test", i, j))
		}
		if _, err := r.join(churn, "mallory@a.test", &wire.CallJoin{Room: room, Token: token, Domains: domains}); err != nil {
			t.Fatal(err)
		}
		r.leave(churn, h)
	}
	r.mu.Lock()
	n := len(r.rooms[h].pending) + len(r.rooms[h].links)
	r.mu.Unlock()
	if n > wire.MaxCallDomains {
		t.Fatalf("room links or is linking %d domains, want at most %d", n, wire.MaxCallDomains)
	}
}
