package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/xchat-im/xchat/client/seal"
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

// Send seals text for every device of the recipient and returns once the
// homeserver has durably accepted every envelope. It uses the delivery
// token the recipient gave this profile, or the request lane for a first
// contact; a token the recipient has revoked falls back to the request
// lane once.
func (cl *Client) Send(ctx context.Context, to, text string) error {
	to, err := wire.NormalizeAddress(to)
	if err != nil {
		return err
	}
	devices, err := cl.devices(ctx, to)
	if err != nil {
		return err
	}
	cert, err := cl.senderCert(ctx)
	if err != nil {
		return err
	}
	content, err := wire.Marshal(&wire.Content{Type: wire.ContentText, SentAt: uint64(time.Now().UnixMilli()), Text: &text})
	if err != nil {
		return err
	}
	payload, err := wire.Marshal(&wire.MLSPayload{Mode: wire.PayloadMLS, Message: content, Token: cl.id.Token})
	if err != nil {
		return err
	}
	token, err := cl.p.contactToken(ctx, to)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	pending := devices
	for attempt := 0; ; attempt++ {
		envs := make([]wire.Envelope, len(pending))
		for i, d := range pending {
			if err := d.Keys.Validate(); err != nil {
				return fmt.Errorf("%s device %d: %w", to, d.ID, err)
			}
			id := make([]byte, 16)
			rand.Read(id)
			mb := wire.Mailbox{Address: to, Device: d.ID}
			sealed, err := seal.Seal(seal.Sender{Cert: cert, SigKey: cl.id.SigKey}, id, mb, d.Keys, payload)
			if err != nil {
				return err
			}
			envs[i] = wire.Envelope{ID: id, To: mb, Token: token, Sealed: sealed}
		}
		var ok wire.SendOK
		if err := cl.c.do(ctx, &wire.Send{Envelopes: envs}, &ok); err != nil {
			return fmt.Errorf("send to %s: %w", to, err)
		}
		if len(ok.Results) != len(envs) {
			return fmt.Errorf("send to %s: %d results for %d envelopes", to, len(ok.Results), len(envs))
		}
		refused := map[uint32]wire.Code{}
		var retry []wire.DeviceInfo
		for i, code := range ok.Results {
			switch {
			case code == wire.CodeOK:
			case code == wire.CodeTokenInvalid && attempt == 0:
				retry = append(retry, pending[i])
			default:
				refused[pending[i].ID] = code
			}
		}
		if len(retry) > 0 {
			token, pending = nil, retry
			if err := cl.p.setContactToken(ctx, to, nil); err != nil {
				return fmt.Errorf("profile: %w", err)
			}
			continue
		}
		if len(refused) > 0 {
			return &SendError{To: to, Refused: refused}
		}
		return nil
	}
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
