package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/spec/wire"
)

// explain's messages for failures the scripts cannot provoke on one
// homeserver; each keeps the error it explains in its chain.
func TestExplain(t *testing.T) {
	t.Parallel()
	a := &app{profile: "/p", self: "alice@a.test", device: 1, server: "127.0.0.1:7443", peers: []string{"bob@b.test"}}
	wrap := func(err error) error { return fmt.Errorf("look up bob@b.test: %w", err) }
	for _, c := range []struct {
		err  error
		want string
	}{
		{wrap(&wire.Error{Code: wire.CodeRateLimited, RetryAfter: 29500 * time.Millisecond}),
			"the homeserver limits requests from this device or address: try again in 30s"},
		{wrap(&wire.Error{Code: wire.CodeRateLimited, RetryAfter: 10 * time.Second, Message: "at most 64 connections per account are open at once; close one of the account's connections"}),
			"the homeserver refused: at most 64 connections per account are open at once; close one of the account's connections: try again in 10s"},
		{&client.SendError{Refused: map[wire.Mailbox]wire.Code{{Address: "bob@b.test", Device: 1}: wire.CodeOutboundFull}},
			"your homeserver's queue for other domains is full (it bounds what one account, and what one destination domain, may have waiting while b.test does not answer): try again later, once the queued messages are delivered or expire"},
		{wrap(wire.Errorf(wire.CodeUnavailable, "b.test cannot be reached")),
			"the homeserver of b.test cannot be reached from a.test right now: try again later"},
		{wrap(wire.ErrDomainRefused), "a.test does not exchange messages with b.test (a federation policy of one of the homeservers)"},
		{&client.SendError{Refused: map[wire.Mailbox]wire.Code{{Address: "bob@b.test", Device: 1}: wire.CodeRequestLaneClosed}},
			"bob@b.test does not accept messages from new contacts: they must write to you first"},
		{wrap(wire.ErrMailboxFull), "the recipient's mailbox is full: try again later"},
		{wrap(wire.Errorf(wire.CodeUnknownAccount, "bob@b.test")), "bob@b.test has no account on b.test"},
		{wrap(wire.Errorf(wire.CodeQuotaExceeded, "10 GiB per account")),
			"the file does not fit in what a.test stores for this account (10 GiB per account): files are kept 30 days after they are sent; try again once earlier ones expire"},
		{wrap(wire.Errorf(wire.CodeLimitExceeded, "at most 8 unfinished uploads per account")),
			"the homeserver refused: at most 8 unfinished uploads per account"},
		{fmt.Errorf("x: %w", context.DeadlineExceeded), "the homeserver at 127.0.0.1:7443 did not answer within 30s: try again later"},
		{&net.DNSError{Err: "no such host", Name: "h"}, "cannot find the host of the homeserver address 127.0.0.1:7443 (no such host): this profile's homeserver address comes from 'xchat register' ('xchat whoami' shows it)"},
		{fmt.Errorf("open: %w", client.ErrNoIdentity), "no account in the profile /p: run 'xchat register USER@DOMAIN --server HOST:PORT' first, or pass --profile"},
		{wrap(wire.ErrAuthFailed), "the homeserver does not accept this profile as device 1 of alice@a.test: the device was removed from the account; to use this account here, link a new profile ('xchat device link' on a device of the account)"},
	} {
		got := a.explain(c.err)
		if got.Error() != c.want {
			t.Errorf("explain(%v):\n got %q\nwant %q", c.err, got, c.want)
		}
		if !errors.Is(got, c.err) {
			t.Errorf("explain(%v) lost the error it explains", c.err)
		}
	}
	// Other errors are shown as they are.
	other := errors.New("profile: corrupt signature key")
	if got := a.explain(other); got != other {
		t.Errorf("explain(%v) = %v", other, got)
	}
}
