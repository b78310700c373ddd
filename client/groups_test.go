package client_test

import (
	"bytes"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/server/servertest"
)

// user is a registered profile used by the tests.
type user struct {
	t   *testing.T
	dir string
	p   *client.Profile
	c   *client.Client
}

func register(t *testing.T, s *servertest.Server, addr string) *user {
	t.Helper()
	u := &user{t: t, dir: t.TempDir()}
	p, err := client.OpenProfile(u.dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := client.Register(t.Context(), p, client.RegisterOptions{Address: addr, Server: s.Addr, CAFile: s.CAFile}); err != nil {
		t.Fatal(err)
	}
	u.p = p
	u.connect()
	return u
}

func (u *user) connect() {
	u.t.Helper()
	c, err := client.Connect(u.t.Context(), u.p)
	if err != nil {
		u.t.Fatal(err)
	}
	u.c = c
	u.t.Cleanup(func() { u.c.Close(); u.p.Close() })
}

// receive runs Receive on a new connection (a connection has one push
// stream, so Receive runs once per connection).
func (u *user) receive(o client.ReceiveOptions) {
	u.t.Helper()
	u.c.Close()
	c, err := client.Connect(u.t.Context(), u.p)
	if err != nil {
		u.t.Fatal(err)
	}
	u.c = c
	if err := c.Receive(u.t.Context(), o); err != nil {
		u.t.Fatal(err)
	}
}

// recvUntil receives until want messages arrived or the deadline passed
// (federation relays asynchronously), and returns what arrived.
func (u *user) recvUntil(want int) []client.Message {
	u.t.Helper()
	var got []client.Message
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < want && time.Now().Before(deadline) {
		u.receive(client.ReceiveOptions{
			Wait:      100 * time.Millisecond,
			OnMessage: func(m client.Message) { got = append(got, m) },
			OnDrop:    func(id [16]byte, err error) { u.t.Logf("dropped %x: %v", id, err) },
		})
	}
	return got
}

// recvWhile receives until cond is false or the deadline passed.
func (u *user) recvWhile(cond func() bool) {
	u.t.Helper()
	for deadline := time.Now().Add(20 * time.Second); cond() && time.Now().Before(deadline); {
		u.receive(client.ReceiveOptions{Wait: 100 * time.Millisecond})
	}
}

func texts(ms []client.Message) []string {
	var out []string
	for _, m := range ms {
		out = append(out, m.From+": "+m.Text)
	}
	return out
}

// A one-to-one chat is a group of both users' devices, created by the
// first send and reused by both sides.
func TestDirectChat(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	ctx := t.Context()
	for _, text := range []string{"hello bob", "how are you?"} {
		if err := alice.c.Send(ctx, "bob@a.test", text); err != nil {
			t.Fatal(err)
		}
	}
	got := bob.recvUntil(2)
	if want := []string{"alice@a.test: hello bob", "alice@a.test: how are you?"}; !slices.Equal(texts(got), want) {
		t.Fatalf("bob got %q, want %q", texts(got), want)
	}
	if !got[0].Direct || !bytes.Equal(got[0].Group, got[1].Group) || got[0].MessageID == got[1].MessageID {
		t.Fatalf("messages %+v", got)
	}
	if err := bob.c.Send(ctx, "alice@a.test", "fine"); err != nil {
		t.Fatal(err)
	}
	if got := alice.recvUntil(1); len(got) != 1 || got[0].Text != "fine" {
		t.Fatalf("alice got %+v", got)
	}
	for _, u := range []*user{alice, bob} {
		gs, err := client.ProfileGroups(ctx, u.p)
		if err != nil || len(gs) != 1 || !gs[0].Direct || gs[0].Devices != 2 || gs[0].Epoch != 1 {
			t.Fatalf("groups %+v, %v", gs, err)
		}
	}
}

// A group spans three domains; a removed member receives nothing sent
// after its removal.
func TestGroupAcrossDomains(t *testing.T) {
	t.Parallel()
	ss := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test", "c.test")
	alice := register(t, ss["a.test"], "alice@a.test")
	bob := register(t, ss["b.test"], "bob@b.test")
	carol := register(t, ss["c.test"], "carol@c.test")
	ctx := t.Context()
	id, err := alice.c.CreateGroup(ctx, "trio", []string{"bob@b.test", "carol@c.test"})
	if err != nil {
		t.Fatal(err)
	}
	if err := alice.c.SendGroup(ctx, id, "hi both"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*user{bob, carol} {
		got := u.recvUntil(1)
		if len(got) != 1 || got[0].Text != "hi both" || got[0].From != "alice@a.test" || !bytes.Equal(got[0].Group, id) ||
			got[0].Direct || got[0].GroupName != "trio" {
			t.Fatalf("got %+v", got)
		}
	}
	if err := bob.c.SendGroup(ctx, id, "hi from b"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []*user{alice, carol} {
		if got := u.recvUntil(1); len(got) != 1 || got[0].Text != "hi from b" {
			t.Fatalf("got %+v", got)
		}
	}
	if err := alice.c.RemoveMember(ctx, id, "carol@c.test"); err != nil {
		t.Fatal(err)
	}
	if err := alice.c.SendGroup(ctx, id, "carol is gone"); err != nil {
		t.Fatal(err)
	}
	if got := bob.recvUntil(1); len(got) != 1 || got[0].Text != "carol is gone" {
		t.Fatalf("bob got %+v", got)
	}
	// Carol processes the commit that removed her.
	carol.recvWhile(func() bool {
		gs, err := client.ProfileGroups(ctx, carol.p)
		return err == nil && len(gs) == 1 && gs[0].Active
	})
	if err := carol.c.SendGroup(ctx, id, "still here?"); !errors.Is(err, client.ErrNotInGroup) {
		t.Fatalf("removed member sends: %v", err)
	}
	stored, err := carol.p.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range stored {
		if m.Text == "carol is gone" {
			t.Fatal("the removed member read a message sent after its removal")
		}
	}
}

// A linked device receives what is sent after it was linked and nothing
// sent before; what one device sends reaches the user's other device.
func TestLinkedDevice(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	ctx := t.Context()
	if err := alice.c.Send(ctx, "bob@a.test", "before the link"); err != nil {
		t.Fatal(err)
	}
	code, _, err := alice.c.CreateLink(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alice2 := &user{t: t, dir: t.TempDir()}
	if alice2.p, err = client.OpenProfile(alice2.dir); err != nil {
		t.Fatal(err)
	}
	id2, err := client.Register(ctx, alice2.p, client.RegisterOptions{Link: code.String(), Server: s.Addr, CAFile: s.CAFile})
	if err != nil {
		t.Fatal(err)
	}
	if id2.Address != "alice@a.test" || id2.Device != 2 {
		t.Fatalf("linked as %s device %d", id2.Address, id2.Device)
	}
	alice2.connect()
	// Alice's first device takes the proof and adds device 2 to the chat.
	linked := make(chan uint32, 1)
	alice.receive(client.ReceiveOptions{Wait: 100 * time.Millisecond, OnLinked: func(d uint32) { linked <- d }})
	select {
	case d := <-linked:
		if d != 2 {
			t.Fatalf("linked device %d", d)
		}
	default:
		t.Fatal("the link proof was not processed")
	}
	bob.recvUntil(1) // "before the link", then the commit adding alice's device 2
	if err := bob.c.Send(ctx, "alice@a.test", "after the link"); err != nil {
		t.Fatal(err)
	}
	if got := alice2.recvUntil(1); !slices.Equal(texts(got), []string{"bob@a.test: after the link"}) {
		t.Fatalf("the new device got %q", texts(got))
	}
	if got := alice.recvUntil(1); !slices.Equal(texts(got), []string{"bob@a.test: after the link"}) {
		t.Fatalf("the first device got %q", texts(got))
	}
	if err := alice.c.Send(ctx, "bob@a.test", "from device 1"); err != nil {
		t.Fatal(err)
	}
	if got := alice2.recvUntil(1); !slices.Equal(texts(got), []string{"alice@a.test: from device 1"}) || got[0].FromDevice != 1 {
		t.Fatalf("the other device got %+v", got)
	}
	if err := alice2.c.Send(ctx, "bob@a.test", "from device 2"); err != nil {
		t.Fatal(err)
	}
	if got := bob.recvUntil(2); !slices.Equal(texts(got), []string{"alice@a.test: from device 1", "alice@a.test: from device 2"}) {
		t.Fatalf("bob got %q", texts(got))
	}
	stored, err := alice2.p.Messages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range stored {
		if m.Text == "before the link" {
			t.Fatal("the new device read a message sent before it was linked")
		}
	}
}

// Two members who change a group at the same time (each commits in the
// same epoch without having seen the other's commit) end in the same
// epoch with the same authenticator, and the change of the losing commit
// is made again: every user ends in the group.
func TestConcurrentCommitsConverge(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	carol, dave := register(t, s, "carol@a.test"), register(t, s, "dave@a.test")
	ctx := t.Context()
	id, err := alice.c.CreateGroup(ctx, "race", []string{"bob@a.test"})
	if err != nil {
		t.Fatal(err)
	}
	bob.recvWhile(func() bool { gs, _ := client.ProfileGroups(ctx, bob.p); return len(gs) == 0 })
	// Both commit in epoch 1.
	if err := alice.c.AddMembers(ctx, id, []string{"carol@a.test"}); err != nil {
		t.Fatal(err)
	}
	if err := bob.c.AddMembers(ctx, id, []string{"dave@a.test"}); err != nil {
		t.Fatal(err)
	}
	users := []*user{alice, bob, carol, dave}
	converged := func() bool {
		var first *client.GroupInfo
		for _, u := range users {
			gs, err := client.ProfileGroups(ctx, u.p)
			if err != nil || len(gs) != 1 || !gs[0].Active || len(gs[0].Members) != 4 {
				return false
			}
			if first == nil {
				first = &gs[0]
			} else if gs[0].Epoch != first.Epoch || !bytes.Equal(gs[0].Authenticator, first.Authenticator) {
				return false
			}
		}
		return true
	}
	for deadline := time.Now().Add(30 * time.Second); !converged(); {
		if time.Now().After(deadline) {
			for _, u := range users {
				gs, _ := client.ProfileGroups(ctx, u.p)
				t.Logf("%s: %+v", u.dir, gs)
			}
			t.Fatal("the members did not converge")
		}
		for _, u := range users {
			u.receive(client.ReceiveOptions{Wait: 50 * time.Millisecond})
		}
	}
	// And the group works: a message from dave reaches carol.
	if err := dave.c.SendGroup(ctx, id, "all four of us"); err != nil {
		t.Fatal(err)
	}
	if got := carol.recvUntil(1); len(got) != 1 || got[0].Text != "all four of us" {
		t.Fatalf("carol got %+v", got)
	}
}
