package server

import (
	"context"
	"sync"

	"github.com/xchat-im/xchat/server/store"
)

// deviceCache keeps the devices that envelopes are admitted for, so that
// admission needs no store read per envelope. A device's keys do not change
// once registered; removeDevice (link.go) drops removed devices with
// forgetDevice, and whoever adds key rotation must invalidate entries too.
type deviceCache struct {
	mu sync.Mutex
	m  map[store.Mailbox]store.Device
}

// maxCachedDevices bounds the cache; past it the cache starts afresh.
const maxCachedDevices = 100000

// device returns a device from the cache or the store. Unknown devices are
// not cached, so a device registered later is found.
func (s *Server) device(ctx context.Context, mb store.Mailbox) (store.Device, error) {
	c := &s.devices
	c.mu.Lock()
	d, ok := c.m[mb]
	c.mu.Unlock()
	if ok {
		return d, nil
	}
	d, err := s.cfg.Store.Device(ctx, mb)
	if err != nil {
		return d, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= maxCachedDevices {
		c.m = make(map[store.Mailbox]store.Device)
	}
	c.m[mb] = d
	c.mu.Unlock()
	return d, nil
}
