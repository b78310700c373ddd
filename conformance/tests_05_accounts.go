package conformance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// accountsTests are the tests of section 5, accounts and devices: server-
// info, device keys, register, invites, authenticate, sender certificates,
// linking and removing devices.
var accountsTests = []*Test{
	{ID: "5.1/1", Level: MUST, Summary: "server-info answers before authentication with the domain, a 32-byte key and a policy",
		Cite: "It MUST equal the domain the server's certificate was verified for",
		run:  test5_1_1_ServerInfoBeforeAuth},
	{ID: "5.1/2", Level: MUST, Summary: "server-info is allowed after authentication",
		Cite: "server-info MUST be allowed on any xchat/1 connection, authenticated or not",
		run:  test5_1_2_ServerInfoAfterAuth},
	{ID: "5.3/1", Level: MUST, Summary: "device keys with a KEM other than X-Wing are malformed",
		Cite: "A server MUST reject, with malformed (1), device keys whose KEM id is not 0x647a",
		run:  test5_3_1_KEMNotXWing},
	{ID: "5.3/2", Level: MUST, Summary: "an X-Wing key of 1215 bytes is malformed",
		Cite: "A server MUST reject, with malformed (1), device keys ... whose key 3 is not exactly 1216 bytes",
		run:  test5_3_2_XWingKey1215Bytes},
	{ID: "5.3/3", Level: SHOULD, Summary: "an X-Wing key whose ML-KEM-768 part fails the FIPS 203 check is malformed",
		Cite: "A server SHOULD also reject, with malformed, an X-Wing key whose ML-KEM-768 part fails the encapsulation key check of FIPS 203",
		run:  test5_3_3_XWingKeyFailsFIPS203},
	{ID: "5.4/1", Level: MUST, Summary: "register signed over another connection's exporter is auth_failed",
		Cite: "The server MUST verify the signature over the same bytes, computed from its own side of the connection.",
		run:  test5_4_1_RegisterOtherExporter, Needs: []Need{NeedRegister}},
	{ID: "5.4/2", Level: MUST, Summary: "an authenticate signature made for another connection is auth_failed",
		Cite: "The server MUST verify the signature over the same bytes, computed from its own side of the connection.",
		run:  test5_4_2_AuthenticateOtherConnection},
	{ID: "5.5/1", Level: MUST, Summary: "register creates device 1, authenticates the connection, with no verifiers and an open request lane",
		Cite: "On success, the following MUST hold: ... the account exists with one device, device identifier 1 ...; its delivery policy has no token verifiers and an open request lane",
		run:  test5_5_1_RegisterCreatesDevice1, Needs: []Need{NeedRegister}},
	{ID: "5.5/2", Level: MUST, Summary: "register for another domain is wrong_domain",
		Cite: "The domain of key 1 is the server's domain, else wrong_domain (7).",
		run:  test5_5_2_RegisterWrongDomain, Needs: []Need{NeedRegister}},
	{ID: "5.5/3", Level: MUST, Summary: "register of an existing address is account_exists and consumes no invite",
		Cite: "Creating the account, its first device and consuming the invite MUST happen atomically: an invite is consumed only when the account is created, and a failed registration changes nothing",
		run:  test5_5_3_RegisterExistingAccount, Needs: []Need{NeedRegister}},
	{ID: "5.5/4", Level: MUST, Summary: "register under the closed policy is registration_closed",
		Cite: "The policy is not closed, else registration_closed (8).",
		run:  test5_5_4_RegistrationClosed, Needs: []Need{NeedClosed}},
	{ID: "5.6/1", Level: MUST, Summary: "register without an invite under the invite policy is invite_invalid",
		Cite: "A missing, unknown, used or expired token MUST get invite_invalid (9).",
		run:  test5_6_1_InviteMissing, Needs: []Need{NeedInvite}},
	{ID: "5.6/2", Level: MUST, Summary: "register with an unknown invite is invite_invalid",
		Cite: "A missing, unknown, used or expired token MUST get invite_invalid (9).",
		run:  test5_6_2_InviteUnknown, Needs: []Need{NeedInvite}},
	{ID: "5.6/3", Level: MUST, Summary: "an invite is single-use: a used invite is invite_invalid",
		Cite: "A missing, unknown, used or expired token MUST get invite_invalid (9).",
		run:  test5_6_3_InviteUsed, Needs: []Need{NeedInvite}},
	{ID: "5.7/1", Level: MUST, Summary: "a failed authenticate leaves the connection unauthenticated; a correct one then succeeds",
		Cite: "A failed attempt MUST leave the connection unauthenticated; the client may try again until the authentication deadline",
		run:  test5_7_1_RetryAfterFailedAuth},
	{ID: "5.7/2", Level: MUST, Summary: "authenticate with another key is auth_failed",
		Cite: "A server MUST use auth_failed for all of these failures",
		run:  test5_7_2_AuthOtherKey},
	{ID: "5.7/3", Level: MUST, Summary: "authenticate as an unknown device is auth_failed",
		Cite: "A server MUST use auth_failed for all of these failures",
		run:  test5_7_3_AuthUnknownDevice},
	{ID: "5.7/4", Level: MUST, Summary: "authenticate as an unknown account is auth_failed",
		Cite: "A server MUST use auth_failed for all of these failures",
		run:  test5_7_4_AuthUnknownAccount},
	{ID: "5.7/5", Level: MUST, Summary: "authenticate as an account of another domain is auth_failed",
		Cite: "A server MUST use auth_failed for all of these failures",
		run:  test5_7_5_AuthOtherDomain},
	{ID: "5.7/6", Level: MUST, Summary: "authenticate as device 0 is malformed",
		Cite: "The common checks (section 3.3.1) MUST cover ... device identifier 0 (malformed)",
		run:  test5_7_6_AuthDevice0},
	{ID: "5.7/7", Level: MUST, Summary: "authenticate as another account on an authenticated connection is already_authenticated and changes nothing",
		Cite: "The common checks (section 3.3.1) MUST cover the syntax of key 1 (invalid_address), device identifier 0 (malformed) and already_authenticated.",
		run:  test5_7_7_AuthenticateAsAnotherAccount},
	{ID: "5.7/8", Level: MUST, Summary: "one authenticate sent four times at once on a connection succeeds once; the others are already_authenticated",
		Cite: "The common checks (section 3.3.1) MUST cover the syntax of key 1 (invalid_address), device identifier 0 (malformed) and already_authenticated.",
		run:  test5_7_8_ConcurrentAuthenticate},
	{ID: "5.7/9", Level: MUST, Summary: "authenticate as an unknown account, an unknown device or with another key gives the same code and message",
		Cite: "A server MUST use auth_failed for all of these failures and MUST NOT reveal, by code, message or deliberate timing difference, which one occurred.",
		run:  test5_7_9_AuthFailuresAlike},
	{ID: "5.9/1", Level: MUST, Summary: "the sender certificate names the device, expires within 24 h and verifies with the domain key",
		Cite: "the expiry MUST be at most 24 hours after issuance",
		run:  test5_9_1_SenderCertValid},
	{ID: "5.9/2", Level: SHOULD, Summary: "the sender certificate expires 24 h after issuance",
		Cite: "and SHOULD be exactly 24 hours after it",
		run:  test5_9_2_SenderCertExpires24h},
	{ID: "5.9/3", Level: MUST, Summary: "each device of an account gets a certificate naming its own identifier and key",
		Cite: "the expiry MUST be at most 24 hours after issuance",
		run:  test5_9_3_CertNamesEachDevice},
	{ID: "5.11.1/1", Level: MUST, Summary: "create-link returns a 16-byte token that expires 10 minutes after issuance",
		Cite: "stores SHA-256(token) ... with the account and an expiry time exactly 10 minutes after issuance",
		run:  test5_11_1_1_CreateLinkToken},
	{ID: "5.11.1/2", Level: MUST, Summary: "a sixth live link token is limit_exceeded",
		Cite: "refuses the request with limit_exceeded (21), changing nothing, when the account already has 5 link tokens that are neither used nor expired",
		run:  test5_11_1_2_SixthLinkToken},
	{ID: "5.11.2/1", Level: MUST, Summary: "register with a link token adds the next device, listed by get-devices at once, under any policy",
		Cite: "the account has a new device with the keys of key 2 and the next device identifier (highest ever assigned in the account plus one)",
		run:  test5_11_2_1_RegisterWithLink},
	{ID: "5.11.2/2", Level: MUST, Summary: "register with an unknown link token is link_invalid",
		Cite: "SHA-256 of key 5 names a link token of the account of key 1 that is neither used nor expired, else link_invalid (28)",
		run:  test5_11_2_2_UnknownLinkToken},
	{ID: "5.11.2/3", Level: MUST, Summary: "register with both an invite and a link token is malformed",
		Cite: "After the common checks (section 3.3.1, which reject key 3 together with key 5 as malformed), the server MUST check, in order",
		run:  test5_11_2_3_InviteAndLinkToken},
	{ID: "5.11.2/4", Level: MUST, Summary: "a link token is single-use: a second register with it is link_invalid",
		Cite: "SHA-256 of key 5 names a link token of the account of key 1 that is neither used nor expired, else link_invalid (28)",
		run:  test5_11_2_4_LinkTokenTwice},
	{ID: "5.11.2/5", Level: MUST, Summary: "a valid link token presented for an address with no account is link_invalid, as for an unknown token",
		Cite: "An address with no account gives the same code, and the server MUST NOT reveal, by code, message or deliberate timing difference, whether the account exists.",
		run:  test5_11_2_5_LinkNoAccount},
	{ID: "5.11.3/1", Level: MUST, Summary: "a removed device is gone: its connection is closed with device_removed, envelopes and authentication fail",
		Cite: "The server then MUST close every connection authenticated as the removed device with the close code device_removed (5, section 2.8)",
		run:  test5_11_3_1_RemovedDeviceGone},
	{ID: "5.11.3/2", Level: MUST, Summary: "remove-device of the only device is last_device; of an unknown device unknown_device",
		Cite: "It is not the account's only device, else last_device (29)",
		run:  test5_11_3_2_RemoveLastOrUnknownDevice},
}

