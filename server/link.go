package server

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// Linking and removing devices (spec/05-accounts.md section 5.11).

// now returns the time of the server's clock for link tokens.
func (s *Server) now() time.Time {
	if s.cfg.Now != nil {
		return s.cfg.Now()
	}
	return time.Now()
}

// createLink answers create-link: a new single-use link token of the
// account, of which the store keeps only the hash.
func (c *conn) createLink(ctx context.Context, me store.Mailbox) ([]byte, error) {
	token := make([]byte, wire.LinkTokenLen)
	rand.Read(token)
	h := sha256.Sum256(token)
	now := c.s.now()
	// Whole seconds, so that the expiry stored is the one announced.
	expires := now.Truncate(time.Second).Add(wire.LinkTokenTTL)
	switch err := c.s.cfg.Store.CreateLink(ctx, me.Address, h[:], now, expires); {
	case errors.Is(err, store.ErrLimit):
		return nil, wire.Errorf(wire.CodeLimitExceeded, "at most %d unexpired link tokens per account", wire.MaxLinkTokens)
	case err != nil:
		return nil, fmt.Errorf("create link: %w", err)
	}
	c.log.Info("link token created", "device", me.Device)
	return wire.EncodeSuccess(&wire.CreateLinkOK{Token: token, Expires: uint64(expires.Unix())})
}

// registerLinked answers a register with a link token: it adds a device to
// an existing account, whatever the registration policy. An unknown
// account and a bad token take the same path, one store transaction, and
// give the same error.
func (c *conn) registerLinked(ctx context.Context, r *wire.Register) (*store.Device, []byte, error) {
	if err := c.checkDomain(r.Address); err != nil {
		return nil, nil, err
	}
	exp, err := c.exporter()
	if err != nil {
		return nil, nil, fmt.Errorf("exporter: %w", err)
	}
	if !ed25519.Verify(r.Keys.SigKey, wire.DeviceAuthMessage(r.Address, 0, exp), r.Signature) {
		return nil, nil, wire.Errorf(wire.CodeAuthFailed, "registration signature does not verify")
	}
	// The connection limit per account, checked before the device is made
	// (finishAuth does not refuse a device just made).
	if err := c.s.checkAccountFull(r.Address); err != nil {
		return nil, nil, err
	}
	h := sha256.Sum256(r.Link)
	now := c.s.now()
	d := store.Device{
		Address: r.Address, SigKey: r.Keys.SigKey, KEM: r.Keys.KEM, HPKEKey: r.Keys.HPKEKey,
		CreatedAt: time.Now(),
	}
	id, err := c.s.cfg.Store.LinkDevice(ctx, d, h[:], now)
	switch {
	case errors.Is(err, store.ErrLinkInvalid):
		return nil, nil, wire.Errorf(wire.CodeLinkInvalid, "link token unknown, used or expired")
	case errors.Is(err, store.ErrLimit):
		return nil, nil, wire.Errorf(wire.CodeLimitExceeded, "at most %d devices per account", wire.MaxDevicesPerAccount)
	case err != nil:
		return nil, nil, fmt.Errorf("register linked device: %w", err)
	}
	d.ID = id
	c.log.Info("device linked", "device", id)
	// Another device of the account may remove the new one before this
	// connection is authenticated as it: claim it, then see that it is
	// still there.
	c.claimDevice(store.Mailbox{Address: d.Address, Device: id})
	switch _, err := c.s.cfg.Store.Device(ctx, store.Mailbox{Address: d.Address, Device: id}); {
	case errors.Is(err, store.ErrUnknownDevice):
		return nil, nil, wire.Errorf(wire.CodeAuthFailed, "device %d was removed as it was linked", id)
	case err != nil:
		return nil, nil, fmt.Errorf("register linked device: %w", err)
	}
	resp, err := wire.EncodeSuccess(&wire.RegisterOK{Device: id})
	if err != nil {
		return nil, nil, err
	}
	return &d, resp, nil
}

// removeDevice answers remove-device: the device, its mailbox and key
// packages are deleted, and its connections closed.
func (c *conn) removeDevice(ctx context.Context, me store.Mailbox, r *wire.RemoveDevice) ([]byte, error) {
	mb := store.Mailbox{Address: me.Address, Device: r.Device}
	switch err := c.s.cfg.Store.RemoveDevice(ctx, mb); {
	case errors.Is(err, store.ErrUnknownDevice):
		return nil, wire.Errorf(wire.CodeUnknownDevice, "no device %d in the account", r.Device)
	case errors.Is(err, store.ErrLastDevice):
		return nil, wire.Errorf(wire.CodeLastDevice, "device %d is the account's only device", r.Device)
	case err != nil:
		return nil, fmt.Errorf("remove device: %w", err)
	}
	c.log.Info("device removed", "device", r.Device, "by", me.Device)
	c.s.forgetDevice(mb)
	c.s.disconnect(mb, c)
	return wire.EncodeSuccess(&wire.OK{})
}

// listenRemovals closes the connections of devices that other processes
// sharing the store removed, re-listening after failures until ctx ends.
func (s *Server) listenRemovals(ctx context.Context, n store.RemovalNotifier) {
	for ctx.Err() == nil {
		err := n.ListenRemovals(ctx, func(mb store.Mailbox) {
			s.forgetDevice(mb)
			s.disconnect(mb, nil)
		})
		if ctx.Err() != nil {
			return
		}
		s.log.Warn("device removal notifications interrupted", "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// forgetDevice drops a removed device from the device cache.
func (s *Server) forgetDevice(mb store.Mailbox) {
	s.devices.mu.Lock()
	delete(s.devices.m, mb)
	s.devices.mu.Unlock()
}

// disconnect closes this process's connections authenticated as the
// removed device mb, with the close code device_removed. Their requests
// are refused at once; self, the connection that asked for the removal, is
// closed after its response had time to reach the client. With self nil
// (a removal notified by the store, which may come before the removing
// request's response was sent) every connection is closed that way.
// Connections already being closed for the removal are left alone. A
// connection authenticating as mb fails its authentication
// (claimDevice).
func (s *Server) disconnect(mb store.Mailbox, self *conn) {
	var conns []*conn
	s.mu.Lock()
	for c := range s.conns {
		if c.matchRemoved(mb) {
			conns = append(conns, c)
		}
	}
	s.mu.Unlock()
	for _, c := range conns {
		if !c.removed.CompareAndSwap(false, true) {
			continue
		}
		c.stopPush()
		if self != nil && c != self {
			c.qc.CloseWithError(wire.CloseDeviceRemoved, "device removed")
			continue
		}
		go func() {
			t := time.NewTimer(drainWait)
			defer t.Stop()
			select {
			case <-c.qc.Context().Done():
			case <-t.C:
			}
			c.qc.CloseWithError(wire.CloseDeviceRemoved, "device removed")
		}()
	}
}
