package client

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/client/mls"
	"github.com/xchat-im/xchat/client/seal"
	"github.com/xchat-im/xchat/spec/wire"
)

// Key package stock (spec/09-mls.md section 9.4).
const (
	keyPackageTarget   = 20 // one-time packages after a refill
	keyPackageLow      = 10 // refill below this
	usedBundlesKeptFor = 7 * 24 * time.Hour
	extLastResort      = 0x000a
)

// suite returns the cipher suite of xchat groups.
func suite() *mls.CipherSuite {
	cs, err := mls.LookupSuite(mls.CipherSuiteID(0xF031))
	if err != nil {
		panic("xchat: the default MLS suite is missing: " + err.Error())
	}
	return cs
}

// credential returns this device's MLS credential: its current sender
// certificate (spec/09-mls.md section 9.3).
func (cl *Client) credential(ctx context.Context) (mls.Credential, error) {
	cert, err := cl.senderCert(ctx)
	if err != nil {
		return mls.Credential{}, err
	}
	return mls.Credential{Type: mls.CredentialTypeXchat, Identity: cert}, nil
}

// groupConfig is the MLS policy of this client's groups: every credential
// is an xchat sender certificate that verifies with its domain's key and
// names the leaf's signature key.
func (cl *Client) groupConfig(ctx context.Context) mls.Config {
	return mls.Config{ValidateCredential: func(c mls.Credential, sigKey []byte) error {
		_, err := cl.verifyCredential(ctx, c, sigKey)
		return err
	}}
}

// verifyCredential checks an xchat credential and returns the device it
// names. Expiry is not checked (spec/09-mls.md section 9.3).
func (cl *Client) verifyCredential(ctx context.Context, c mls.Credential, sigKey []byte) (*wire.SenderCertBody, error) {
	if c.Type != mls.CredentialTypeXchat {
		return nil, fmt.Errorf("credential type %#x is not an xchat sender certificate", c.Type)
	}
	keys := func(domain string) (ed25519.PublicKey, error) { return cl.domainKey(ctx, domain) }
	body, err := seal.VerifyCert(c.Identity, keys, time.Time{})
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(body.SigKey, sigKey) {
		return nil, errors.New("the credential names another signature key")
	}
	return body, nil
}

// memberDevice returns the device a member's credential names, without
// verifying it (every leaf was verified when it entered the tree).
func memberDevice(m mls.Member) (wire.Mailbox, bool) {
	if m.Credential.Type != mls.CredentialTypeXchat {
		return wire.Mailbox{}, false
	}
	var c wire.SenderCert
	var body wire.SenderCertBody
	if wire.Unmarshal(m.Credential.Identity, &c) != nil || wire.Unmarshal(c.Body, &body) != nil {
		return wire.Mailbox{}, false
	}
	return wire.Mailbox{Address: body.Address, Device: body.Device}, true
}

// newBundle makes one key package of this device.
func (cl *Client) newBundle(ctx context.Context, lastResort bool) (*mls.KeyPackageBundle, error) {
	cred, err := cl.credential(ctx)
	if err != nil {
		return nil, err
	}
	opts := mls.XchatKeyPackageOptions()
	if lastResort {
		opts.KeyPackageExtensions = []mls.Extension{{Type: extLastResort}}
	}
	return mls.NewKeyPackage(suite(), cred, cl.id.SigKey.Seed(), opts)
}

