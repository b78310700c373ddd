package server_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// The copies of one send, in the mailboxes of several recipients and of the
// sender's own device, do not carry one received-at time: each envelope's
// is drawn on its own (spec/07-envelopes.md section 7.12, step 8), so that
// the times do not link the copies (spec/16-security.md section 16.11).
func TestCopiesOfOneSendHaveTheirOwnReceivedAt(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	names := []string{"alice@a.test", "bob@a.test", "carol@a.test", "dave@a.test", "erin@a.test"}
	devs := make([]*servertest.Device, len(names))
	for i, n := range names {
		devs[i] = servertest.NewDevice(t, n)
		if err := servertest.Dial(t, s).Register(devs[i], nil); err != nil {
			t.Fatal(err)
		}
	}
	send := servertest.Dial(t, s)
	if err := send.Authenticate(devs[0]); err != nil {
		t.Fatal(err)
	}
	// One send: a copy for each recipient and one for the sender's own
	// device.
	var envs []wire.Envelope
	for _, d := range devs {
		envs = append(envs, wire.Envelope{ID: servertest.RandomID(), To: wire.Mailbox{Address: d.Address, Device: d.ID}, Sealed: servertest.SealedOfLen(256)})
	}
	var ok wire.SendOK
	if err := send.Request(&wire.Send{Envelopes: envs}, &ok); err != nil {
		t.Fatal(err)
	}
	for i, code := range ok.Results {
		if code != wire.CodeOK {
			t.Fatalf("copy %d: %v", i, code)
		}
	}
	send.QC.CloseWithError(0, "")

	times := map[uint64][]string{}
	for i, d := range devs {
		r := servertest.Dial(t, s)
		if err := r.Authenticate(d); err != nil {
			t.Fatal(err)
		}
		got := pushed(t, r)
		if len(got) != 1 || !bytes.Equal(got[0].ID, envs[i].ID) {
			t.Fatalf("%s was pushed %d deliveries, want its copy", d.Address, len(got))
		}
		times[got[0].ReceivedAt] = append(times[got[0].ReceivedAt], d.Address)
	}
	if len(times) == 1 {
		t.Fatalf("all %d copies of one send have received-at %v: the time links them", len(devs), times)
	}
}

// The copies of one send queued for another domain do not carry one
// acceptance time either: the origin draws each one's (relay key 5, which
// the destination records as received-at) on its own.
func TestCopiesForAnotherDomainHaveTheirOwnAcceptedAt(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	a, b := fed["a.test"], fed["b.test"]
	alice := servertest.NewDevice(t, "alice@a.test")
	send := servertest.Dial(t, a)
	if err := send.Register(alice, nil); err != nil {
		t.Fatal(err)
	}
	var devs []*servertest.Device
	var envs []wire.Envelope
	for _, n := range []string{"bob@b.test", "carol@b.test", "dave@b.test", "erin@b.test"} {
		d := servertest.NewDevice(t, n)
		if err := servertest.Dial(t, b).Register(d, nil); err != nil {
			t.Fatal(err)
		}
		devs = append(devs, d)
		envs = append(envs, wire.Envelope{ID: servertest.RandomID(), To: wire.Mailbox{Address: n, Device: d.ID}, Sealed: servertest.SealedOfLen(256)})
	}
	var ok wire.SendOK
	if err := send.Request(&wire.Send{Envelopes: envs}, &ok); err != nil {
		t.Fatal(err)
	}
	for i, code := range ok.Results {
		if code != wire.CodeOK {
			t.Fatalf("copy %d: %v", i, code)
		}
	}
	times := map[uint64][]string{}
	for i, d := range devs {
		// The relay is asynchronous: connect until the copy is there.
		deadline := time.Now().Add(30 * time.Second)
		for {
			r := servertest.Dial(t, b)
			if err := r.Authenticate(d); err != nil {
				t.Fatal(err)
			}
			got := pushed(t, r)
			r.QC.CloseWithError(0, "")
			if len(got) == 1 && bytes.Equal(got[0].ID, envs[i].ID) {
				times[got[0].ReceivedAt] = append(times[got[0].ReceivedAt], d.Address)
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s did not receive its copy within 30 s", d.Address)
			}
			time.Sleep(50 * time.Millisecond) // polling the mailbox with a deadline
		}
	}
	if len(times) == 1 {
		t.Fatalf("all %d copies for b.test have received-at %v: the origin's acceptance time links them", len(devs), times)
	}
}
