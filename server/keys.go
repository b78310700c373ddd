package server

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// Claim limits of key packages (spec/06-key-directory.md sections 6.4 and
// 6.5).

// claimKeyPackage answers claim-key-package for a local device on behalf
// of requester, a local account, or "" for a claim relayed from another
// domain. A one-time package is handed out only while both the requester's
// and the target device's budgets of one-time claims last; past either, the
// claimant gets the device's last-resort package, and the pool is not
// drained further. A device without a last-resort package then gives
// rate_limited.
func (s *Server) claimKeyPackage(ctx context.Context, r *wire.ClaimKeyPackage, requester string) (*wire.ClaimKeyPackageOK, error) {
	if !s.isLocal(r.Address) {
		return nil, wire.Errorf(wire.CodeWrongDomain, "%s is not on %s", r.Address, s.cfg.Domain)
	}
	mb := store.Mailbox{Address: r.Address, Device: r.Device}
	target := fmt.Sprintf("%s/%d", mb.Address, mb.Device)
	now := time.Now()
	limit := ""
	var retry time.Duration
	if ok, after := s.claimsTarget.Peek(target, now); !ok {
		lim := s.cfg.Limits.ClaimsPerTarget
		limit, retry = fmt.Sprintf("one-time key packages claimed of one device (%d, then 1 per %s)", lim.Burst, lim.Interval), after
	} else if requester != "" {
		if ok, after := s.claimsRequester.Peek(requester, now); !ok {
			lim := s.cfg.Limits.ClaimsPerRequester
			limit, retry = fmt.Sprintf("one-time key packages claimed by one account (%d, then 1 per %s)", lim.Burst, lim.Interval), after
		}
	}
	if limit == "" {
		kp, lastResort, err := s.cfg.Store.ClaimKeyPackage(ctx, mb)
		if err != nil {
			return nil, claimError(mb, err)
		}
		if !lastResort {
			s.claimsTarget.Take(target, now)
			if requester != "" {
				s.claimsRequester.Take(requester, now)
			}
		}
		return &wire.ClaimKeyPackageOK{KeyPackage: kp, LastResort: lastResort}, nil
	}
	kp, err := s.cfg.Store.LastResortKeyPackage(ctx, mb)
	if errors.Is(err, store.ErrNoKeyPackage) {
		return nil, &wire.Error{Code: wire.CodeRateLimited, RetryAfter: retry,
			Message: fmt.Sprintf("the limit on %s is reached, and %s device %d has no last-resort key package", limit, mb.Address, mb.Device)}
	}
	if err != nil {
		return nil, claimError(mb, err)
	}
	return &wire.ClaimKeyPackageOK{KeyPackage: kp, LastResort: true}, nil
}

// claimError turns a store error of a claim into the answer.
func claimError(mb store.Mailbox, err error) error {
	switch {
	case errors.Is(err, store.ErrNoKeyPackage):
		return wire.Errorf(wire.CodeNoKeyPackage, "%s device %d has no key package", mb.Address, mb.Device)
	case errors.Is(err, store.ErrUnknownDevice):
		return wire.Errorf(wire.CodeUnknownDevice, "%s device %d", mb.Address, mb.Device)
	}
	return fmt.Errorf("claim key package: %w", err)
}
