package client

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"sync"
	"time"

	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/client/seal"
	"github.com/xchat-im/xchat/spec/wire"
)

// deliverPayload seals payload once for each target device and submits
// the envelopes, at most wire.MaxEnvelopesPerSend to a send request, each
// with the delivery token of its account (or through the request lane
// when there is none, or once more when the token was revoked). It
// returns once the homeserver accepted every envelope, or a *SendError
// naming the devices it refused. Devices the homeserver no longer lists
// (removed devices still in a group) are skipped.
func (cl *Client) deliverPayload(ctx context.Context, targets []wire.Mailbox, payload []byte) error {
	if len(targets) == 0 {
		return nil
	}
	cert, err := cl.senderCert(ctx)
	if err != nil {
		return err
	}
	type job struct {
		to   wire.Mailbox
		keys wire.DeviceKeys
	}

	byAddr := map[string][]wire.DeviceInfo{}
	var jobs []job
	for _, t := range targets {
		devs, ok := byAddr[t.Address]
		if !ok {
			if devs, err = cl.devices(ctx, t.Address); err != nil {
				return err
			}
			byAddr[t.Address] = devs
		}
		for _, d := range devs {
			if d.ID == t.Device {
				if err := d.Keys.Validate(); err != nil {
					return fmt.Errorf("%s device %d: %w", t.Address, d.ID, err)
				}
				jobs = append(jobs, job{t, d.Keys})
			}
		}
	}
	tokens := map[string][]byte{}
	for addr := range byAddr {
		if tokens[addr], err = cl.p.contactToken(ctx, addr); err != nil {
			return err
		}
	}
	refused := &SendError{Refused: map[wire.Mailbox]wire.Code{}}
	for attempt := 0; len(jobs) > 0; attempt++ {
		var retry []job
		targets := make([]sealTarget, len(jobs))
		for i, j := range jobs {
			targets[i] = sealTarget{To: j.to, Keys: j.keys, Token: tokens[j.to.Address]}
		}
		all, err := sealAll(seal.Sender{Cert: cert, SigKey: cl.id.SigKey}, targets, payload)
		if err != nil {
			return err
		}
		// A send request holds at most MaxEnvelopesPerSend envelopes and
		// must fit in one frame.
		for start, end := 0, 0; start < len(all); start = end {
			size := 0
			for end = start; end < len(all) && end-start < wire.MaxEnvelopesPerSend; end++ {
				n := len(all[end].Sealed) + envelopeOverhead
				if end > start && size+n > wire.MaxFrame-sendOverhead {
					break
				}
				size += n
			}
			envs, batch := all[start:end], jobs[start:end]
			var ok wire.SendOK
			if err := cl.c.do(ctx, &wire.Send{Envelopes: envs}, &ok); err != nil {
				return fmt.Errorf("send: %w", err)
			}
			if len(ok.Results) != len(envs) {
				return fmt.Errorf("send: %d results for %d envelopes", len(ok.Results), len(envs))
			}
			for i, code := range ok.Results {
				switch {
				case code == wire.CodeOK:
				case code == wire.CodeTokenInvalid && attempt == 0:
					retry = append(retry, batch[i])
				default:
					refused.Refused[batch[i].to] = code
				}
			}
		}
		for _, j := range retry {
			if tokens[j.to.Address] != nil {
				tokens[j.to.Address] = nil
				if err := cl.p.setContactToken(ctx, j.to.Address, nil); err != nil {
					return err
				}
			}
		}
		jobs = retry
	}
	if len(refused.Refused) > 0 {
		return refused
	}
	return nil
}