// test5_1_1_ServerInfoBeforeAuth checks 5.1/1: server-info answers before authentication with the domain, a 32-byte key and a policy.
func test5_1_1_ServerInfoBeforeAuth(t *T) {
	var info wire.ServerInfoOK
	t.do(t.dial(), &wire.ServerInfo{}, &info)
	if info.Domain != t.env.c.Domain || len(info.CertKey) != 32 || info.Registration > 2 {
		t.Fatalf("server-info %q, key of %d bytes, policy %d", info.Domain, len(info.CertKey), info.Registration)
	}
}

// test5_1_2_ServerInfoAfterAuth checks 5.1/2: server-info is allowed after authentication.
func test5_1_2_ServerInfoAfterAuth(t *T) {
	t.do(t.connect(t.account()), &wire.ServerInfo{}, &wire.ServerInfoOK{})
}

// test5_3_1_KEMNotXWing checks 5.3/1: device keys with a KEM other than X-Wing are malformed.
func test5_3_1_KEMNotXWing(t *T) {
	badKeys(t, func(k *wire.DeviceKeys) { k.KEM = 0x0020 })
}

// test5_3_2_XWingKey1215Bytes checks 5.3/2: an X-Wing key of 1215 bytes is malformed.
func test5_3_2_XWingKey1215Bytes(t *T) {
	badKeys(t, func(k *wire.DeviceKeys) { k.HPKEKey = k.HPKEKey[:1215] })
}

