package client

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// RegisterOptions are the inputs of Register.
type RegisterOptions struct {
	Address string // user@domain, normalised by Register
	Server  string // host:port of the homeserver
	CAFile  string // extra root CA, empty for the system roots
	Invite  string // invite token, when the server needs one
	// Link is a code shown by 'xchat device link' on an existing device
	// of the account: the new device joins that account (Address may be
	// empty; it is taken from the code).
	Link string
}

// Register creates an account with this device as its first device, sets
// its delivery policy (a fresh delivery token, request lane open) and saves
// the identity in the profile. A profile holds one identity.
//
// The device's keys are saved before the server sees them. When
// registration is interrupted (the connection fails, the process dies), the
// same call again resumes it with the same keys; when the server refuses it
// (address taken, registration closed, bad invite), the keys are dropped so
// that another address can be tried.
func Register(ctx context.Context, p *Profile, o RegisterOptions) (*Identity, error) {
	var link *LinkCode
	if o.Link != "" {
		code, err := ParseLinkCode(o.Link)
		if err != nil {
			return nil, err
		}
		if o.Address == "" {
			o.Address = code.Address
		}
		link = &code
	}
	addr, err := wire.NormalizeAddress(o.Address)
	if err != nil {
		return nil, err
	}
	if link != nil && link.Address != addr {
		return nil, fmt.Errorf("the link code is for %s, not %s", link.Address, addr)
	}
	_, domain := wire.SplitAddress(addr)
	id, err := p.Identity(ctx)
	switch {
	case errors.Is(err, ErrNoIdentity):
		if id, err = newIdentity(addr, o); err != nil {
			return nil, err
		}
		if err := p.saveIdentity(ctx, id); err != nil {
			return nil, err
		}
	case err != nil:
		return nil, err
	case id.state == regComplete:
		return nil, fmt.Errorf("this profile is already registered as %s (use another --profile)", id.Address)
	case id.Address != addr:
		return nil, fmt.Errorf("this profile holds an unfinished registration of %s: run the register command for %s again, or use another --profile", id.Address, id.Address)
	default:
		// Resume, possibly with corrected settings: keep them, or the
		// finished profile would still dial the old ones.
		if id.Server != o.Server || id.CAFile != o.CAFile {
			id.Server, id.CAFile = o.Server, o.CAFile
			if err := p.setServer(ctx, id.Server, id.CAFile); err != nil {
				return nil, err
			}
		}
	}

	c, err := dial(ctx, o.Server, domain, o.CAFile)
	if err != nil {
		return nil, unfinished(err)
	}
	defer c.close()
	if link != nil {
		if err := p.saveJoinLink(ctx, *link); err != nil {
			return nil, err
		}
	} else if link, err = p.joinLink(ctx, addr); err != nil {
		return nil, err
	}
	if id.state == regKeys {
		dev, err := registerDevice(ctx, c, id, o.Invite, link)
		if err != nil {
			var pe *wire.Error
			if errors.As(err, &pe) {
				p.dropIdentity(ctx)
				return nil, fmt.Errorf("register %s: %w", addr, err)
			}
			return nil, unfinished(err)
		}
		id.Device, id.state = dev, regRegistered
		if err := p.setRegState(ctx, id.Device, id.state); err != nil {
			return nil, err
		}
	} else if err := authenticate(ctx, c, id); err != nil {
		return nil, unfinished(err)
	}
	cl, err := newClient(ctx, p, id, c)
	if err != nil {
		return nil, unfinished(err)
	}
	if link != nil {
		// The account has its delivery policy; the device that showed
		// the code gives this one the account's token with its first
		// Welcome (spec/09-mls.md section 9.5).
		if err := cl.finishLink(ctx, *link); err != nil {
			return nil, unfinished(fmt.Errorf("link: %w", err))
		}
		if err := p.forgetJoinLink(ctx); err != nil {
			return nil, err
		}
	} else {
		v := wire.TokenVerifier(id.Token)
		if err := c.do(ctx, &wire.SetDeliveryPolicy{Verifiers: [][]byte{v[:]}, RequestLaneOpen: true}, &wire.OK{}); err != nil {
			return nil, unfinished(fmt.Errorf("set delivery policy: %w", err))
		}
		if err := cl.stockKeyPackages(ctx); err != nil {
			return nil, unfinished(err)
		}
	}
	id.state = regComplete
	if err := p.setRegState(ctx, id.Device, id.state); err != nil {
		return nil, err
	}
	return id, nil
}

func unfinished(err error) error {
	return fmt.Errorf("registration did not finish (%w); run the same command again to resume it", err)
}

// newIdentity makes the keys and delivery token of a new device.
func newIdentity(addr string, o RegisterOptions) (*Identity, error) {
	_, sigKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hk, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		return nil, err
	}
	// A linked device holds no token of its own: it adopts the account's
	// when a trusted own device gives it (spec/09-mls.md section 9.5), and
	// until then sends none, so that no contact is handed a token the
	// homeserver does not know.
	token := []byte{}
	if o.Link == "" {
		token = make([]byte, 32)
		rand.Read(token)
	}
	return &Identity{Address: addr, Server: o.Server, CAFile: o.CAFile, SigKey: sigKey, HPKEKey: hk, Token: token, state: regKeys}, nil
}

