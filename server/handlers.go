package server

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// handle answers one decoded request with a response frame, or returns an
// error to send as an error frame. Bytes of the frame budgets held for the
// response are recorded in hold.
func (c *conn) handle(ctx context.Context, hold *responseHold, req wire.Request) ([]byte, error) {
	switch r := req.(type) {
	case *wire.ServerInfo:
		return c.serverInfo()
	case *wire.Register:
		return c.register(ctx, r)
	case *wire.Authenticate:
		return c.authenticate(ctx, r)
	}
	dev := c.authenticated()
	if dev == nil {
		return nil, wire.Errorf(wire.CodeUnauthenticated, "authenticate first")
	}
	if c.removed.Load() {
		return nil, wire.Errorf(wire.CodeUnauthenticated, "this device was removed")
	}
	me := store.Mailbox{Address: dev.Address, Device: dev.ID}
	switch r := req.(type) {
	case *wire.GetDevices:
		return c.getDevices(ctx, r)
	case *wire.GetDomainKey:
		return c.domainKey(ctx, r)
	case *wire.PublishKeyPackages:
		return c.publishKeyPackages(ctx, me, r)
	case *wire.ClaimKeyPackage:
		return c.claimKeyPackage(ctx, r)
	case *wire.Send:
		return c.send(ctx, me, r)
	case *wire.Ack:
		return c.ack(ctx, me, r)
	case *wire.SetDeliveryPolicy:
		return c.setDeliveryPolicy(ctx, me, r)
	case *wire.GetSenderCert:
		return c.senderCert(ctx, dev)
	case *wire.CreateLink:
		return c.createLink(ctx, me)
	case *wire.RemoveDevice:
		return c.removeDevice(ctx, me, r)
	case *wire.BlobCreate:
		return c.blobCreate(ctx, me, r)
	case *wire.BlobPut:
		return c.blobPut(ctx, me, r)
	case *wire.BlobStatus:
		return c.blobStatus(ctx, me, r)
	case *wire.BlobFinish:
		return c.blobFinish(ctx, me, r)
	case *wire.BlobGet:
		return c.blobGet(ctx, hold, r)
	case *wire.CallJoin:
		return c.callJoin(dev, r)
	case *wire.CallLeave:
		return c.callLeave(r)
	}
	return nil, wire.Errorf(wire.CodeUnknownRequest, "%T", req)
}

func (c *conn) serverInfo() ([]byte, error) {
	return wire.EncodeSuccess(c.s.ServerInfo())
}

// ServerInfo returns this server's server-info answer. It implements
// federation.Local.
func (s *Server) ServerInfo() *wire.ServerInfoOK {
	ok := &wire.ServerInfoOK{
		Domain:       s.cfg.Domain,
		CertKey:      s.cfg.CertKey.Public().(ed25519.PublicKey),
		Registration: uint8(s.cfg.Registration),
		Limits: wire.Limits{
			MaxFrame:            wire.MaxFrame,
			MaxSealed:           wire.XWingEncLen + wire.MaxBucket + wire.AEADTagLen,
			MaxEnvelopesPerSend: wire.MaxEnvelopesPerSend,
			MaxIDsPerAck:        wire.MaxIDsPerAck,
			MaxKeyPackages:      wire.MaxKeyPackagesStored,
			MaxKeyPackageLen:    wire.MaxKeyPackageLen,
			RetentionSeconds:    uint64(wire.Retention / time.Second),
			MailboxMaxEnvelopes: wire.MailboxMaxEnvelopes,
		},
	}
	// The registration limit, so that clients and test harnesses can pace
	// themselves; none when registrations are not limited.
	if r := s.cfg.Limits.Registrations; r.Burst >= 0 {
		ok.Limits.RegistrationBurst = uint64(r.Burst)
		ok.Limits.RegistrationIntervalMs = uint64(r.Interval / time.Millisecond)
	}
	// The blob limits (spec/11-files.md section 11.8); the quota and the
	// unfinished uploads only when the operator set such a limit.
	l := s.cfg.Limits
	ok.Limits.MaxBlobSize = wire.MaxBlobSize
	ok.Limits.BlobRetentionSeconds = uint64(l.BlobRetention / time.Second)
	ok.Limits.UploadLifetimeSeconds = uint64(l.UploadLifetime / time.Second)
	if l.BlobQuota > 0 {
		ok.Limits.BlobQuota = uint64(l.BlobQuota)
	}
	if l.MaxUnfinished > 0 {
		ok.Limits.MaxUnfinishedUploads = uint64(l.MaxUnfinished)
	}
	// The call limits (spec/12-calls.md section 12.10), when calls are
	// relayed.
	if s.calls != nil {
		ok.Limits.MaxCallMembers = uint64(l.MaxCallMembers)
		ok.Limits.MaxCallRooms = math.MaxInt32
		if l.MaxCallRooms > 0 {
			ok.Limits.MaxCallRooms = uint64(l.MaxCallRooms)
		}
	}
	return ok
}