// test5_3_3_XWingKeyFailsFIPS203 checks 5.3/3: an X-Wing key whose ML-KEM-768 part fails the FIPS 203 check is malformed.
func test5_3_3_XWingKeyFailsFIPS203(t *T) {
	badKeys(t, func(k *wire.DeviceKeys) {
		for i := range 384 * 3 {
			k.HPKEKey[i] = 0xff
		}
	})
}

// test5_4_1_RegisterOtherExporter checks 5.4/1: register signed over another connection's exporter is auth_failed.
func test5_4_1_RegisterOtherExporter(t *T) {
	c := t.dial()
	d, err := newDevice()
	t.must(err, "keys")
	addr := t.env.newAddress()
	req := &wire.Register{Address: addr, Keys: d.keys(), Invite: garbageInvite,
		Signature: ed25519.Sign(d.sig, wire.DeviceAuthMessage(addr, 0, make([]byte, 32)))}
	t.expectErr(c, req, wire.CodeAuthFailed)
}

// test5_4_2_AuthenticateOtherConnection checks 5.4/2: an authenticate signature made for another connection is auth_failed.
func test5_4_2_AuthenticateOtherConnection(t *T) {
	a := t.account()
	c1, c2 := t.dial(), t.dial()
	req, err := c1.authReq(a.dev, a.address, a.id)
	t.must(err, "exporter")
	t.expectErr(c2, req, wire.CodeAuthFailed)
}

// test5_5_1_RegisterCreatesDevice1 checks 5.5/1: register creates device 1, authenticates the connection, with no verifiers and an open request lane.
func test5_5_1_RegisterCreatesDevice1(t *T) {
	var invite []byte
	if t.env.info.Registration == wire.RegistrationInvite {
		tok, err := t.env.takeInvite()
		if err != nil {
			t.Skipf("%v", err)
		}
		invite = []byte(tok)
	}
	d, err := newDevice()
	t.must(err, "keys")
	c := t.dial()
	addr := t.env.newAddress()
	req, err := c.registerReq(d, addr, invite)
	t.must(err, "exporter")
	var ok wire.RegisterOK
	t.do(c, req, &ok)
	if ok.Device != 1 {
		t.Fatalf("device %d, want 1", ok.Device)
	}
	if invite != nil {
		t.env.mu.Lock()
		t.env.used = append(t.env.used, string(invite))
		t.env.mu.Unlock()
	}
	t.untilCaughtUp(c)
	t.do(c, &wire.GetSenderCert{}, &wire.SenderCertOK{})
	a := &account{address: addr, id: 1, dev: d}
	tok := envelopeFor(a)
	tok.Token = make([]byte, 32)
	rand.Read(tok.Token)
	lane := envelopeFor(a)
	lane.Token = nil
	if r := t.send(c, tok, lane); r[0] != wire.CodeTokenInvalid || r[1] != wire.CodeOK {
		t.Fatalf("results %v, want token_invalid (no verifiers) and 0 (open request lane)", r)
	}
	t.env.donate(addr, d, 1)
}