// registerDevice sends register for id. When the address is taken, it may
// be this device's own account from an interrupted earlier attempt: then
// authenticating as device 1 with the same keys succeeds.
func registerDevice(ctx context.Context, c *conn, id *Identity, invite string, link *LinkCode) (uint32, error) {
	exp, err := c.exporter()
	if err != nil {
		return 0, err
	}
	req := &wire.Register{
		Address: id.Address,
		Keys: wire.DeviceKeys{SigKey: id.SigKey.Public().(ed25519.PublicKey), KEM: wire.KEMXWing,
			HPKEKey: id.HPKEKey.PublicKey().Bytes()},
		Signature: ed25519.Sign(id.SigKey, wire.DeviceAuthMessage(id.Address, 0, exp)),
	}
	if invite != "" {
		req.Invite = []byte(invite)
	}
	if link != nil {
		req.Invite, req.Link = nil, link.Token
	}
	var ok wire.RegisterOK
	err = c.do(ctx, req, &ok)
	if errors.Is(err, wire.ErrAccountExists) && link == nil {
		own := *id
		own.Device = 1
		if authenticate(ctx, c, &own) == nil {
			return 1, nil
		}
	}
	if err != nil {
		return 0, err
	}
	return ok.Device, nil
}

// authenticate authenticates the connection as id's device.
func authenticate(ctx context.Context, c *conn, id *Identity) error {
	exp, err := c.exporter()
	if err != nil {
		return err
	}
	auth := &wire.Authenticate{Address: id.Address, Device: id.Device,
		Signature: ed25519.Sign(id.SigKey, wire.DeviceAuthMessage(id.Address, id.Device, exp))}
	if err := c.do(ctx, auth, &wire.OK{}); err != nil {
		return fmt.Errorf("authenticate %s: %w", id.Address, err)
	}
	return nil
}

// Client is an authenticated connection of a profile's device.
type Client struct {
	p  *Profile
	id *Identity
	c  *conn

	domainKey0 ed25519.PublicKey // sender-certificate key of the own domain
	limits     wire.Limits       // what the homeserver announced

	keysMu sync.Mutex
	keys   map[string]ed25519.PublicKey // other domains' keys
	lookup lookupState                  // failed lookups of other domains' keys (domainkeys.go)
	tried  map[[16]byte]bool            // envelopes that failed to open on this connection

	receiving atomic.Bool // Receive ran

	calls callRegistry // calls and ringing invites (call.go)

	certMu      sync.Mutex
	cert        []byte
	certExpires time.Time

	// afterReceive, when set by tests, runs after a delivery is read and
	// before it is stored.
	afterReceive func()
	// afterStore, when set by tests, runs after a delivery is stored and
	// before it is acknowledged.
	afterStore func()
	// afterQueue, when set by tests, runs after a content item is queued
	// in the outbox and before it is sent.
	afterQueue func()
	// readFault, when set by tests, runs before the named profile reads
	// of the receive path; an error it returns is taken as that read's.
	readFault func(read string) error
}

// Profile reads of the receive path that tests can make fail.
const (
	readEditTarget = "edit-target" // the message an edit or delete refers to
)

// fault returns the error a test injects for a profile read, or nil.
func (cl *Client) fault(read string) error {
	if cl.readFault == nil {
		return nil
	}
	return cl.readFault(read)
}

// Connect connects the profile's device to its homeserver and
// authenticates it.
func Connect(ctx context.Context, p *Profile) (*Client, error) {
	id, err := p.Identity(ctx)
	if err != nil {
		return nil, err
	}
	if id.state != regComplete {
		return nil, fmt.Errorf("the registration of %s did not finish: run 'xchat register %s --server %s' again", id.Address, id.Address, id.Server)
	}
	_, domain := wire.SplitAddress(id.Address)
	c, err := dial(ctx, id.Server, domain, id.CAFile)
	if err != nil {
		return nil, err
	}
	if err := authenticate(ctx, c, id); err != nil {
		c.close()
		return nil, err
	}
	cl, err := newClient(ctx, p, id, c)
	if err != nil {
		c.close()
		return nil, err
	}
	// Keep key packages stocked so that others can add this device to
	// groups while it is offline (spec/09-mls.md section 9.4).
	if err := cl.stockKeyPackages(ctx); err != nil {
		c.close()
		return nil, err
	}
	if err := p.forgetProcessed(ctx); err != nil {
		c.close()
		return nil, err
	}
	if err := p.expireHeld(ctx); err != nil {
		c.close()
		return nil, err
	}
	if err := p.forgetUnopened(ctx); err != nil {
		c.close()
		return nil, err
	}
	// What an earlier run committed to but could not send goes first.
	var se *SendError
	if err := cl.flushOutbox(ctx); err != nil && !errors.As(err, &se) {
		c.close()
		return nil, err
	}
	return cl, nil
}

// newClient makes a Client of an authenticated connection, with the own
// domain's sender-certificate key from server-info.
func newClient(ctx context.Context, p *Profile, id *Identity, c *conn) (*Client, error) {
	_, domain := wire.SplitAddress(id.Address)
	var info wire.ServerInfoOK
	if err := c.do(ctx, &wire.ServerInfo{}, &info); err != nil {
		return nil, fmt.Errorf("server info: %w", err)
	}
	if info.Domain != domain || len(info.CertKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("server at %s serves %q, not %q", id.Server, info.Domain, domain)
	}
	return &Client{p: p, id: id, c: c, domainKey0: info.CertKey, limits: info.Limits, keys: make(map[string]ed25519.PublicKey)}, nil
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
