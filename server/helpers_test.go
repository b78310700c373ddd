package server_test

import (
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/server/servertest"
)

// register creates an account with the reference client in a fresh profile.
func register(t *testing.T, s *servertest.Server, address string) *client.Profile {
	t.Helper()
	p, err := client.OpenProfile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := client.Register(servertest.Context(t), p, client.RegisterOptions{Address: address, Server: s.Addr, CAFile: s.CAFile}); err != nil {
		t.Fatalf("register %s: %v", address, err)
	}
	return p
}

func connect(t *testing.T, p *client.Profile) *client.Client {
	t.Helper()
	c, err := client.Connect(servertest.Context(t), p)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// receiveAll receives until nothing new arrives for a short while.
func receiveAll(t *testing.T, p *client.Profile) []client.Message {
	t.Helper()
	c := connect(t, p)
	var got []client.Message
	err := c.Receive(servertest.Context(t), client.ReceiveOptions{
		Wait:      300 * time.Millisecond,
		OnMessage: func(m client.Message) { got = append(got, m) },
		OnDrop:    func(_ [16]byte, err error) { t.Errorf("dropped envelope: %v", err) },
	})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	c.Close()
	return got
}