// test5_5_2_RegisterWrongDomain checks 5.5/2: register for another domain is wrong_domain.
func test5_5_2_RegisterWrongDomain(t *T) {
	c := t.dial()
	d, err := newDevice()
	t.must(err, "keys")
	req, err := c.registerReq(d, "conf@other-"+t.env.c.Domain, garbageInvite)
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeWrongDomain)
}

// test5_5_3_RegisterExistingAccount checks 5.5/3: register of an existing address is account_exists and consumes no invite.
func test5_5_3_RegisterExistingAccount(t *T) {
	a := t.account()
	var invite []byte
	if t.env.info.Registration == wire.RegistrationInvite {
		tok, err := t.env.takeInvite()
		if err != nil {
			t.Skipf("%v", err)
		}
		invite = []byte(tok)
	}
	d, err := newDevice()
	t.must(err, "keys")
	c := t.dial()
	req, err := c.registerReq(d, a.address, invite)
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeAccountExists)
	if invite == nil {
		return
	}
	// The invite is still good.
	req, err = c.registerReq(d, t.env.newAddress(), invite)
	t.must(err, "exporter")
	var ok wire.RegisterOK
	t.do(c, req, &ok)
	t.env.donate(req.Address, d, ok.Device)
}

// test5_5_4_RegistrationClosed checks 5.5/4: register under the closed policy is registration_closed.
func test5_5_4_RegistrationClosed(t *T) {
	c := t.dial()
	d, err := newDevice()
	t.must(err, "keys")
	req, err := c.registerReq(d, t.env.newAddress(), garbageInvite)
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeRegistrationClosed)
}

// test5_6_1_InviteMissing checks 5.6/1: register without an invite under the invite policy is invite_invalid.
func test5_6_1_InviteMissing(t *T) {
	c := t.dial()
	d, err := newDevice()
	t.must(err, "keys")
	req, err := c.registerReq(d, t.env.newAddress(), nil)
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeInviteInvalid)
}

// test5_6_2_InviteUnknown checks 5.6/2: register with an unknown invite is invite_invalid.
func test5_6_2_InviteUnknown(t *T) {
	c := t.dial()
	d, err := newDevice()
	t.must(err, "keys")
	req, err := c.registerReq(d, t.env.newAddress(), garbageInvite)
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeInviteInvalid)
}

// test5_6_3_InviteUsed checks 5.6/3: an invite is single-use: a used invite is invite_invalid.
func test5_6_3_InviteUsed(t *T) {
	t.account() // registers with an invite if the pool is empty
	t.env.mu.Lock()
	used := slices.Clone(t.env.used)
	t.env.mu.Unlock()
	if len(used) == 0 {
		t.Skipf("no invite was used yet")
	}
	c := t.dial()
	d, err := newDevice()
	t.must(err, "keys")
	req, err := c.registerReq(d, t.env.newAddress(), []byte(used[0]))
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeInviteInvalid)
}

// test5_7_1_RetryAfterFailedAuth checks 5.7/1: a failed authenticate leaves the connection unauthenticated; a correct one then succeeds.
func test5_7_1_RetryAfterFailedAuth(t *T) {
	a := t.account()
	c := t.dial()
	other, err := newDevice()
	t.must(err, "keys")
	bad, err := c.authReq(other, a.address, a.id)
	t.must(err, "exporter")
	t.expectErr(c, bad, wire.CodeAuthFailed)
	t.expectErr(c, &wire.GetSenderCert{}, wire.CodeUnauthenticated)
	good, err := c.authReq(a.dev, a.address, a.id)
	t.must(err, "exporter")
	t.do(c, good, nil)
	t.do(c, &wire.GetSenderCert{}, &wire.SenderCertOK{})
}

// test5_7_2_AuthOtherKey checks 5.7/2: authenticate with another key is auth_failed.
func test5_7_2_AuthOtherKey(t *T) {
	a := t.account()
	d, err := newDevice()
	t.must(err, "keys")
	authFails(t, a.address, a.id, d)
}

// test5_7_3_AuthUnknownDevice checks 5.7/3: authenticate as an unknown device is auth_failed.
func test5_7_3_AuthUnknownDevice(t *T) {
	a := t.account()
	authFails(t, a.address, 4000000000, a.dev)
}

