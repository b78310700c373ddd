package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/spec/wire"
)

var linkEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// LinkCode is what an existing device shows to link a new one
// (spec/09-mls.md section 9.5): the account, the existing device and a
// hash of its signature key, the homeserver's link token and a secret only
// the two devices know.
type LinkCode struct {
	Address string
	Device  uint32
	Token   []byte // wire.LinkTokenLen bytes
	Secret  []byte // wire.LinkSecretSize bytes
	KeyHash []byte // wire.LinkKeyHashSize bytes of SHA-256 of the device's signature key
}

// String formats the code as ADDRESS/DEVICE/BASE32.
func (c LinkCode) String() string {
	b := slices.Concat(c.Token, c.Secret, c.KeyHash)
	return fmt.Sprintf("%s/%d/%s", c.Address, c.Device, strings.ToLower(linkEncoding.EncodeToString(b)))
}

// linkKeyHash returns the hash of a signature key that a link code carries.
func linkKeyHash(sigKey []byte) []byte {
	h := sha256.Sum256(sigKey)
	return h[:wire.LinkKeyHashSize]
}

// ParseLinkCode parses a code printed by 'xchat device link'.
func ParseLinkCode(s string) (LinkCode, error) {
	bad := fmt.Errorf("%q is not a link code (ADDRESS/DEVICE/CODE, as 'xchat device link' prints it)", s)
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) != 3 {
		return LinkCode{}, bad
	}
	addr, err := wire.NormalizeAddress(parts[0])
	if err != nil {
		return LinkCode{}, fmt.Errorf("link code: %w", err)
	}
	dev, err := strconv.ParseUint(parts[1], 10, 32)
	if err != nil || dev == 0 {
		return LinkCode{}, bad
	}
	b, err := linkEncoding.DecodeString(strings.ToUpper(parts[2]))
	if err != nil || len(b) != wire.LinkTokenLen+wire.LinkSecretSize+wire.LinkKeyHashSize {
		return LinkCode{}, bad
	}
	t, sec := wire.LinkTokenLen, wire.LinkTokenLen+wire.LinkSecretSize
	return LinkCode{Address: addr, Device: uint32(dev), Token: b[:t], Secret: b[t:sec], KeyHash: b[sec:]}, nil
}

// CreateLink asks the homeserver for a link token and returns the code to
// show on the new device. The secret is kept in the profile until the new
// device proves it knows it, or for 10 minutes.
func (cl *Client) CreateLink(ctx context.Context) (LinkCode, time.Time, error) {
	var ok wire.CreateLinkOK
	if err := cl.c.do(ctx, &wire.CreateLink{}, &ok); err != nil {
		return LinkCode{}, time.Time{}, fmt.Errorf("create a link: %w", err)
	}
	if len(ok.Token) != wire.LinkTokenLen {
		return LinkCode{}, time.Time{}, fmt.Errorf("create a link: token of %d bytes", len(ok.Token))
	}
	code := LinkCode{Address: cl.id.Address, Device: cl.id.Device, Token: ok.Token, Secret: make([]byte, wire.LinkSecretSize),
		KeyHash: linkKeyHash(cl.id.SigKey.Public().(ed25519.PublicKey))}
	rand.Read(code.Secret)
	// The secret is forgotten after 10 minutes, whatever the server says.
	expires := time.Unix(int64(ok.Expires), 0)
	if limit := time.Now().Add(wire.LinkTokenTTL); expires.After(limit) {
		expires = limit
	}
	err := cl.p.update(ctx, func(tx *profile.Tx) error {
		if err := tx.DeleteExpiredLinks(); err != nil {
			return err
		}
		return tx.AddLink(&profile.Link{Token: code.Token, Secret: code.Secret, Device: cl.id.Device, Expires: expires, Role: profile.LinkShown})
	})
	if err != nil {
		return LinkCode{}, time.Time{}, err
	}
	return code, expires, nil
}

