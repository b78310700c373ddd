package server

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// handle answers one decoded request with a response frame, or returns an
// error to send as an error frame.
func (c *conn) handle(ctx context.Context, req wire.Request) ([]byte, error) {
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
	me := store.Mailbox{Address: dev.Address, Device: dev.ID}
	switch r := req.(type) {
	case *wire.GetDevices:
		return c.getDevices(ctx, r)
	case *wire.PublishKeyPackages:
		return c.publishKeyPackages(ctx, me, r)
	case *wire.ClaimKeyPackage:
		return c.claimKeyPackage(ctx, r)
	case *wire.Send:
		return c.send(ctx, r)
	case *wire.Ack:
		return c.ack(ctx, me, r)
	case *wire.SetDeliveryPolicy:
		return c.setDeliveryPolicy(ctx, me, r)
	case *wire.GetSenderCert:
		return c.senderCert(dev)
	}
	return nil, wire.Errorf(wire.CodeUnknownRequest, "%T", req)
}

func (c *conn) serverInfo() ([]byte, error) {
	return wire.EncodeSuccess(&wire.ServerInfoOK{
		Domain:       c.s.cfg.Domain,
		CertKey:      c.s.cfg.CertKey.Public().(ed25519.PublicKey),
		Registration: uint8(c.s.cfg.Registration),
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
	})
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

func (c *conn) register(ctx context.Context, r *wire.Register) (resp []byte, err error) {
	if err := c.beginAuth(); err != nil {
		return nil, err
	}
	var dev *store.Device
	defer func() { c.endAuth(dev) }()
	if ok, retry := c.s.registrations.allow(remoteIP(c.qc.RemoteAddr()), time.Now()); !ok {
		return nil, &wire.Error{Code: wire.CodeRateLimited, Message: "too many registrations from this address", RetryAfter: retry}
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
	dev = &d
	c.log.Info("account registered")
	return wire.EncodeSuccess(&wire.RegisterOK{Device: 1})
}

// remoteIP returns the IP address of a peer, the key of per-address limits.
func remoteIP(a net.Addr) string {
	if u, ok := a.(*net.UDPAddr); ok {
		return u.IP.String()
	}
	return a.String()
}

// dummyKey stands in for the key of an unknown device, so that a failed
// authentication costs the same whether or not the device exists.
var dummyKey = ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)

func (c *conn) authenticate(ctx context.Context, r *wire.Authenticate) ([]byte, error) {
	if err := c.beginAuth(); err != nil {
		return nil, err
	}
	var dev *store.Device
	defer func() { c.endAuth(dev) }()
	key, known := dummyKey, false
	if c.checkDomain(r.Address) == nil {
		d, err := c.s.cfg.Store.Device(ctx, store.Mailbox{Address: r.Address, Device: r.Device})
		switch {
		case err == nil:
			key, known = d.SigKey, true
			dev = &d
		case !errors.Is(err, store.ErrUnknownDevice):
			return nil, fmt.Errorf("authenticate: %w", err)
		}
	}
	exp, err := c.exporter()
	if err != nil {
		dev = nil
		return nil, fmt.Errorf("exporter: %w", err)
	}
	if !ed25519.Verify(key, wire.DeviceAuthMessage(r.Address, r.Device, exp), r.Signature) || !known {
		dev = nil
		return nil, wire.Errorf(wire.CodeAuthFailed, "device authentication failed")
	}
	return wire.EncodeSuccess(&wire.OK{})
}

func (c *conn) getDevices(ctx context.Context, r *wire.GetDevices) ([]byte, error) {
	if err := c.checkDomain(r.Address); err != nil {
		return nil, err
	}
	devs, err := c.s.cfg.Store.Devices(ctx, r.Address)
	if errors.Is(err, store.ErrUnknownAccount) {
		return nil, wire.Errorf(wire.CodeUnknownAccount, "%s", r.Address)
	}
	if err != nil {
		return nil, fmt.Errorf("get devices: %w", err)
	}
	resp := wire.GetDevicesOK{Devices: make([]wire.DeviceInfo, 0, len(devs))}
	for _, d := range devs {
		resp.Devices = append(resp.Devices, wire.DeviceInfo{
			ID:   d.ID,
			Keys: wire.DeviceKeys{SigKey: d.SigKey, KEM: d.KEM, HPKEKey: d.HPKEKey},
		})
	}
	return wire.EncodeSuccess(&resp)
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

func (c *conn) claimKeyPackage(ctx context.Context, r *wire.ClaimKeyPackage) ([]byte, error) {
	if err := c.checkDomain(r.Address); err != nil {
		return nil, err
	}
	mb := store.Mailbox{Address: r.Address, Device: r.Device}
	kp, lastResort, err := c.s.cfg.Store.ClaimKeyPackage(ctx, mb)
	switch {
	case errors.Is(err, store.ErrNoKeyPackage):
		return nil, wire.Errorf(wire.CodeNoKeyPackage, "%s device %d has no key package", r.Address, r.Device)
	case errors.Is(err, store.ErrUnknownDevice):
		return nil, wire.Errorf(wire.CodeUnknownDevice, "%s device %d", r.Address, r.Device)
	case err != nil:
		return nil, fmt.Errorf("claim key package: %w", err)
	}
	return wire.EncodeSuccess(&wire.ClaimKeyPackageOK{KeyPackage: kp, LastResort: lastResort})
}

// send admits envelopes (spec/07-envelopes.md) and answers only after every
// admitted envelope is durable.
func (c *conn) send(ctx context.Context, r *wire.Send) ([]byte, error) {
	now := time.Now()
	results := make([]wire.Code, len(r.Envelopes))
	admit := make([]store.Envelope, 0, len(r.Envelopes))
	index := make([]int, 0, len(r.Envelopes))
	policies := make(map[string]store.Policy)
	for i := range r.Envelopes {
		e := &r.Envelopes[i]
		lane, code, err := c.admit(ctx, e, policies, now)
		if err != nil {
			return nil, err
		}
		if code != wire.CodeOK {
			results[i] = code
			continue
		}
		var id store.EnvelopeID
		copy(id[:], e.ID)
		admit = append(admit, store.Envelope{
			ID: id, To: store.Mailbox{Address: e.To.Address, Device: e.To.Device},
			Sealed: e.Sealed, Lane: lane, ReceivedAt: now,
		})
		index = append(index, i)
	}
	if len(admit) > 0 {
		errs, err := c.s.cfg.Store.Enqueue(ctx, admit)
		if err != nil {
			return nil, fmt.Errorf("enqueue: %w", err)
		}
		for j, err := range errs {
			switch {
			case err == nil:
				c.s.hub.notify(admit[j].To)
			case errors.Is(err, store.ErrLimit):
				results[index[j]] = wire.CodeMailboxFull
			case errors.Is(err, store.ErrUnknownDevice):
				results[index[j]] = wire.CodeUnknownDevice
			default:
				return nil, fmt.Errorf("enqueue: %w", err)
			}
		}
	}
	return wire.EncodeSuccess(&wire.SendOK{Results: results})
}

// admit decides one envelope's lane, or the code that refuses it. A
// non-nil error fails the whole request.
func (c *conn) admit(ctx context.Context, e *wire.Envelope, policies map[string]store.Policy, now time.Time) (store.Lane, wire.Code, error) {
	if c.checkDomain(e.To.Address) != nil {
		return 0, wire.CodeWrongDomain, nil
	}
	dev, err := c.s.cfg.Store.Device(ctx, store.Mailbox{Address: e.To.Address, Device: e.To.Device})
	if errors.Is(err, store.ErrUnknownDevice) {
		return 0, wire.CodeUnknownDevice, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("device: %w", err)
	}
	enc := wire.EncLen(dev.KEM)
	if len(e.Sealed) > enc+wire.MaxBucket+wire.AEADTagLen {
		return 0, wire.CodeEnvelopeTooLarge, nil
	}
	if !wire.SealedLenOK(len(e.Sealed), enc) {
		return 0, wire.CodeBadPadding, nil
	}
	p, ok := policies[e.To.Address]
	if !ok {
		p, err = c.s.cfg.Store.Policy(ctx, e.To.Address)
		if err != nil {
			return 0, 0, fmt.Errorf("policy: %w", err)
		}
		policies[e.To.Address] = p
	}
	if e.Token != nil {
		if !verifyToken(p.Verifiers, e.Token) {
			return 0, wire.CodeTokenInvalid, nil
		}
		return store.LaneToken, wire.CodeOK, nil
	}
	if !p.RequestLaneOpen {
		return 0, wire.CodeRequestLaneClosed, nil
	}
	if ok, _ := c.s.lane.allow(e.To.Address, now); !ok {
		return 0, wire.CodeRateLimited, nil
	}
	return store.LaneRequest, wire.CodeOK, nil
}

// verifyToken compares the token's verifier with every stored verifier in
// constant time.
func verifyToken(verifiers [][]byte, token []byte) bool {
	v := wire.TokenVerifier(token)
	match := 0
	for _, w := range verifiers {
		match |= subtle.ConstantTimeCompare(v[:], w)
	}
	return match == 1
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

func (c *conn) senderCert(dev *store.Device) ([]byte, error) {
	cert, err := wire.IssueSenderCert(c.s.cfg.CertKey, wire.SenderCertBody{
		Address: dev.Address, Device: dev.ID, SigKey: dev.SigKey,
		Expires: uint64(time.Now().Add(wire.SenderCertTTL).Unix()),
	})
	if err != nil {
		return nil, err
	}
	return wire.EncodeSuccess(&wire.SenderCertOK{Cert: cert})
}