// test5_7_4_AuthUnknownAccount checks 5.7/4: authenticate as an unknown account is auth_failed.
func test5_7_4_AuthUnknownAccount(t *T) {
	d, err := newDevice()
	t.must(err, "keys")
	authFails(t, t.env.newAddress(), 1, d)
}

// test5_7_5_AuthOtherDomain checks 5.7/5: authenticate as an account of another domain is auth_failed.
func test5_7_5_AuthOtherDomain(t *T) {
	d, err := newDevice()
	t.must(err, "keys")
	authFails(t, "conf@other-"+t.env.c.Domain, 1, d)
}

// test5_7_6_AuthDevice0 checks 5.7/6: authenticate as device 0 is malformed.
func test5_7_6_AuthDevice0(t *T) {
	a := t.account()
	c := t.dial()
	req, err := c.authReq(a.dev, a.address, 0)
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeMalformed)
}

// test5_9_1_SenderCertValid checks 5.9/1: the sender certificate names the device, expires within 24 h and verifies with the domain key.
func test5_9_1_SenderCertValid(t *T) {
	a := t.account()
	c := t.connect(a)
	var ok wire.SenderCertOK
	before := time.Now()
	t.do(c, &wire.GetSenderCert{}, &ok)
	var cert wire.SenderCert
	t.must(wire.Unmarshal(ok.Cert, &cert), "sender-cert")
	var body wire.SenderCertBody
	t.must(wire.Unmarshal(cert.Body, &body), "sender-cert-body")
	if body.Address != a.address || body.Device != a.id || !bytes.Equal(body.SigKey, a.dev.keys().SigKey) {
		t.Fatalf("certificate for %s device %d", body.Address, body.Device)
	}
	if !ed25519.Verify(t.env.info.CertKey, wire.SenderCertMessage(cert.Body), cert.Signature) {
		t.Fatalf("the signature does not verify with server-info key 2")
	}
	exp := time.Unix(int64(body.Expires), 0)
	if exp.After(time.Now().Add(24*time.Hour+time.Second)) || exp.Before(before) {
		t.Fatalf("expires %s", exp.UTC())
	}
}

// test5_9_2_SenderCertExpires24h checks 5.9/2: the sender certificate expires 24 h after issuance.
func test5_9_2_SenderCertExpires24h(t *T) {
	c := t.connect(t.account())
	var ok wire.SenderCertOK
	t.do(c, &wire.GetSenderCert{}, &ok)
	var cert wire.SenderCert
	var body wire.SenderCertBody
	t.must(wire.Unmarshal(ok.Cert, &cert), "sender-cert")
	t.must(wire.Unmarshal(cert.Body, &body), "sender-cert-body")
	d := time.Until(time.Unix(int64(body.Expires), 0)) - 24*time.Hour
	if d < -2*time.Minute || d > time.Minute {
		t.Fatalf("expires %s from 24 h", d.Round(time.Second))
	}
}

// test5_11_1_1_CreateLinkToken checks 5.11.1/1: create-link returns a 16-byte token that expires 10 minutes after issuance.
func test5_11_1_1_CreateLinkToken(t *T) {
	a := t.accountsWhere(1, canLink(1))[0]
	c := t.connect(a)
	before := time.Now()
	var ok wire.CreateLinkOK
	t.do(c, &wire.CreateLink{}, &ok)
	a.links++
	exp := time.Unix(int64(ok.Expires), 0)
	if len(ok.Token) != 16 || exp.Before(before.Add(10*time.Minute-2*time.Second)) || exp.After(time.Now().Add(10*time.Minute+time.Second)) {
		t.Fatalf("token of %d bytes, expires %s (issued at %s)", len(ok.Token), exp.UTC(), before.UTC())
	}
}

// test5_11_1_2_SixthLinkToken checks 5.11.1/2: a sixth live link token is limit_exceeded.
func test5_11_1_2_SixthLinkToken(t *T) {
	// An account without a linked device: those with one link more.
	a := t.accountsWhere(1, func(a *account) bool { return oneDevice(a) && canLink(0)(a) })[0]
	c := t.connect(a)
	for a.links < wire.MaxLinkTokens {
		t.do(c, &wire.CreateLink{}, &wire.CreateLinkOK{})
		a.links++
	}
	t.expectErr(c, &wire.CreateLink{}, wire.CodeLimitExceeded)
}

