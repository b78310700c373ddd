package postgres

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/xchat-im/xchat/server/store"
)

// notifyChannel is the channel Enqueue notifies and Listen listens on.
const notifyChannel = "xchat_mailbox"

// removalChannel is the channel RemoveDevice notifies and ListenRemovals
// listens on.
const removalChannel = "xchat_device_removed"

// listenPing is how long Listen waits for a notification before it checks
// that its connection still works, so that a silently broken connection
// (a network partition) is noticed in about this time.
const listenPing = 30 * time.Second

// Listen calls fn with the mailbox of every envelope stored by any Store on
// the database, this one included, until ctx ends (it then returns ctx's
// error), the store is closed (store.ErrClosed) or the listening connection
// fails (that error: the caller may listen again). Notifications sent before
// Listen connected are not delivered. fn runs on Listen's goroutine, one
// call at a time, and should return quickly.
//
// Listen holds its own connection, outside the pool.
func (s *Store) Listen(ctx context.Context, fn func(store.Mailbox)) error {
	return s.listen(ctx, notifyChannel, fn)
}

// ListenRemovals calls fn with every device that any Store on the database
// removed, this one included, as Listen does for envelopes.
func (s *Store) ListenRemovals(ctx context.Context, fn func(store.Mailbox)) error {
	return s.listen(ctx, removalChannel, fn)
}

// listen calls fn with the mailbox of every notification on channel.
func (s *Store) listen(ctx context.Context, channel string, fn func(store.Mailbox)) error {
	s.mu.Lock()
	if s.closed.Load() {
		s.mu.Unlock()
		return fmt.Errorf("postgres: listen: %w", store.ErrClosed)
	}
	s.listeners.Add(1)
	s.mu.Unlock()
	defer s.listeners.Done()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.stop, cancel)
	defer stop()
	fail := func(err error) error {
		switch {
		case s.stop.Err() != nil:
			return fmt.Errorf("postgres: listen: %w", store.ErrClosed)
		case ctx.Err() != nil:
			return ctx.Err()
		default:
			return fmt.Errorf("postgres: listen: %w", err)
		}
	}

	conn, err := pgx.ConnectConfig(ctx, s.pool.Config().ConnConfig.Copy())
	if err != nil {
		return fail(err)
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = conn.Close(cctx)
		ccancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+channel); err != nil {
		return fail(err)
	}
	s.log.Debug("postgres: listening for notifications", "channel", channel)
	for {
		wctx, wcancel := context.WithTimeout(ctx, listenPing)
		n, err := conn.WaitForNotification(wctx)
		wcancel()
		if err != nil {
			if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && !conn.IsClosed() {
				// Quiet for a while: check the connection.
				pctx, pcancel := context.WithTimeout(ctx, listenPing)
				err = conn.Ping(pctx)
				pcancel()
				if err == nil {
					continue
				}
			}
			return fail(err)
		}
		if n.Channel != channel {
			continue
		}
		mb, ok := parseMailbox(n.Payload)
		if !ok {
			s.log.Warn("postgres: malformed notification ignored", "channel", channel, "length", len(n.Payload))
			continue
		}
		fn(mb)
	}
}

// parseMailbox reads the payload "address device" of a notification.
func parseMailbox(payload string) (store.Mailbox, bool) {
	i := strings.LastIndexByte(payload, ' ')
	if i <= 0 {
		return store.Mailbox{}, false
	}
	dev, err := strconv.ParseUint(payload[i+1:], 10, 32)
	if err != nil {
		return store.Mailbox{}, false
	}
	return store.Mailbox{Address: payload[:i], Device: uint32(dev)}, true
}