// receiveLinkProof checks a new device's link proof and, when it holds,
// trusts the device and adds it to every group of this device.
func (cl *Client) receiveLinkProof(ctx context.Context, envelopeID []byte, from sender, p *wire.LinkProofPayload, o ReceiveOptions) error {
	if from.Address != cl.id.Address {
		return drop(errors.New("a link proof from another account"))
	}
	var secret []byte
	err := cl.p.view(ctx, func(tx *profile.Tx) (err error) {
		secret, err = tx.LinkSecret(p.Token, profile.LinkShown)
		return err
	})
	if errors.Is(err, profile.ErrNotFound) {
		return drop(errors.New("a link proof for no pending link (used or expired)"))
	}
	if err != nil {
		return err
	}
	if !hmac.Equal(p.Proof, wire.LinkProof(secret, from.Address, from.Device, from.SigKey)) {
		return drop(errors.New("a link proof that does not verify"))
	}
	// The groups first: should this fail, the envelope is not
	// acknowledged and the proof is processed again (groups that already
	// hold the device are skipped).
	if err := cl.addOwnDeviceToGroups(ctx, from.Device, from.SigKey); err != nil {
		return fmt.Errorf("add device %d to the groups: %w", from.Device, err)
	}
	err = cl.p.update(ctx, func(tx *profile.Tx) error {
		if err := tx.TrustOwnDevice(from.Device, from.SigKey); err != nil {
			return err
		}
		if err := tx.DeleteLink(p.Token); err != nil {
			return err
		}
		return tx.MarkProcessed(envelopeID)
	})
	if err != nil {
		return err
	}
	if o.OnLinked != nil {
		o.OnLinked(from.Device)
	}
	return nil
}

// finishLink completes the registration of a linked device: it trusts the
// device that showed the code, publishes key packages and sends the link
// proof.
func (cl *Client) finishLink(ctx context.Context, code LinkCode) error {
	devs, err := cl.devices(ctx, cl.id.Address)
	if err != nil {
		return err
	}
	var linker *wire.DeviceInfo
	for i := range devs {
		if devs[i].ID == code.Device {
			linker = &devs[i]
		}
	}
	if linker == nil {
		return fmt.Errorf("device %d of %s, which showed the code, does not exist", code.Device, code.Address)
	}
	// The code names the linking device's key: the homeserver cannot put
	// a key of its own in its place.
	if !bytes.Equal(linkKeyHash(linker.Keys.SigKey), code.KeyHash) {
		return fmt.Errorf("the homeserver lists another signature key for device %d than the one in the code", code.Device)
	}
	if err := cl.p.update(ctx, func(tx *profile.Tx) error { return tx.TrustOwnDevice(linker.ID, linker.Keys.SigKey) }); err != nil {
		return err
	}
	if err := cl.stockKeyPackages(ctx); err != nil {
		return err
	}
	me := cl.id.Mailbox()
	payload, err := wire.Marshal(&wire.LinkProofPayload{Mode: wire.PayloadLinkProof, Token: code.Token,
		Proof: wire.LinkProof(code.Secret, me.Address, me.Device, []byte(cl.id.SigKey.Public().(ed25519.PublicKey)))})
	if err != nil {
		return err
	}
	return cl.deliverPayload(ctx, []wire.Mailbox{{Address: code.Address, Device: code.Device}}, payload)
}

// saveJoinLink keeps the code a new device registers with, so that an
// interrupted registration can finish.
func (p *Profile) saveJoinLink(ctx context.Context, code LinkCode) error {
	return p.update(ctx, func(tx *profile.Tx) error {
		return tx.AddLink(&profile.Link{Token: code.Token, Secret: code.Secret, Device: code.Device,
			Expires: time.Now().Add(time.Hour), Role: profile.LinkJoining})
	})
}

// joinLink returns the code this device registered with, if any.
func (p *Profile) joinLink(ctx context.Context, address string) (*LinkCode, error) {
	var l *profile.Link
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		l, err = tx.JoinLink()
		return err
	})
	if errors.Is(err, profile.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &LinkCode{Address: address, Device: l.Device, Token: l.Token, Secret: l.Secret}, nil
}

// RemoveDevice removes a device of this account from the homeserver and
// from every group of this device (spec/09-mls.md section 9.5).
func (cl *Client) RemoveDevice(ctx context.Context, device uint32) error {
	if err := cl.c.do(ctx, &wire.RemoveDevice{Device: device}, &wire.OK{}); err != nil {
		return fmt.Errorf("remove device %d: %w", device, err)
	}
	if err := cl.p.update(ctx, func(tx *profile.Tx) error { return tx.UntrustOwnDevice(device) }); err != nil {
		return err
	}
	if device == cl.id.Device {
		return nil
	}
	return cl.removeDeviceFromGroups(ctx, wire.Mailbox{Address: cl.id.Address, Device: device})
}

// forgetJoinLink deletes the code this device registered with, once the
// registration is complete.
func (p *Profile) forgetJoinLink(ctx context.Context) error {
	return p.update(ctx, func(tx *profile.Tx) error { return tx.DeleteLinks(profile.LinkJoining) })
}