// test5_11_2_1_RegisterWithLink checks 5.11.2/1: register with a link token adds the next device, listed by get-devices at once, under any policy.
func test5_11_2_1_RegisterWithLink(t *T) {
	a := t.accountsWhere(1, func(a *account) bool { return oneDevice(a) && canLink(1)(a) })[0]
	c := t.connect(a)
	want := a.maxID + 1
	nc, d, id := t.link(a, c)
	a.extra = append(a.extra, linked{id: id, dev: d}) // the pool keeps it
	if id != want {
		t.Errorf("device %d, want %d", id, want)
	}
	var ok wire.GetDevicesOK
	t.do(c, &wire.GetDevices{Address: a.address}, &ok)
	found := false
	for _, x := range ok.Devices {
		found = found || (x.ID == id && bytes.Equal(x.Keys.HPKEKey, d.keys().HPKEKey))
	}
	if len(ok.Devices) != 2 || !found {
		t.Fatalf("devices %+v", ok.Devices)
	}
	t.untilCaughtUp(nc) // the connection is authenticated as the new device
	t.do(nc, &wire.GetSenderCert{}, &wire.SenderCertOK{})
}

// test5_11_2_2_UnknownLinkToken checks 5.11.2/2: register with an unknown link token is link_invalid.
func test5_11_2_2_UnknownLinkToken(t *T) {
	a := t.account()
	d, err := newDevice()
	t.must(err, "keys")
	c := t.dial()
	req, err := c.registerReq(d, a.address, nil)
	t.must(err, "exporter")
	req.Link = randomID()
	t.expectErr(c, req, wire.CodeLinkInvalid)
}

// test5_11_2_3_InviteAndLinkToken checks 5.11.2/3: register with both an invite and a link token is malformed.
func test5_11_2_3_InviteAndLinkToken(t *T) {
	d, err := newDevice()
	t.must(err, "keys")
	c := t.dial()
	req, err := c.registerReq(d, t.env.newAddress(), garbageInvite)
	t.must(err, "exporter")
	req.Link = randomID()
	t.expectErr(c, req, wire.CodeMalformed)
}

// test5_11_3_1_RemovedDeviceGone checks 5.11.3/1: a removed device is gone: its connection is closed with device_removed, envelopes and authentication fail.
func test5_11_3_1_RemovedDeviceGone(t *T) {
	as := t.accountsFirst(2, twoDevices)
	a := as[0]
	c := t.connect(a)
	l := t.extraDevice(a, c)
	d, id := l.dev, l.id
	nc := t.connect(a.as(l))
	t.untilCaughtUp(nc)
	t.do(c, &wire.RemoveDevice{Device: id}, nil)
	a.extra = slices.DeleteFunc(a.extra, func(x linked) bool { return x.id == id })
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	ae, err := closeCode(ctx, nc.qc)
	if err != nil || !ae.Remote || ae.ErrorCode != wire.CloseDeviceRemoved {
		t.Errorf("the removed device's connection: %v %v, want closed with device_removed (5)", ae, err)
	}
	var ok wire.GetDevicesOK
	t.do(c, &wire.GetDevices{Address: a.address}, &ok)
	for _, x := range ok.Devices {
		if x.ID == id {
			t.Errorf("get-devices still lists device %d", id)
		}
	}
	e := envelopeFor(a)
	e.To.Device = id
	t.sendCode(t.connect(as[1]), e, wire.CodeUnknownDevice)
	ac := t.dial()
	req, err := ac.authReq(d, a.address, id)
	t.must(err, "exporter")
	t.expectErr(ac, req, wire.CodeAuthFailed)
}

// test5_11_3_2_RemoveLastOrUnknownDevice checks 5.11.3/2: remove-device of the only device is last_device; of an unknown device unknown_device.
func test5_11_3_2_RemoveLastOrUnknownDevice(t *T) {
	a := t.accountsWhere(1, oneDevice)[0]
	c := t.connect(a)
	t.expectErr(c, &wire.RemoveDevice{Device: 4000000000}, wire.CodeUnknownDevice)
	t.expectErr(c, &wire.RemoveDevice{Device: a.id}, wire.CodeLastDevice)
	t.expectRaw(c, frameOf(hx("a2 00 0d 01 00")), wire.CodeMalformed)
}

// link creates a link token on c (authenticated as a) and registers a new
// device with it on a new connection, which it returns with the device.
func (t *T) link(a *account, c *conn) (*conn, *device, uint32) {
	var tok wire.CreateLinkOK
	t.do(c, &wire.CreateLink{}, &tok)
	d, err := newDevice()
	t.must(err, "keys")
	for attempt := 0; ; attempt++ {
		nc := t.dial()
		req, err := nc.registerReq(d, a.address, nil)
		t.must(err, "exporter")
		req.Link = tok.Token
		var ok wire.RegisterOK
		err = nc.request(t.ctx, req, &ok)
		var pe *wire.Error
		if errors.As(err, &pe) && pe.Code == wire.CodeRateLimited && attempt == 0 && pe.RetryAfter <= time.Minute {
			// The server's registration limit (section 2.10): wait once.
			nc.close()
			select {
			case <-time.After(pe.RetryAfter):
			case <-t.ctx.Done():
			}
			continue
		}
		t.must(err, "register with a link token")
		if ok.Device > a.maxID {
			a.maxID = ok.Device
		}
		return nc, d, ok.Device
	}
}

