package client

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// RegisterOptions are the inputs of Register.
type RegisterOptions struct {
	Address string // user@domain, normalised by Register
	Server  string // host:port of the homeserver
	CAFile  string // extra root CA, empty for the system roots
	Invite  string // invite token, when the server needs one
}

// Register creates an account with this device as its first device, sets
// its delivery policy (a fresh delivery token, request lane open) and saves
// the identity in the profile. A profile holds one identity.
func Register(ctx context.Context, p *Profile, o RegisterOptions) (*Identity, error) {
	if _, err := p.Identity(ctx); err == nil {
		return nil, errors.New("this profile already has an identity (use another --profile)")
	} else if !errors.Is(err, ErrNoIdentity) {
		return nil, err
	}
	addr, err := wire.NormalizeAddress(o.Address)
	if err != nil {
		return nil, err
	}
	_, domain := wire.SplitAddress(addr)
	pub, sigKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hk, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		return nil, err
	}
	token := make([]byte, 32)
	rand.Read(token)
	id := &Identity{Address: addr, Server: o.Server, CAFile: o.CAFile, SigKey: sigKey, HPKEKey: hk, Token: token}

	c, err := dial(ctx, o.Server, domain, o.CAFile)
	if err != nil {
		return nil, err
	}
	defer c.close()
	exp, err := c.exporter()
	if err != nil {
		return nil, err
	}
	req := &wire.Register{
		Address:   addr,
		Keys:      wire.DeviceKeys{SigKey: pub, KEM: wire.KEMXWing, HPKEKey: hk.PublicKey().Bytes()},
		Signature: ed25519.Sign(sigKey, wire.DeviceAuthMessage(addr, 0, exp)),
	}
	if o.Invite != "" {
		req.Invite = []byte(o.Invite)
	}
	var ok wire.RegisterOK
	if err := c.do(ctx, req, &ok); err != nil {
		return nil, fmt.Errorf("register %s: %w", addr, err)
	}
	id.Device = ok.Device
	v := wire.TokenVerifier(token)
	if err := c.do(ctx, &wire.SetDeliveryPolicy{Verifiers: [][]byte{v[:]}, RequestLaneOpen: true}, &wire.OK{}); err != nil {
		return nil, fmt.Errorf("set delivery policy: %w", err)
	}
	if err := p.saveIdentity(ctx, id); err != nil {
		return nil, err
	}
	return id, nil
}

// Client is an authenticated connection of a profile's device.
type Client struct {
	p  *Profile
	id *Identity
	c  *conn

	domainKey ed25519.PublicKey // sender-certificate key of the own domain

	certMu      sync.Mutex
	cert        []byte
	certExpires time.Time

	// afterReceive, when set by tests, runs after a delivery is read and
	// before it is stored.
	afterReceive func()
	// afterStore, when set by tests, runs after a delivery is stored and
	// before it is acknowledged.
	afterStore func()
}

// Connect connects the profile's device to its homeserver and
// authenticates it.
func Connect(ctx context.Context, p *Profile) (*Client, error) {
	id, err := p.Identity(ctx)
	if err != nil {
		return nil, err
	}
	_, domain := wire.SplitAddress(id.Address)
	c, err := dial(ctx, id.Server, domain, id.CAFile)
	if err != nil {
		return nil, err
	}
	var info wire.ServerInfoOK
	if err := c.do(ctx, &wire.ServerInfo{}, &info); err != nil {
		c.close()
		return nil, fmt.Errorf("server info: %w", err)
	}
	if info.Domain != domain || len(info.CertKey) != ed25519.PublicKeySize {
		c.close()
		return nil, fmt.Errorf("server at %s serves %q, not %q", id.Server, info.Domain, domain)
	}
	exp, err := c.exporter()
	if err != nil {
		c.close()
		return nil, err
	}
	auth := &wire.Authenticate{Address: id.Address, Device: id.Device,
		Signature: ed25519.Sign(id.SigKey, wire.DeviceAuthMessage(id.Address, id.Device, exp))}
	if err := c.do(ctx, auth, &wire.OK{}); err != nil {
		c.close()
		return nil, fmt.Errorf("authenticate %s: %w", id.Address, err)
	}
	return &Client{p: p, id: id, c: c, domainKey: info.CertKey}, nil
}

// Close closes the connection.
func (cl *Client) Close() error {
	cl.c.close()
	return nil
}

// Identity returns the client's identity.
func (cl *Client) Identity() *Identity { return cl.id }

// senderCert returns a sender certificate valid for at least an hour.
func (cl *Client) senderCert(ctx context.Context) ([]byte, error) {
	cl.certMu.Lock()
	defer cl.certMu.Unlock()
	if cl.cert != nil && time.Until(cl.certExpires) > time.Hour {
		return cl.cert, nil
	}
	var ok wire.SenderCertOK
	if err := cl.c.do(ctx, &wire.GetSenderCert{}, &ok); err != nil {
		return nil, fmt.Errorf("sender certificate: %w", err)
	}
	var sc wire.SenderCert
	var body wire.SenderCertBody
	if err := wire.Unmarshal(ok.Cert, &sc); err != nil {
		return nil, err
	}
	if err := wire.Unmarshal(sc.Body, &body); err != nil {
		return nil, err
	}
	cl.cert, cl.certExpires = ok.Cert, time.Unix(int64(body.Expires), 0)
	return cl.cert, nil
}

// domainKeys returns the sender-certificate key of a domain. Until
// federation lands only the own domain's key is known.
func (cl *Client) domainKeys(domain string) (ed25519.PublicKey, error) {
	_, own := wire.SplitAddress(cl.id.Address)
	if domain != own {
		return nil, fmt.Errorf("no key for domain %s (federation is not implemented yet)", domain)
	}
	return cl.domainKey, nil
}
