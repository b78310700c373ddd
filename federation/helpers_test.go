package federation_test

import (
	"context"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/server/servertest"
)

// user is a registered account with its profile.
type user struct {
	t       *testing.T
	address string
	p       *client.Profile
}

func register(t *testing.T, s *servertest.Server, address string) *user {
	t.Helper()
	p, err := client.OpenProfile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := client.Register(servertest.Context(t), p, client.RegisterOptions{Address: address, Server: s.Addr, CAFile: s.CAFile}); err != nil {
		t.Fatalf("register %s: %v", address, err)
	}
	return &user{t: t, address: address, p: p}
}

// send sends text to another user and fails the test on error.
func (u *user) send(to, text string) {
	u.t.Helper()
	if err := u.trySend(to, text); err != nil {
		u.t.Fatalf("%s sends to %s: %v", u.address, to, err)
	}
}

func (u *user) trySend(to, text string) error {
	c, err := client.Connect(servertest.Context(u.t), u.p)
	if err != nil {
		return err
	}
	defer c.Close()
	return c.Send(servertest.Context(u.t), to, text)
}

// receiveUntil receives until n messages arrived or the deadline passes,
// and returns them; the relay is asynchronous, so a receiver waits for
// the messages it expects rather than for a fixed time.
func (u *user) receiveUntil(n int, deadline time.Duration) []client.Message {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(servertest.Context(u.t), deadline)
	defer cancel()
	var got []client.Message
	for len(got) < n && ctx.Err() == nil {
		c, err := client.Connect(ctx, u.p)
		if err != nil {
			break
		}
		rctx, rcancel := context.WithCancel(ctx)
		err = c.Receive(rctx, client.ReceiveOptions{
			Wait: 2 * time.Second,
			OnMessage: func(m client.Message) {
				got = append(got, m)
				if len(got) >= n {
					rcancel()
				}
			},
			OnDrop: func(_ [16]byte, err error) { u.t.Errorf("%s dropped an envelope: %v", u.address, err) },
		})
		rcancel()
		c.Close()
		_ = err
	}
	return got
}

// receiveAll receives what is waiting, until nothing new arrives for a
// short while.
func (u *user) receiveAll() []client.Message {
	u.t.Helper()
	c, err := client.Connect(servertest.Context(u.t), u.p)
	if err != nil {
		u.t.Fatal(err)
	}
	defer c.Close()
	var got []client.Message
	if err := c.Receive(servertest.Context(u.t), client.ReceiveOptions{
		Wait:      500 * time.Millisecond,
		OnMessage: func(m client.Message) { got = append(got, m) },
	}); err != nil {
		u.t.Fatal(err)
	}
	return got
}