// exporter returns the connection's device-authentication exporter value.
func (c *conn) exporter() ([]byte, error) {
	cs := c.qc.ConnectionState().TLS
	return cs.ExportKeyingMaterial(wire.ExporterLabel, nil, 32)
}

func (c *conn) checkDomain(address string) error {
	if _, d := wire.SplitAddress(address); d != c.s.cfg.Domain {
		return wire.Errorf(wire.CodeWrongDomain, "%s is not on %s", address, c.s.cfg.Domain)
	}
	return nil
}

func (c *conn) register(ctx context.Context, r *wire.Register) ([]byte, error) {
	if err := c.beginAuth(); err != nil {
		return nil, err
	}
	defer c.endAuth()
	if ok, retry := c.s.registrations.Allow(c.addr, time.Now()); !ok {
		return nil, &wire.Error{Code: wire.CodeRateLimited, Message: "too many registrations from this address", RetryAfter: retry}
	}
	if r.Link != nil {
		dev, resp, err := c.registerLinked(ctx, r)
		if err != nil {
			return nil, err
		}
		if err := c.finishAuth(dev, true); err != nil {
			return nil, err
		}
		return resp, nil
	}
	switch c.s.cfg.Registration {
	case RegistrationClosed:
		return nil, wire.Errorf(wire.CodeRegistrationClosed, "registration is closed on %s", c.s.cfg.Domain)
	case RegistrationInvite:
		if r.Invite == nil {
			return nil, wire.Errorf(wire.CodeInviteInvalid, "registration on %s needs an invite", c.s.cfg.Domain)
		}
	}
	if err := c.checkDomain(r.Address); err != nil {
		return nil, err
	}
	exp, err := c.exporter()
	if err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	if !ed25519.Verify(r.Keys.SigKey, wire.DeviceAuthMessage(r.Address, 0, exp), r.Signature) {
		return nil, wire.Errorf(wire.CodeAuthFailed, "registration signature does not verify")
	}
	var invite []byte
	if c.s.cfg.Registration == RegistrationInvite {
		h := sha256.Sum256(r.Invite)
		invite = h[:]
	}
	d := store.Device{
		Address: r.Address, ID: 1, SigKey: r.Keys.SigKey, KEM: r.Keys.KEM, HPKEKey: r.Keys.HPKEKey,
		CreatedAt: time.Now(),
	}
	switch err := c.s.cfg.Store.CreateAccount(ctx, d, invite); {
	case errors.Is(err, store.ErrAccountExists):
		return nil, wire.Errorf(wire.CodeAccountExists, "%s is taken", r.Address)
	case errors.Is(err, store.ErrInviteInvalid):
		return nil, wire.Errorf(wire.CodeInviteInvalid, "invite unknown, used or expired")
	case err != nil:
		return nil, fmt.Errorf("register: %w", err)
	}
	c.log.Info("account registered")
	// Nobody else can remove the only device of a new account.
	c.claimDevice(store.Mailbox{Address: d.Address, Device: d.ID})
	if err := c.finishAuth(&d, true); err != nil {
		return nil, err
	}
	return wire.EncodeSuccess(&wire.RegisterOK{Device: 1})
}

// dummyKey stands in for the key of an unknown device, so that a failed
// authentication costs the same whether or not the device exists.
var dummyKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)

// authenticate answers authenticate. Failed attempts are counted per
// source address and per account named; past either budget, attempts are
// refused before any work (spec/05-accounts.md section 5.7).
func (c *conn) authenticate(ctx context.Context, r *wire.Authenticate) ([]byte, error) {
	if err := c.beginAuth(); err != nil {
		return nil, err
	}
	defer c.endAuth()
	now := time.Now()
	if ok, retry := c.s.authFailAddr.Peek(c.addr, now); !ok {
		return nil, &wire.Error{Code: wire.CodeRateLimited, RetryAfter: retry,
			Message: "too many failed authentications from this address"}
	}
	if ok, retry := c.s.authFailAccount.Peek(r.Address, now); !ok {
		return nil, &wire.Error{Code: wire.CodeRateLimited, RetryAfter: retry,
			Message: "too many failed authentications of this account"}
	}
	resp, err := c.authenticateDevice(ctx, r)
	if pe, ok := errors.AsType[*wire.Error](err); ok && pe.Code == wire.CodeAuthFailed {
		c.s.authFailAddr.Take(c.addr, now)
		c.s.authFailAccount.Take(r.Address, now)
	}
	return resp, err
}

