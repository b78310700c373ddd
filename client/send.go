package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/xchat-im/xchat/spec/wire"
)

// SendError reports the devices of a recipient that did not accept a
// message.
type SendError struct {
	To      string
	Refused map[uint32]wire.Code // device → result code
}

func (e *SendError) Error() string {
	var parts []string
	for _, dev := range e.devices() {
		parts = append(parts, fmt.Sprintf("device %d: %s", dev, e.Refused[dev]))
	}
	return fmt.Sprintf("the homeserver did not accept the message for %s (%s)", e.To, strings.Join(parts, ", "))
}

func (e *SendError) devices() []uint32 {
	devs := slices.Collect(maps.Keys(e.Refused))
	slices.Sort(devs)
	return devs
}

// Unwrap returns the protocol errors of the refused devices, so that
// errors.Is(err, wire.ErrRateLimited) works.
func (e *SendError) Unwrap() []error {
	var errs []error
	for _, dev := range e.devices() {
		errs = append(errs, &wire.Error{Code: e.Refused[dev]})
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
