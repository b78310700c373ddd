package client_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// A profile read that fails while a received edit or delete is processed
// (the look-up of the message it refers to) stops processing: the envelope
// is not acknowledged and stays in the mailbox, and the next receive
// applies the edit or delete.
func TestEditLookupFailureIsRetried(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	ctx := t.Context()
	if err := alice.c.Send(ctx, "bob@a.test", "helo"); err != nil {
		t.Fatal(err)
	}
	got := bob.recvUntil(1)
	if len(got) != 1 || got[0].Text != "helo" {
		t.Fatalf("bob got %+v", got)
	}
	orig := got[0]
	fixed := "hello"
	for _, c := range []*wire.Content{
		{Type: wire.ContentEdit, SentAt: uint64(time.Now().UnixMilli()), Text: &fixed, Ref: orig.MessageID[:]},
		{Type: wire.ContentDelete, SentAt: uint64(time.Now().UnixMilli()), Ref: orig.MessageID[:]},
	} {
		if err := client.SendContent(ctx, alice.c, orig.Group, c); err != nil {
			t.Fatal(err)
		}
		if n := servertest.MailboxCount(t, s.DBPath()); n != 1 {
			t.Fatalf("content type %d: %d envelopes in the mailboxes, want 1", c.Type, n)
		}
		// The look-up fails once: Receive stops with the error, and
		// nothing is stored or acknowledged.
		bob.c.Close()
		cl, err := client.Connect(ctx, bob.p)
		if err != nil {
			t.Fatal(err)
		}
		bob.c = cl
		client.FailEditLookupOnce(cl)
		var shown []client.Message
		err = cl.Receive(ctx, client.ReceiveOptions{Wait: 100 * time.Millisecond,
			OnMessage: func(m client.Message) { shown = append(shown, m) }})
		if !errors.Is(err, client.ErrInjected) || len(shown) != 0 {
			t.Fatalf("content type %d: Receive gave %v and %d messages, want the injected error and none", c.Type, err, len(shown))
		}
		if n := servertest.MailboxCount(t, s.DBPath()); n != 1 {
			t.Fatalf("content type %d: %d envelopes in the mailboxes after the failed read, want 1 (not acknowledged)", c.Type, n)
		}
		// The read works again: the envelope comes again and is applied.
		got := bob.recvUntil(1)
		if len(got) != 1 || got[0].Type != int(c.Type) || !bytes.Equal(got[0].Ref, orig.MessageID[:]) || got[0].From != "alice@a.test" {
			t.Fatalf("content type %d: after the failure bob got %+v", c.Type, got)
		}
		if c.Type == wire.ContentEdit && got[0].Text != fixed {
			t.Fatalf("edit stored with text %q", got[0].Text)
		}
		if n := servertest.MailboxCount(t, s.DBPath()); n != 0 {
			t.Fatalf("content type %d: %d envelopes left after the retry", c.Type, n)
		}
	}
	stored, err := bob.p.Messages(ctx)
	if err != nil || len(stored) != 3 {
		t.Fatalf("bob stored %d messages (%v), want the text, the edit and the delete", len(stored), err)
	}
}