// stockKeyPackages publishes key packages when the homeserver holds fewer
// than keyPackageLow one-time packages of this device, and a last-resort
// package when none is published (spec/09-mls.md section 9.4). The private
// keys are stored before the server sees the packages.
func (cl *Client) stockKeyPackages(ctx context.Context) error {
	var ok wire.PublishKeyPackagesOK
	if err := cl.c.do(ctx, &wire.PublishKeyPackages{}, &ok); err != nil {
		return fmt.Errorf("key packages: %w", err)
	}
	var haveLast bool
	if err := cl.p.view(ctx, func(tx *profile.Tx) (err error) {
		haveLast, err = tx.HasLastResort()
		return err
	}); err != nil {
		return err
	}
	n := 0
	if ok.Stored < keyPackageLow {
		n = keyPackageTarget - int(ok.Stored)
	}
	if n == 0 && haveLast {
		return nil
	}
	req := &wire.PublishKeyPackages{}
	var bundles []*mls.KeyPackageBundle
	var last []bool
	for i := 0; i < n; i++ {
		b, err := cl.newBundle(ctx, false)
		if err != nil {
			return err
		}
		msg, err := b.Message()
		if err != nil {
			return err
		}
		req.OneTime = append(req.OneTime, msg)
		bundles, last = append(bundles, b), append(last, false)
	}
	if !haveLast {
		b, err := cl.newBundle(ctx, true)
		if err != nil {
			return err
		}
		msg, err := b.Message()
		if err != nil {
			return err
		}
		req.LastResort = msg
		bundles, last = append(bundles, b), append(last, true)
	}
	err := cl.p.update(ctx, func(tx *profile.Tx) error {
		if !haveLast {
			// The replaced last-resort package stays usable for a while.
			if err := tx.RetireLastResort(); err != nil {
				return err
			}
		}
		if err := tx.DeleteKeyPackagesUsedBefore(time.Now().Add(-usedBundlesKeptFor)); err != nil {
			return err
		}
		for i, b := range bundles {
			ref, err := b.Ref()
			if err != nil {
				return err
			}
			enc, err := b.MarshalBinary()
			if err != nil {
				return err
			}
			if err := tx.AddKeyPackage(ref, enc, last[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("key packages: %w", err)
	}
	if err := cl.c.do(ctx, req, &ok); err != nil {
		return fmt.Errorf("publish key packages: %w", err)
	}
	return nil
}

// bundle returns the stored key package with this reference, or nil.
func (p *Profile) bundle(ctx context.Context, ref []byte) (*mls.KeyPackageBundle, error) {
	var enc []byte
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		enc, err = tx.KeyPackage(ref)
		return err
	})
	if errors.Is(err, profile.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return mls.UnmarshalKeyPackageBundle(enc)
}

// A Welcome that used a key package marks it used
// (profile.Tx.MarkKeyPackageUsed). A one-time package's keys are deleted
// a week later (a Welcome of a re-made commit may use it again,
// spec/09-mls.md section 9.8); a used last-resort package is replaced at
// the next connection and kept as long.

// claimKeyPackages claims one key package for each listed device of
// address and returns those that are valid and name their device; devices
// without a usable package are left out (spec/09-mls.md section 9.4). For
// the own account, a device's package must carry the signature key this
// device trusts for it (pinned), so that the homeserver cannot substitute
// a device of its own.
func (cl *Client) claimKeyPackages(ctx context.Context, address string, devices []uint32, pinned map[uint32][]byte) ([][]byte, []uint32, error) {
	var pkgs [][]byte
	var got []uint32
	for _, dev := range devices {
		var ok wire.ClaimKeyPackageOK
		err := cl.c.do(ctx, &wire.ClaimKeyPackage{Address: address, Device: dev}, &ok)
		if errors.Is(err, wire.ErrNoKeyPackage) || errors.Is(err, wire.ErrUnknownDevice) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("claim a key package of %s device %d: %w", address, dev, err)
		}
		kp, err := mls.ParseKeyPackage(ok.KeyPackage)
		if err != nil || kp.CipherSuite != suite().ID() || !slices.Contains(kp.LeafNode.Capabilities.Credentials, mls.CredentialTypeXchat) {
			continue
		}
		if address == cl.id.Address && !bytes.Equal(pinned[dev], kp.LeafNode.SignatureKey) {
			continue
		}
		body, err := cl.verifyCredential(ctx, kp.LeafNode.Credential, kp.LeafNode.SignatureKey)
		if errors.Is(err, seal.ErrNoDomainKey) {
			return nil, nil, err
		}
		if err != nil || body.Address != address || body.Device != dev {
			continue
		}
		pkgs, got = append(pkgs, ok.KeyPackage), append(got, dev)
	}
	return pkgs, got, nil
}