// garbageInvite is an invite token that no server issued.
var garbageInvite = []byte("conformance-not-an-invite")

// badKeys registers a fresh address with device keys changed by mut and
// expects malformed.
func badKeys(t *T, mut func(k *wire.DeviceKeys)) {
	c := t.dial()
	d, err := newDevice()
	t.must(err, "keys")
	req, err := c.registerReq(d, t.env.newAddress(), nil)
	t.must(err, "exporter")
	mut(&req.Keys)
	t.expectErr(c, req, wire.CodeMalformed)
}

// authFails authenticates as device id of address with d's keys on a new
// connection and expects auth_failed.
func authFails(t *T, address string, id uint32, d *device) {
	c := t.dial()
	req, err := c.authReq(d, address, id)
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeAuthFailed)
}

// canLink selects accounts that can create n more link tokens.
func canLink(n int) func(a *account) bool {
	return func(a *account) bool { return a.links+n <= wire.MaxLinkTokens }
}

// test5_7_7_AuthenticateAsAnotherAccount checks 5.7/7: authenticate as another account on an authenticated connection is already_authenticated and changes nothing.
func test5_7_7_AuthenticateAsAnotherAccount(t *T) {
	as := t.accounts(2)
	c := t.connect(as[0])
	req, err := c.authReq(as[1].dev, as[1].address, as[1].id)
	t.must(err, "exporter")
	t.expectErr(c, req, wire.CodeAlreadyAuthenticated)
	if body := t.senderCert(c); body.Address != as[0].address || body.Device != as[0].id {
		t.Fatalf("the connection now acts for %s device %d", body.Address, body.Device)
	}
}

// test5_7_8_ConcurrentAuthenticate checks 5.7/8: one authenticate sent four times at once on a connection succeeds once; the others are already_authenticated.
func test5_7_8_ConcurrentAuthenticate(t *T) {
	a := t.account()
	c := t.dial()
	req, err := c.authReq(a.dev, a.address, a.id)
	t.must(err, "exporter")
	// Four request streams, each with the whole frame, then the four FINs
	// together: the server sees the requests at once.
	f, err := wire.EncodeRequest(req)
	t.must(err, "encode")
	sts := make([]*quic.Stream, 4)
	for i := range sts {
		st, err := c.qc.OpenStreamSync(t.ctx)
		t.must(err, "open stream")
		st.SetDeadline(time.Now().Add(pushWait))
		_, err = st.Write(f)
		t.must(err, "write")
		sts[i] = st
	}
	for _, st := range sts {
		st.Close()
	}
	errs := make([]error, len(sts))
	var wg sync.WaitGroup
	for i, st := range sts {
		wg.Go(func() {
			p, err := readResponse(st)
			if err == nil {
				err = wire.DecodeResponse(p, &wire.OK{})
			}
			errs[i] = err
		})
	}
	wg.Wait()
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case wire.CodeOf(err) != wire.CodeAlreadyAuthenticated:
			t.Fatalf("authenticate: %v, want success or already_authenticated", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of %d identical authenticate requests succeeded, want 1", ok, len(errs))
	}
	t.untilCaughtUp(c)
}

// test5_9_3_CertNamesEachDevice checks 5.9/3: each device of an account gets a certificate naming its own identifier and key.
func test5_9_3_CertNamesEachDevice(t *T) {
	a := t.accountsWhere(1, twoDevices)[0]
	c := t.connect(a)
	l := t.extraDevice(a, c)
	for _, d := range []*account{a, a.as(l)} {
		body := t.senderCert(t.connect(d))
		if body.Address != d.address || body.Device != d.id || !bytes.Equal(body.SigKey, d.dev.keys().SigKey) {
			t.Fatalf("device %d got a certificate for %s device %d (its own key: %v)", d.id, body.Address, body.Device,
				bytes.Equal(body.SigKey, d.dev.keys().SigKey))
		}
	}
}

// test5_11_2_4_LinkTokenTwice checks 5.11.2/4: a link token is single-use: a second register with it is link_invalid.
func test5_11_2_4_LinkTokenTwice(t *T) {
	a := t.accountsFirst(1, func(a *account) bool { return twoDevices(a) && canLink(1)(a) })[0] // single-device accounts stay so
	c := t.connect(a)
	var tok wire.CreateLinkOK
	t.do(c, &wire.CreateLink{}, &tok)
	d, err := newDevice()
	t.must(err, "keys")
	id := t.registerLinked(a, d, a.address, tok.Token, 0)
	a.extra = append(a.extra, linked{id: id, dev: d})
	d2, err := newDevice()
	t.must(err, "keys")
	t.registerLinked(a, d2, a.address, tok.Token, wire.CodeLinkInvalid)
}

