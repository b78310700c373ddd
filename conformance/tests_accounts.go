package conformance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// selfSigned returns a throwaway self-signed client certificate.
func selfSigned() (tls.Certificate, error) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}, nil
}

// closeCode waits for c to close and returns its application error, if
// the server closed it with one.
func closeCode(ctx context.Context, qc *quic.Conn) (*quic.ApplicationError, error) {
	select {
	case <-qc.Context().Done():
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	var ae *quic.ApplicationError
	if errors.As(context.Cause(qc.Context()), &ae) {
		return ae, nil
	}
	return nil, fmt.Errorf("closed with %v", context.Cause(qc.Context()))
}

// garbageInvite is an invite token that no server issued.
var garbageInvite = []byte("conformance-not-an-invite")

func init() {
	register("2.2/1", MUST, "a handshake that offers no supported ALPN fails with no_application_protocol (0x0178)",
		"A server MUST NOT complete a handshake in which no protocol it supports was offered: it aborts with the TLS alert no_application_protocol (120)", func(t *T) {
			conf := t.env.tls.Clone()
			conf.NextProtos = []string{"h3"}
			c, err := t.env.dialTLS(t.ctx, conf)
			if err == nil {
				c.close()
				t.Fatalf("the handshake completed")
			}
			var te *quic.TransportError
			if !errors.As(err, &te) || te.ErrorCode != 0x178 {
				t.Fatalf("handshake failed with %v, want CRYPTO_ERROR 0x0178", err)
			}
		})
	register("2.2/2", MUST, "a client offering xchat/1 gets xchat/1",
		"The TLS handshake MUST negotiate an application protocol with ALPN", func(t *T) {
			c := t.dial()
			if p := c.qc.ConnectionState().TLS.NegotiatedProtocol; p != wire.ALPN {
				t.Fatalf("negotiated %q", p)
			}
		})
	register("2.3/1", MUST, "the server's certificate is valid for its domain and server-info names that domain",
		"The homeserver of a domain presents an X.509 certificate chain that is valid for that domain", func(t *T) {
			c := t.dial() // the handshake verified the chain for the domain
			var info wire.ServerInfoOK
			t.do(c, &wire.ServerInfo{}, &info)
			if info.Domain != t.env.c.Domain {
				t.Fatalf("server-info names %q", info.Domain)
			}
		})
	register("2.3/2", MUST, "a client certificate on xchat/1 is not required and, when presented, ignored",
		"on an xchat/1 connection it MUST NOT require one and ignores any that is presented", func(t *T) {
			cert, err := selfSigned()
			t.must(err, "certificate")
			conf := t.env.tls.Clone()
			conf.Certificates = []tls.Certificate{cert}
			c, err := t.env.dialTLS(t.ctx, conf)
			t.must(err, "handshake with a self-signed client certificate")
			defer c.close()
			t.do(c, &wire.ServerInfo{}, &wire.ServerInfoOK{})
		})
	register("2.4/1", MUST, "the server allows the client no unidirectional streams",
		"The client MUST NOT open unidirectional streams (the server's limit is 0", func(t *T) {
			c := t.dial()
			if _, err := c.qc.OpenUniStream(); err == nil {
				t.Fatalf("the server's limit allowed a unidirectional stream")
			}
		})
	register("2.4/2", MUST, "the server allows 100 concurrent request streams, not more",
		"The server allows at most 100 concurrently open request streams per connection", func(t *T) {
			c := t.dial()
			for i := range 100 {
				if _, err := c.qc.OpenStream(); err != nil {
					t.Fatalf("stream %d: %v", i+1, err)
				}
			}
			if _, err := c.qc.OpenStream(); err == nil {
				t.Fatalf("a 101st concurrent stream was allowed")
			}
		})
	register("2.4/3", MUST, "after authentication the server opens one push stream whose first frame is deliver or caught-up",
		"After the connection is authenticated (section 5.8) the server opens exactly one unidirectional stream, the push stream (section 3.4), and writes to it at once", func(t *T) {
			c := t.connect(t.account())
			it, err := c.pushes().next(t.ctx)
			t.must(err, "push stream")
			switch it.msg.(type) {
			case *wire.Deliver, *wire.CaughtUp:
			default:
				t.Fatalf("first push frame %T", it.msg)
			}
			ctx, cancel := context.WithTimeout(t.ctx, 200*time.Millisecond)
			defer cancel()
			if _, err := c.qc.AcceptUniStream(ctx); err == nil {
				t.Fatalf("a second unidirectional stream")
			}
			if _, err := c.qc.AcceptStream(ctx); err == nil {
				t.Fatalf("the server opened a bidirectional stream")
			}
		})
	t := register("2.5/1", MUST, "a connection that does not authenticate is closed with auth_timeout (2) within 10 s; failed attempts do not extend it",
		"A server MUST close a connection that has not completed a successful register or authenticate ... within 10 s of handshake completion, with the application error auth_timeout (2).", func(t *T) {
			start := time.Now()
			c := t.dial()
			a := &account{address: "nobody@" + t.env.c.Domain, id: 1}
			d, err := newDevice()
			t.must(err, "keys")
			req, err := c.authReq(d, a.address, 1)
			t.must(err, "exporter")
			t.expectErr(c, req, wire.CodeAuthFailed)
			ctx, cancel := context.WithTimeout(t.ctx, 20*time.Second)
			defer cancel()
			ae, err := closeCode(ctx, c.qc)
			t.must(err, "waiting for the close")
			if !ae.Remote || ae.ErrorCode != wire.CloseAuthTimeout {
				t.Fatalf("closed with %v, want auth_timeout (2) from the server", ae)
			}
			if el := time.Since(start); el > 13*time.Second { // 10 s and slack for a loaded machine
				t.Fatalf("closed after %s", el.Round(time.Millisecond))
			}
		})
	t.Slow = true
	register("2.6/1", MUST, "the server does not accept 0-RTT data",
		"Servers MUST NOT accept 0-RTT data on xchat/1 or xchat-fed/1 connections in v0", func(t *T) {
			conf := t.env.tls.Clone()
			conf.ClientSessionCache = tls.NewLRUClientSessionCache(4)
			c, err := t.env.dialTLS(t.ctx, conf)
			t.must(err, "first connection")
			t.do(c, &wire.ServerInfo{}, &wire.ServerInfoOK{})
			c.close()
			qc, err := quic.DialAddrEarly(t.ctx, t.env.c.Server, conf, &quic.Config{})
			t.must(err, "second connection")
			defer qc.CloseWithError(0, "")
			select {
			case <-qc.HandshakeComplete():
			case <-t.ctx.Done():
				t.Fatalf("handshake: %v", t.ctx.Err())
			}
			if qc.ConnectionState().Used0RTT {
				t.Fatalf("the server accepted 0-RTT")
			}
		})
	register("2.7/1", SHOULD, "a new authenticated connection of a device ends the push stream of the older one",
		"the server SHOULD end the push stream of the older connection (finish it with FIN after any frame in progress)", func(t *T) {
			a := t.account()
			c1 := t.connect(a)
			t.untilCaughtUp(c1)
			t.connect(a)
			ctx, cancel := context.WithTimeout(t.ctx, 5*time.Second)
			defer cancel()
			for {
				_, err := c1.pushes().next(ctx)
				if errors.Is(err, io.EOF) {
					return
				}
				if err != nil {
					t.Fatalf("older push stream: %v, want its end (FIN)", err)
				}
			}
		})

	// 4 addressing
	register("4.3/1", MUST, "an address with uppercase letters is invalid_address",
		"a server MUST reject a request containing an address that is not in normal form or is invalid with invalid_address (6)", func(t *T) {
			t.expectErr(t.connect(t.account()), &wire.GetDevices{Address: "Alice@" + t.env.c.Domain}, wire.CodeInvalidAddress)
		})
	register("4.3/2", MUST, "an address with a trailing dot is invalid_address",
		"a server MUST reject a request containing an address that is not in normal form or is invalid with invalid_address (6)", func(t *T) {
			t.expectErr(t.connect(t.account()), &wire.GetDevices{Address: "alice@" + t.env.c.Domain + "."}, wire.CodeInvalidAddress)
		})
	register("4.3/3", MUST, "one envelope with an invalid recipient fails the whole send with invalid_address",
		"This applies to the whole request, also when the address is the recipient of one envelope of a send", func(t *T) {
			a := t.account()
			c := t.connect(a)
			bad := envelopeFor(a)
			bad.To.Address = "al..ice@" + t.env.c.Domain
			good := envelopeFor(a)
			t.expectErr(c, &wire.Send{Envelopes: []wire.Envelope{good, bad}}, wire.CodeInvalidAddress)
			t.untilCaughtUp(c)
			if got := t.pushedWithin(c, 300*time.Millisecond, good.ID); got {
				t.Fatalf("the valid envelope of the refused request was stored")
			}
		})

	// 5 accounts
	register("5.1/1", MUST, "server-info answers before authentication with the domain, a 32-byte key and a policy",
		"server-info is allowed on any xchat/1 connection, authenticated or not", func(t *T) {
			var info wire.ServerInfoOK
			t.do(t.dial(), &wire.ServerInfo{}, &info)
			if info.Domain != t.env.c.Domain || len(info.CertKey) != 32 || info.Registration > 2 {
				t.Fatalf("server-info %q, key of %d bytes, policy %d", info.Domain, len(info.CertKey), info.Registration)
			}
		})
	register("5.1/2", MUST, "server-info is allowed after authentication",
		"After authentication, register and authenticate get already_authenticated (24). server-info remains allowed.", func(t *T) {
			t.do(t.connect(t.account()), &wire.ServerInfo{}, &wire.ServerInfoOK{})
		})
	register("15.2/1", MUST, "server-info announces exactly the fixed limits (keys 1, 2, 3, 4, 6)",
		"For keys 1, 2, 3, 4 and 6, a v0 server MUST announce exactly the values above.", func(t *T) {
			l := t.env.info.Limits
			if l.MaxFrame != 1048576 || l.MaxSealed != 66672 || l.MaxEnvelopesPerSend != 256 || l.MaxIDsPerAck != 1024 || l.MaxKeyPackageLen != 16384 {
				t.Fatalf("limits %+v", l)
			}
		})
	register("15.2/2", MUST, "server-info announces the policy limits it applies (keys 5, 7, 8)",
		"a server MAY apply a different value for the reasons given and MUST announce it where the column \"server-info\" says so", func(t *T) {
			l := t.env.info.Limits
			if l.MaxKeyPackages == 0 || l.RetentionSeconds == 0 || l.MailboxMaxEnvelopes == 0 {
				t.Fatalf("limits %+v", l)
			}
		})
	badKeys := func(t *T, mut func(k *wire.DeviceKeys)) {
		c := t.dial()
		d, err := newDevice()
		t.must(err, "keys")
		req, err := c.registerReq(d, t.env.newAddress(), nil)
		t.must(err, "exporter")
		mut(&req.Keys)
		t.expectErr(c, req, wire.CodeMalformed)
	}
	register("5.3/1", MUST, "device keys with a KEM other than X-Wing are malformed",
		"A server MUST reject, with malformed (1), device keys whose KEM id is not 0x647a", func(t *T) {
			badKeys(t, func(k *wire.DeviceKeys) { k.KEM = 0x0020 })
		})
	register("5.3/2", MUST, "an X-Wing key of 1215 bytes is malformed",
		"A server MUST reject, with malformed (1), device keys ... whose key 3 is not exactly 1216 bytes", func(t *T) {
			badKeys(t, func(k *wire.DeviceKeys) { k.HPKEKey = k.HPKEKey[:1215] })
		})
	register("5.3/3", SHOULD, "an X-Wing key whose ML-KEM-768 part fails the FIPS 203 check is malformed",
		"A server SHOULD also reject, with malformed, an X-Wing key whose ML-KEM-768 part fails the encapsulation key check of FIPS 203", func(t *T) {
			badKeys(t, func(k *wire.DeviceKeys) {
				for i := range 384 * 3 {
					k.HPKEKey[i] = 0xff
				}
			})
		})
	register("5.4/1", MUST, "register signed over another connection's exporter is auth_failed",
		"The server verifies the signature over the same bytes, computed from its own side of the connection.", func(t *T) {
			c := t.dial()
			d, err := newDevice()
			t.must(err, "keys")
			addr := t.env.newAddress()
			req := &wire.Register{Address: addr, Keys: d.keys(), Invite: garbageInvite,
				Signature: ed25519.Sign(d.sig, wire.DeviceAuthMessage(addr, 0, make([]byte, 32)))}
			t.expectErr(c, req, wire.CodeAuthFailed)
		}, NeedRegister)
	register("5.4/2", MUST, "an authenticate signature made for another connection is auth_failed",
		"Because the exporter is unique to the connection, a signature cannot be replayed on another connection", func(t *T) {
			a := t.account()
			c1, c2 := t.dial(), t.dial()
			req, err := c1.authReq(a.dev, a.address, a.id)
			t.must(err, "exporter")
			t.expectErr(c2, req, wire.CodeAuthFailed)
		})
	register("5.5/1", MUST, "register creates device 1, authenticates the connection, with no verifiers and an open request lane",
		"the account exists with one device, device identifier 1 ...; its delivery policy has no token verifiers and an open request lane", func(t *T) {
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
		}, NeedRegister)
	register("5.5/2", MUST, "register for another domain is wrong_domain",
		"The domain of key 1 is the server's domain, else wrong_domain (7).", func(t *T) {
			c := t.dial()
			d, err := newDevice()
			t.must(err, "keys")
			req, err := c.registerReq(d, "conf@other-"+t.env.c.Domain, garbageInvite)
			t.must(err, "exporter")
			t.expectErr(c, req, wire.CodeWrongDomain)
		}, NeedRegister)
	register("5.5/3", MUST, "register of an existing address is account_exists and consumes no invite",
		"an invite is consumed only when the account is created, and a failed registration changes nothing", func(t *T) {
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
			t.do(c, req, &wire.RegisterOK{})
		}, NeedRegister)
	register("5.5/4", MUST, "register under the closed policy is registration_closed",
		"The policy is not closed, else registration_closed (8).", func(t *T) {
			c := t.dial()
			d, err := newDevice()
			t.must(err, "keys")
			req, err := c.registerReq(d, t.env.newAddress(), garbageInvite)
			t.must(err, "exporter")
			t.expectErr(c, req, wire.CodeRegistrationClosed)
		}, NeedClosed)
	register("5.6/1", MUST, "register without an invite under the invite policy is invite_invalid",
		"Under the invite policy, key 3 is present, else invite_invalid (9).", func(t *T) {
			c := t.dial()
			d, err := newDevice()
			t.must(err, "keys")
			req, err := c.registerReq(d, t.env.newAddress(), nil)
			t.must(err, "exporter")
			t.expectErr(c, req, wire.CodeInviteInvalid)
		}, NeedInvite)
	register("5.6/2", MUST, "register with an unknown invite is invite_invalid",
		"A missing, unknown, used or expired token gives invite_invalid (9).", func(t *T) {
			c := t.dial()
			d, err := newDevice()
			t.must(err, "keys")
			req, err := c.registerReq(d, t.env.newAddress(), garbageInvite)
			t.must(err, "exporter")
			t.expectErr(c, req, wire.CodeInviteInvalid)
		}, NeedInvite)
	register("5.6/3", MUST, "an invite is single-use: a used invite is invite_invalid",
		"A token is single-use: a successful register consumes it.", func(t *T) {
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
		}, NeedInvite)
	authFails := func(t *T, address string, id uint32, d *device) {
		c := t.dial()
		req, err := c.authReq(d, address, id)
		t.must(err, "exporter")
		t.expectErr(c, req, wire.CodeAuthFailed)
	}
	register("5.7/1", MUST, "a failed authenticate leaves the connection unauthenticated; a correct one then succeeds",
		"A failed attempt leaves the connection unauthenticated; the client may try again until the authentication deadline", func(t *T) {
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
		})
	register("5.7/2", MUST, "authenticate with another key is auth_failed",
		"the signature must verify with that device's signature key; every one of these failures gives auth_failed (13)", func(t *T) {
			a := t.account()
			d, err := newDevice()
			t.must(err, "keys")
			authFails(t, a.address, a.id, d)
		})
	register("5.7/3", MUST, "authenticate as an unknown device is auth_failed",
		"the account and the device must exist ...; every one of these failures gives auth_failed (13)", func(t *T) {
			a := t.account()
			authFails(t, a.address, 4000000000, a.dev)
		})
	register("5.7/4", MUST, "authenticate as an unknown account is auth_failed",
		"the account and the device must exist ...; every one of these failures gives auth_failed (13)", func(t *T) {
			d, err := newDevice()
			t.must(err, "keys")
			authFails(t, t.env.newAddress(), 1, d)
		})
	register("5.7/5", MUST, "authenticate as an account of another domain is auth_failed",
		"Then the account must be on the server's domain ...; every one of these failures gives auth_failed (13)", func(t *T) {
			d, err := newDevice()
			t.must(err, "keys")
			authFails(t, "conf@other-"+t.env.c.Domain, 1, d)
		})
	register("5.7/6", MUST, "authenticate as device 0 is malformed",
		"The common checks (section 3.3.1) cover ... device identifier 0 (malformed)", func(t *T) {
			a := t.account()
			c := t.dial()
			req, err := c.authReq(a.dev, a.address, 0)
			t.must(err, "exporter")
			t.expectErr(c, req, wire.CodeMalformed)
		})
	register("5.9/1", MUST, "the sender certificate names the device, expires within 24 h and verifies with the domain key",
		"the expiry MUST be at most 24 hours after issuance", func(t *T) {
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
		})
	register("5.9/2", SHOULD, "the sender certificate expires 24 h after issuance",
		"and SHOULD be exactly 24 hours after it", func(t *T) {
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
		})

	// 6 key directory
	register("6.1/1", MUST, "get-devices lists the account's devices with their keys exactly as registered",
		"The response lists every device of the account, in ascending order of device identifier, each with its keys exactly as registered", func(t *T) {
			as := t.accounts(2)
			var ok wire.GetDevicesOK
			t.do(t.connect(as[0]), &wire.GetDevices{Address: as[1].address}, &ok)
			k := as[1].dev.keys()
			if len(ok.Devices) != 1 || ok.Devices[0].ID != as[1].id || !bytes.Equal(ok.Devices[0].Keys.SigKey, k.SigKey) ||
				ok.Devices[0].Keys.KEM != k.KEM || !bytes.Equal(ok.Devices[0].Keys.HPKEKey, k.HPKEKey) {
				t.Fatalf("devices %+v", ok.Devices)
			}
		})
	register("6.1/2", MUST, "get-devices of an unknown account is unknown_account",
		"The account exists, else unknown_account (11).", func(t *T) {
			t.expectErr(t.connect(t.account()), &wire.GetDevices{Address: t.env.newAddress()}, wire.CodeUnknownAccount)
		})
	cleanKP := func(a *account) bool { return !a.lastResort && !a.kpDirty }
	register("6.3/1", MUST, "publish-key-packages stores one-time packages and reports the pool size",
		"On success ... the response ... gives in key 1 the number of one-time packages now in the device's pool.", func(t *T) {
			a := t.accountsWhere(1, cleanKP)[0]
			c := t.connect(a)
			var ok wire.PublishKeyPackagesOK
			t.do(c, &wire.PublishKeyPackages{OneTime: [][]byte{{1}, {2}, {3}}}, &ok)
			a.kpDirty = true
			if ok.Stored != 3 {
				t.Fatalf("pool of %d, want 3", ok.Stored)
			}
			t.do(c, &wire.PublishKeyPackages{}, &ok)
			if ok.Stored != 3 {
				t.Fatalf("pool of %d after an empty publish, want 3", ok.Stored)
			}
			t.drainKP(c, a, 3)
		})
	register("6.3/2", MUST, "publishing 101 packages is limit_exceeded and stores nothing",
		"more than 100 packages in key 1 as limit_exceeded (21) ... On failure nothing is stored, including the last-resort package.", func(t *T) {
			a := t.accountsWhere(1, cleanKP)[0]
			c := t.connect(a)
			kps := make([][]byte, 101)
			for i := range kps {
				kps[i] = []byte{byte(i)}
			}
			t.expectErr(c, &wire.PublishKeyPackages{OneTime: kps, LastResort: []byte("lr")}, wire.CodeLimitExceeded)
			t.expectErr(c, &wire.ClaimKeyPackage{Address: a.address, Device: a.id}, wire.CodeNoKeyPackage)
		})
	register("6.3/3", MUST, "an empty key package and one of 16,385 bytes are malformed",
		"The common checks (section 3.3.1) reject a package of 0 or more than 16,384 bytes as malformed", func(t *T) {
			c := t.connect(t.account())
			t.expectRaw(c, frameOf(hx("a2 00 05 01 81 40")), wire.CodeMalformed)
			t.expectErr(c, &wire.PublishKeyPackages{LastResort: make([]byte, 16385)}, wire.CodeMalformed)
		})
	register("6.3/4", MUST, "a pool beyond the announced limit is limit_exceeded, and nothing of that request is stored",
		"The server then checks that the pool would hold at most 1000 packages after adding them, else limit_exceeded (21).", func(t *T) {
			a := t.accountsWhere(1, func(a *account) bool { return !a.lastResort })[0]
			c := t.connect(a)
			a.kpDirty = true
			var ok wire.PublishKeyPackagesOK
			t.do(c, &wire.PublishKeyPackages{}, &ok)
			limit := t.env.info.Limits.MaxKeyPackages
			for ok.Stored < limit {
				n := min(100, limit-ok.Stored)
				kps := make([][]byte, n)
				for i := range kps {
					kps[i] = []byte{byte(i)}
				}
				t.do(c, &wire.PublishKeyPackages{OneTime: kps}, &ok)
			}
			t.expectErr(c, &wire.PublishKeyPackages{OneTime: [][]byte{{1}}, LastResort: []byte("lr")}, wire.CodeLimitExceeded)
			t.do(c, &wire.PublishKeyPackages{}, &ok)
			if ok.Stored != limit {
				t.Fatalf("pool of %d, want %d", ok.Stored, limit)
			}
		})
	register("6.4/1", MUST, "each one-time package is handed out once, exactly as published, then no_key_package",
		"If the device's pool is not empty, the server removes one one-time package from it and returns it with key 2 false.", func(t *T) {
			as := t.accountsWhere(2, cleanKP)
			owner, claimer := t.connect(as[0]), t.connect(as[1])
			kps := [][]byte{[]byte("opaque package one \x00\xff"), []byte("opaque package two")}
			t.do(owner, &wire.PublishKeyPackages{OneTime: kps}, &wire.PublishKeyPackagesOK{})
			var got [][]byte
			for range kps {
				var ok wire.ClaimKeyPackageOK
				t.do(claimer, &wire.ClaimKeyPackage{Address: as[0].address, Device: as[0].id}, &ok)
				if ok.LastResort {
					t.Fatalf("a one-time package was marked last-resort")
				}
				got = append(got, ok.KeyPackage)
			}
			slices.SortFunc(got, bytes.Compare)
			slices.SortFunc(kps, bytes.Compare)
			if !slices.EqualFunc(got, kps, bytes.Equal) {
				t.Fatalf("claimed %q, published %q", got, kps)
			}
			t.expectErr(claimer, &wire.ClaimKeyPackage{Address: as[0].address, Device: as[0].id}, wire.CodeNoKeyPackage)
		})
	register("6.4/2", MUST, "the last-resort package is handed out with true and kept",
		"Otherwise, if the device has a last-resort package, the server returns it with key 2 true and keeps it.", func(t *T) {
			a := t.accountsWhere(1, func(a *account) bool { return !a.kpDirty })[0]
			c := t.connect(a)
			a.lastResort = true
			lr := []byte("last resort " + a.address)
			t.do(c, &wire.PublishKeyPackages{LastResort: lr}, &wire.PublishKeyPackagesOK{})
			for range 2 {
				var ok wire.ClaimKeyPackageOK
				t.do(c, &wire.ClaimKeyPackage{Address: a.address, Device: a.id}, &ok)
				if !ok.LastResort || !bytes.Equal(ok.KeyPackage, lr) {
					t.Fatalf("claimed %q (last resort %v)", ok.KeyPackage, ok.LastResort)
				}
			}
		})
	register("6.4/3", MUST, "concurrent claims hand each one-time package to one claimant",
		"A server MUST hand each one-time package to at most one claimant, also under concurrent claims", func(t *T) {
			as := t.accountsWhere(2, cleanKP)
			owner, claimer := t.connect(as[0]), t.connect(as[1])
			kps := make([][]byte, 10)
			for i := range kps {
				kps[i] = fmt.Appendf(nil, "package %d", i)
			}
			t.do(owner, &wire.PublishKeyPackages{OneTime: kps}, &wire.PublishKeyPackagesOK{})
			var mu sync.Mutex
			seen := map[string]int{}
			none := 0
			var wg sync.WaitGroup
			var failure error
			for range 20 {
				wg.Go(func() {
					var ok wire.ClaimKeyPackageOK
					err := claimer.request(t.ctx, &wire.ClaimKeyPackage{Address: as[0].address, Device: as[0].id}, &ok)
					mu.Lock()
					defer mu.Unlock()
					switch {
					case err == nil:
						seen[string(ok.KeyPackage)]++
					case wire.CodeOf(err) == wire.CodeNoKeyPackage:
						none++
					default:
						failure = err
					}
				})
			}
			wg.Wait()
			if failure != nil {
				t.Fatalf("claim: %v", failure)
			}
			for k, n := range seen {
				if n > 1 {
					t.Errorf("%q handed out %d times", k, n)
				}
			}
			if len(seen) != 10 || none != 10 {
				t.Fatalf("%d packages handed out, %d no_key_package; want 10 and 10", len(seen), none)
			}
		})
	register("6.4/4", MUST, "claiming for an unknown device or account is unknown_device",
		"The device (key 2) of the account (key 1) exists, else unknown_device (12); an unknown account also gives unknown_device.", func(t *T) {
			a := t.account()
			c := t.connect(a)
			t.expectErr(c, &wire.ClaimKeyPackage{Address: a.address, Device: 4000000000}, wire.CodeUnknownDevice)
			t.expectErr(c, &wire.ClaimKeyPackage{Address: t.env.newAddress(), Device: 1}, wire.CodeUnknownDevice)
		})

	// 8.12 for the own domain
	register("8.12/1", MUST, "get-domain-key for the server's own domain is server-info key 2",
		"For its own domain: its sender-certificate key, the same as server-info key 2", func(t *T) {
			var ok wire.DomainKeyOK
			t.do(t.connect(t.account()), &wire.GetDomainKey{Domain: t.env.c.Domain}, &ok)
			if !bytes.Equal(ok.Key, t.env.info.CertKey) {
				t.Fatalf("key %x, server-info has %x", ok.Key, t.env.info.CertKey)
			}
		})
	register("8.12/2", MUST, "get-domain-key of an invalid domain is invalid_address",
		"Key 1 is a domain name; one that is not a valid domain in normal form (section 4.1) is invalid_address (6).", func(t *T) {
			t.expectErr(t.connect(t.account()), &wire.GetDomainKey{Domain: "Example.org"}, wire.CodeInvalidAddress)
		})
}

// drainKP claims n one-time packages of a, leaving its pool empty.
func (t *T) drainKP(c *conn, a *account, n int) {
	for range n {
		t.do(c, &wire.ClaimKeyPackage{Address: a.address, Device: a.id}, &wire.ClaimKeyPackageOK{})
	}
	a.kpDirty = false
}

// pushedWithin reports whether an envelope with id is pushed on c within d
// (a bounded wait, to observe that something does not happen).
func (t *T) pushedWithin(c *conn, d time.Duration, id []byte) bool {
	ctx, cancel := context.WithTimeout(t.ctx, d)
	defer cancel()
	for {
		it, err := c.pushes().next(ctx)
		if err != nil {
			return false
		}
		if m, ok := it.msg.(*wire.Deliver); ok {
			for _, x := range m.Deliveries {
				if bytes.Equal(x.ID, id) {
					return true
				}
			}
		}
	}
}
