package client

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"slices"
	"strings"

	"github.com/xchat-im/xchat/spec/wire"
)

// SendError reports the devices that did not accept a message.
type SendError struct {
	Refused map[wire.Mailbox]wire.Code // device → result code
}

func (e *SendError) Error() string {
	var parts []string
	for _, mb := range e.devices() {
		parts = append(parts, fmt.Sprintf("%s device %d: %s", mb.Address, mb.Device, e.Refused[mb]))
	}
	return fmt.Sprintf("the homeserver did not accept the message for %s", strings.Join(parts, ", "))
}

func (e *SendError) devices() []wire.Mailbox {
	return sortedDevices(maps.Keys(e.Refused))
}

// sortedDevices returns devices sorted by address, then device.
func sortedDevices(devices iter.Seq[wire.Mailbox]) []wire.Mailbox {
	devs := slices.Collect(devices)
	slices.SortFunc(devs, func(a, b wire.Mailbox) int {
		if c := strings.Compare(a.Address, b.Address); c != 0 {
			return c
		}
		return cmp.Compare(a.Device, b.Device)
	})
	return devs
}

// Unwrap returns the protocol errors of the refused devices, so that
// errors.Is(err, wire.ErrRateLimited) works.
func (e *SendError) Unwrap() []error {
	var errs []error
	for _, mb := range e.devices() {
		errs = append(errs, &wire.Error{Code: e.Refused[mb]})
	}
	return errs
}

// devices returns the recipient's devices from its homeserver, or, when
// that homeserver cannot be reached, the list last seen, so that the
// message waits in the outbound queue of this device's homeserver.
func (cl *Client) devices(ctx context.Context, to string) ([]wire.DeviceInfo, error) {
	var resp wire.GetDevicesOK
	err := cl.c.do(ctx, &wire.GetDevices{Address: to}, &resp)
	if errors.Is(err, wire.ErrUnavailable) {
		devs, ok, serr := cl.p.savedDevices(ctx, to)
		if serr != nil {
			return nil, serr
		}
		if ok {
			return devs, nil
		}
	}
	if err != nil {
		return nil, fmt.Errorf("look up %s: %w", to, err)
	}
	if len(resp.Devices) == 0 {
		return nil, fmt.Errorf("%s has no devices", to)
	}
	if err := cl.p.saveDevices(ctx, to, resp.Devices); err != nil {
		return nil, err
	}
	return resp.Devices, nil
}
