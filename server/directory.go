package server

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// isLocal reports whether address is on this server's domain.
func (s *Server) isLocal(address string) bool {
	_, d := wire.SplitAddress(address)
	return d == s.cfg.Domain
}

// remoteLookup charges one request to another domain to the device's
// budget: each makes this server contact a peer, perhaps a new one.
func (c *conn) remoteLookup() error {
	d := c.authenticated()
	key := fmt.Sprintf("%s/%d", d.Address, d.ID)
	if ok, retry := c.s.lookups.Allow(key, time.Now()); !ok {
		return &wire.Error{Code: wire.CodeRateLimited, Message: "too many lookups on other domains", RetryAfter: retry}
	}
	return nil
}

// localLookup checks the budget of the device's account for lookups of
// this domain's key directory that name an unknown account or device (a
// bound on enumerating accounts). Once it is spent, every local
// get-devices and claim-key-package of the account gets rate_limited,
// whether or not its target exists, so that the answer reveals nothing;
// lookups that find their target spend nothing (lookupMissed).
func (c *conn) localLookup() error {
	if ok, retry := c.s.lookupMisses.Peek(c.authenticated().Address, time.Now()); !ok {
		lim := c.s.cfg.Limits.LookupMisses
		return &wire.Error{Code: wire.CodeRateLimited, RetryAfter: retry, Message: fmt.Sprintf(
			"too many lookups of unknown accounts or devices by this account (%d, then 1 per %s)", lim.Burst, lim.Interval)}
	}
	return nil
}

// lookupMissed spends one unit of the account's budget of lookups of
// unknown accounts or devices when err says the target does not exist.
func (c *conn) lookupMissed(err error) {
	if pe, ok := errors.AsType[*wire.Error](err); ok && (pe.Code == wire.CodeUnknownAccount || pe.Code == wire.CodeUnknownDevice) {
		c.s.lookupMisses.Take(c.authenticated().Address, time.Now())
	}
}

// getDevices answers get-devices, relaying it to the account's homeserver
// when the account is on another domain.
func (c *conn) getDevices(ctx context.Context, r *wire.GetDevices) ([]byte, error) {
	if !c.s.isLocal(r.Address) {
		if err := c.remoteLookup(); err != nil {
			return nil, err
		}
		var ok wire.GetDevicesOK
		_, domain := wire.SplitAddress(r.Address)
		if err := c.s.fed.Forward(ctx, domain, r, &ok); err != nil {
			return nil, err
		}
		return wire.EncodeSuccess(&ok)
	}
	if err := c.localLookup(); err != nil {
		return nil, err
	}
	ok, err := c.s.GetDevices(ctx, r)
	if err != nil {
		c.lookupMissed(err)
		return nil, err
	}
	return wire.EncodeSuccess(ok)
}

// GetDevices answers get-devices for a local account.
func (s *Server) GetDevices(ctx context.Context, r *wire.GetDevices) (*wire.GetDevicesOK, error) {
	if !s.isLocal(r.Address) {
		return nil, wire.Errorf(wire.CodeWrongDomain, "%s is not on %s", r.Address, s.cfg.Domain)
	}
	devs, err := s.cfg.Store.Devices(ctx, r.Address)
	if errors.Is(err, store.ErrUnknownAccount) {
		return nil, wire.Errorf(wire.CodeUnknownAccount, "%s", r.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("get devices: %w", err)
	}
	resp := &wire.GetDevicesOK{Devices: make([]wire.DeviceInfo, 0, len(devs))}
	for _, d := range devs {
		resp.Devices = append(resp.Devices, wire.DeviceInfo{
			ID:   d.ID,
			Keys: wire.DeviceKeys{SigKey: d.SigKey, KEM: d.KEM, HPKEKey: d.HPKEKey},
		})
	}
	return resp, nil
}

// claimKeyPackage answers claim-key-package, relaying it to the account's
// homeserver when the account is on another domain.
func (c *conn) claimKeyPackage(ctx context.Context, r *wire.ClaimKeyPackage) ([]byte, error) {
	if !c.s.isLocal(r.Address) {
		if err := c.remoteLookup(); err != nil {
			return nil, err
		}
		var ok wire.ClaimKeyPackageOK
		_, domain := wire.SplitAddress(r.Address)
		if err := c.s.fed.Forward(ctx, domain, r, &ok); err != nil {
			return nil, err
		}
		return wire.EncodeSuccess(&ok)
	}
	if err := c.localLookup(); err != nil {
		return nil, err
	}
	ok, err := c.s.claimKeyPackage(ctx, r, c.authenticated().Address)
	if err != nil {
		c.lookupMissed(err)
		return nil, err
	}
	return wire.EncodeSuccess(ok)
}

// ClaimKeyPackage answers claim-key-package for a local device, relayed
// from another domain: the requester is not known here (the origin domain
// limits its accounts), but the target device's claim budget applies.
func (s *Server) ClaimKeyPackage(ctx context.Context, r *wire.ClaimKeyPackage) (*wire.ClaimKeyPackageOK, error) {
	return s.claimKeyPackage(ctx, r, "")
}

// domainKey answers get-domain-key: this server's sender-certificate key,
// or a peer's, fetched over federation.
func (c *conn) domainKey(ctx context.Context, r *wire.GetDomainKey) ([]byte, error) {
	if r.Domain == c.s.cfg.Domain {
		return wire.EncodeSuccess(&wire.DomainKeyOK{Key: c.s.cfg.CertKey.Public().(ed25519.PublicKey)})
	}
	if err := c.remoteLookup(); err != nil {
		return nil, err
	}
	k, err := c.s.fed.DomainKey(ctx, r.Domain)
	if err != nil {
		return nil, err
	}
	return wire.EncodeSuccess(&wire.DomainKeyOK{Key: k})
}