func (c *conn) authenticateDevice(ctx context.Context, r *wire.Authenticate) ([]byte, error) {
	var dev *store.Device
	key := dummyKey
	if c.checkDomain(r.Address) == nil {
		mb := store.Mailbox{Address: r.Address, Device: r.Device}
		// Claimed before the store is read: a removal that commits after
		// the read makes finishAuth fail.
		c.claimDevice(mb)
		d, err := c.s.cfg.Store.Device(ctx, mb)
		switch {
		case err == nil:
			key, dev = d.SigKey, &d
		case !errors.Is(err, store.ErrUnknownDevice):
			return nil, fmt.Errorf("authenticate: %w", err)
		}
	}
	exp, err := c.exporter()
	if err != nil {
		return nil, fmt.Errorf("exporter: %w", err)
	}
	if !ed25519.Verify(key, wire.DeviceAuthMessage(r.Address, r.Device, exp), r.Signature) || dev == nil {
		return nil, wire.Errorf(wire.CodeAuthFailed, "device authentication failed")
	}
	if err := c.finishAuth(dev, false); err != nil {
		return nil, err
	}
	return wire.EncodeSuccess(&wire.OK{})
}

func (c *conn) publishKeyPackages(ctx context.Context, me store.Mailbox, r *wire.PublishKeyPackages) ([]byte, error) {
	n, err := c.s.cfg.Store.PublishKeyPackages(ctx, me, r.OneTime, r.LastResort)
	if errors.Is(err, store.ErrLimit) {
		return nil, wire.Errorf(wire.CodeLimitExceeded, "at most %d key packages stored per device", wire.MaxKeyPackagesStored)
	}
	if err != nil {
		return nil, fmt.Errorf("publish key packages: %w", err)
	}
	return wire.EncodeSuccess(&wire.PublishKeyPackagesOK{Stored: uint64(n)})
}

func (c *conn) ack(ctx context.Context, me store.Mailbox, r *wire.Ack) ([]byte, error) {
	ids := make([]store.EnvelopeID, len(r.IDs))
	for i, id := range r.IDs {
		copy(ids[i][:], id)
	}
	if err := c.s.cfg.Store.Ack(ctx, me, ids); err != nil {
		return nil, fmt.Errorf("ack: %w", err)
	}
	return wire.EncodeSuccess(&wire.OK{})
}

func (c *conn) setDeliveryPolicy(ctx context.Context, me store.Mailbox, r *wire.SetDeliveryPolicy) ([]byte, error) {
	p := store.Policy{Verifiers: r.Verifiers, RequestLaneOpen: r.RequestLaneOpen}
	if err := c.s.cfg.Store.SetPolicy(ctx, me.Address, p); err != nil {
		return nil, fmt.Errorf("set policy: %w", err)
	}
	return wire.EncodeSuccess(&wire.OK{})
}

// senderCert answers get-sender-cert. The device is read from the store
// first: another process sharing the store may have removed it and not yet
// told this one, and no certificate may be issued to a removed device.
func (c *conn) senderCert(ctx context.Context, dev *store.Device) ([]byte, error) {
	mb := store.Mailbox{Address: dev.Address, Device: dev.ID}
	switch _, err := c.s.cfg.Store.Device(ctx, mb); {
	case errors.Is(err, store.ErrUnknownDevice):
		c.s.forgetDevice(mb)
		c.s.disconnect(mb, c)
		return nil, wire.Errorf(wire.CodeUnauthenticated, "this device was removed")
	case err != nil:
		return nil, fmt.Errorf("get sender certificate: %w", err)
	}
	cert, err := wire.IssueSenderCert(c.s.cfg.CertKey, wire.SenderCertBody{
		Address: dev.Address, Device: dev.ID, SigKey: dev.SigKey,
		Expires: uint64(time.Now().Add(wire.SenderCertTTL).Unix()),
	})
	if err != nil {
		return nil, err
	}
	return wire.EncodeSuccess(&wire.SenderCertOK{Cert: cert})
}
