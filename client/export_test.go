package client

import (
	"context"
	"errors"
	"sync/atomic"

	"github.com/xchat-im/xchat/spec/wire"
)

// SetHooks sets the test hooks that run after a delivery is read (before it
// is stored) and after it is stored (before it is acknowledged).
func SetHooks(c *Client, afterReceive, afterStore func()) {
	c.afterReceive, c.afterStore = afterReceive, afterStore
}

// ErrInjected is the error FailEditLookupOnce injects.
var ErrInjected = errors.New("injected profile read failure")

// FailEditLookupOnce makes the next profile read of the message that a
// received edit or delete refers to fail with ErrInjected, once.
func FailEditLookupOnce(c *Client) {
	var done atomic.Bool
	c.readFault = func(read string) error {
		if read == readEditTarget && done.CompareAndSwap(false, true) {
			return ErrInjected
		}
		return nil
	}
}

// SendContent sends one content item to a group.
func SendContent(ctx context.Context, c *Client, group []byte, content *wire.Content) error {
	return c.sendContent(ctx, group, content)
}

// DomainKey looks up the sender-certificate key of a domain as the receive
// path does; skipped reports a lookup not made (the budget was spent).
func DomainKey(ctx context.Context, c *Client, domain string) (key []byte, skipped bool, err error) {
	k, err := c.domainKey(ctx, domain)
	var dk *domainKeyError
	return k, errors.As(err, &dk) && dk.skipped, err
}