// test5_11_2_5_LinkNoAccount checks 5.11.2/5: a valid link token presented for an address with no account is link_invalid, as for an unknown token.
func test5_11_2_5_LinkNoAccount(t *T) {
	a := t.accountsWhere(1, canLink(1))[0]
	c := t.connect(a)
	var tok wire.CreateLinkOK
	t.do(c, &wire.CreateLink{}, &tok)
	a.links++
	d, err := newDevice()
	t.must(err, "keys")
	t.registerLinked(a, d, t.env.newAddress(), tok.Token, wire.CodeLinkInvalid)
}

// senderCert gets a sender certificate on c and returns its body.
func (t *T) senderCert(c *conn) wire.SenderCertBody {
	var ok wire.SenderCertOK
	t.do(c, &wire.GetSenderCert{}, &ok)
	var cert wire.SenderCert
	var body wire.SenderCertBody
	t.must(wire.Unmarshal(ok.Cert, &cert), "sender-cert")
	t.must(wire.Unmarshal(cert.Body, &body), "sender-cert-body")
	if !ed25519.Verify(t.env.info.CertKey, wire.SenderCertMessage(cert.Body), cert.Signature) {
		t.Fatalf("the certificate's signature does not verify with server-info key 2")
	}
	return body
}

// twoDevices selects accounts with a linked device that the pool keeps
// (its first account has one; see extraDevice).
func twoDevices(a *account) bool { return len(a.extra) > 0 }

// extraDevice returns a linked device of a that the pool keeps, linking
// one on c (authenticated as a) when a has none (an account the pool made
// past its size, when no account with a linked device was left).
func (t *T) extraDevice(a *account, c *conn) linked {
	if len(a.extra) > 0 {
		return a.extra[0]
	}
	nc, d, id := t.link(a, c)
	nc.close()
	l := linked{id: id, dev: d}
	a.extra = append(a.extra, l)
	return l
}

// registerLinked registers device d for address with link token tok on a
// new connection and returns its identifier; with code other than 0 it
// requires that error instead. A registration refused by the server's
// rate limit (section 2.10) is tried once more after the time it names.
func (t *T) registerLinked(a *account, d *device, address string, tok []byte, code wire.Code) uint32 {
	for attempt := 0; ; attempt++ {
		c, err := t.env.dial(t.ctx)
		t.must(err, "connect")
		t.Cleanup(c.close)
		req, err := c.registerReq(d, address, nil)
		t.must(err, "exporter")
		req.Link = tok
		var ok wire.RegisterOK
		err = c.request(t.ctx, req, &ok)
		var pe *wire.Error
		if errors.As(err, &pe) && pe.Code == wire.CodeRateLimited && attempt == 0 && pe.RetryAfter <= time.Minute {
			c.close()
			select {
			case <-time.After(pe.RetryAfter):
			case <-t.ctx.Done():
			}
			continue
		}
		if code != wire.CodeOK {
			t.wantCode(err, code, "register with a link token")
			return 0
		}
		t.must(err, "register with a link token")
		if ok.Device > a.maxID {
			a.maxID = ok.Device
		}
		return ok.Device
	}
}

// test5_7_9_AuthFailuresAlike checks 5.7/9: authenticate as an unknown account, an unknown device or with another key gives the same code and message.
func test5_7_9_AuthFailuresAlike(t *T) {
	a := t.account()
	other, err := newDevice()
	t.must(err, "keys")
	cases := []struct {
		what    string
		d       *device
		address string
		id      uint32
	}{
		{"an unknown account", other, t.env.newAddress(), 1},
		{"an unknown device", a.dev, a.address, 4000000000},
		{"another key", other, a.address, a.id},
	}
	var first *wire.Error
	for _, k := range cases {
		c := t.dial()
		req, err := c.authReq(k.d, k.address, k.id)
		t.must(err, "exporter")
		err = c.request(t.ctx, req, &wire.OK{})
		var pe *wire.Error
		if !errors.As(err, &pe) || pe.Code != wire.CodeAuthFailed {
			t.Fatalf("authenticate with %s: %v, want auth_failed", k.what, err)
		}
		if first == nil {
			first = pe
		} else if pe.Message != first.Message {
			t.Fatalf("authenticate with %s: message %q; with %s: %q", k.what, pe.Message, cases[0].what, first.Message)
		}
	}
}