// flushOutbox sends what waits in the outbox, oldest first, fragmenting
// payloads too large for one envelope (spec/09-mls.md section 9.6). A
// payload leaves the outbox once the homeserver accepted or refused it for
// every target; when the homeserver cannot be reached it stays for the
// next connection. A copy for another device of this account that the
// homeserver refuses for a while (ownCopyPending) is not a failure: it
// stays in the outbox, is sent again by the next flush, for at most
// ownCopyRetention (then it is dropped), and Pending lists it. The other
// refusals are returned as one *SendError.
func (cl *Client) flushOutbox(ctx context.Context) error {
	items, err := cl.p.outbox(ctx)
	if err != nil {
		return err
	}
	refused := &SendError{Refused: map[wire.Mailbox]wire.Code{}}
	// Own devices that refused a copy in this flush: their later copies
	// wait without being tried, in order, so that a full mailbox costs
	// one envelope per flush, not one per waiting payload.
	held := map[wire.Mailbox]bool{}
	for _, it := range items {
		var targets, keep []wire.Mailbox
		for _, t := range it.Targets {
			if held[t] {
				keep = append(keep, t)
			} else {
				targets = append(targets, t)
			}
		}
		codes := map[wire.Mailbox]wire.Code{}
		frags, err := wire.Fragment(it.Payload)
		if err != nil {
			for _, t := range targets {
				codes[t] = wire.CodeOf(err)
			}
		}
		for _, f := range frags {
			err := cl.deliverPayload(ctx, targets, f)
			var se *SendError
			if errors.As(err, &se) {
				maps.Copy(codes, se.Refused)
				continue
			}
			if err != nil {
				return fmt.Errorf("%w (what was not sent stays queued and is sent at the next connection)", err)
			}
		}
		for mb, code := range codes {
			switch {
			case mb.Address != cl.id.Address || !ownCopyPending(code):
				refused.Refused[mb] = code
			case time.Since(it.Queued) < ownCopyRetention:
				held[mb] = true
				keep = append(keep, mb)
			}
			// An own copy refused for longer than ownCopyRetention is
			// given up without failing the send at hand, which is
			// another message: the device has not emptied its mailbox
			// for as long as a recipient holds what it cannot place.
		}
		if len(keep) > 0 {
			err = cl.p.update(ctx, func(tx *profile.Tx) error { return tx.SetOutTargets(it.ID, keep) })
		} else {
			err = cl.p.sent(ctx, it.ID)
		}
		if err != nil {
			return err
		}
	}
	if len(refused.Refused) > 0 {
		return refused
	}
	return nil
}

// ownCopyRetention bounds how long a copy for another device of this
// account waits in the outbox for its homeserver to take it: as long as
// a recipient keeps messages it cannot place yet (spec/09-mls.md section
// 9.6).
const ownCopyRetention = 7 * 24 * time.Hour

// ownCopyPending reports whether a refusal of a copy for another device of
// this account can end by itself (the device empties its mailbox, the
// account's request lane opens or refills): the copy is then kept and
// sent again, and the send is not reported as failed.
func ownCopyPending(code wire.Code) bool {
	switch code {
	case wire.CodeMailboxFull, wire.CodeRateLimited, wire.CodeRequestLaneClosed:
		return true
	}
	return false
}

// Pending returns the devices that copies of sent messages still wait
// for, in the outbox. After a send that returned nil these are devices of
// this account whose homeserver refused a copy for a while (their
// mailbox is full, for example): the copies are sent again with the next
// send or connection.
func (cl *Client) Pending(ctx context.Context) ([]wire.Mailbox, error) {
	items, err := cl.p.outbox(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[wire.Mailbox]bool{}
	for _, it := range items {
		for _, t := range it.Targets {
			seen[t] = true
		}
	}
	return sortedDevices(maps.Keys(seen)), nil
}

// Bytes a send request spends beyond the sealed bytes: per envelope (its
// identifier, mailbox, token and CBOR framing, with room to spare) and per
// request.
const (
	envelopeOverhead = 512
	sendOverhead     = 1024
)

// sealTarget is one recipient device of a payload.
type sealTarget struct {
	To    wire.Mailbox
	Keys  wire.DeviceKeys
	Token []byte // the delivery token of its account, or nil
}

// sealAll seals payload for each target, each envelope with a fresh
// identifier, on all processors (sealing is one X-Wing encapsulation and
// one signature per device).
func sealAll(sender seal.Sender, targets []sealTarget, payload []byte) ([]wire.Envelope, error) {
	envs := make([]wire.Envelope, len(targets))
	errs := make([]error, len(targets))
	workers := min(runtime.GOMAXPROCS(0), len(targets))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < len(targets); i += workers {
				t := targets[i]
				id := make([]byte, 16)
				rand.Read(id)
				sealed, err := seal.Seal(sender, id, t.To, t.Keys, payload)
				envs[i], errs[i] = wire.Envelope{ID: id, To: t.To, Token: t.Token, Sealed: sealed}, err
			}
		}()
	}
	wg.Wait()
	return envs, errors.Join(errs...)
}
