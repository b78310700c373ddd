package conformance

import (
	"bytes"
	"context"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// link creates a link token on c (authenticated as a) and registers a new
// device with it on a new connection, which it returns with the device.
func (t *T) link(a *account, c *conn) (*conn, *device, uint32) {
	var tok wire.CreateLinkOK
	t.do(c, &wire.CreateLink{}, &tok)
	d, err := newDevice()
	t.must(err, "keys")
	nc := t.dial()
	req, err := nc.registerReq(d, a.address, nil)
	t.must(err, "exporter")
	req.Link = tok.Token
	var ok wire.RegisterOK
	t.do(nc, req, &ok)
	if ok.Device > a.maxID {
		a.maxID = ok.Device
	}
	return nc, d, ok.Device
}

func init() {
	canLink := func(n int) func(a *account) bool {
		return func(a *account) bool { return a.links+n <= wire.MaxLinkTokens }
	}
	register("5.11.1/1", MUST, "create-link returns a 16-byte token that expires 10 minutes after issuance",
		"stores SHA-256(token) ... with the account and an expiry time exactly 10 minutes after issuance", func(t *T) {
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
		})
	register("5.11.1/2", MUST, "a sixth live link token is limit_exceeded",
		"refuses the request with limit_exceeded (21), changing nothing, when the account already has 5 link tokens that are neither used nor expired", func(t *T) {
			a := t.accountsWhere(1, canLink(0))[0]
			c := t.connect(a)
			for a.links < wire.MaxLinkTokens {
				t.do(c, &wire.CreateLink{}, &wire.CreateLinkOK{})
				a.links++
			}
			t.expectErr(c, &wire.CreateLink{}, wire.CodeLimitExceeded)
		})
	register("5.11.2/1", MUST, "register with a link token adds the next device, listed by get-devices at once, under any policy",
		"the account has a new device with the keys of key 2 and the next device identifier (highest ever assigned in the account plus one)", func(t *T) {
			a := t.accountsWhere(1, canLink(1))[0]
			c := t.connect(a)
			want := a.maxID + 1
			nc, d, id := t.link(a, c)
			t.Cleanup(func() {
				if err := c.request(context.Background(), &wire.RemoveDevice{Device: id}, &wire.OK{}); err != nil {
					t.Errorf("remove the linked device: %v", err)
				}
			})
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
		})
	register("5.11.2/2", MUST, "register with an unknown link token is link_invalid",
		"SHA-256 of key 5 names a link token of the account of key 1 that is neither used nor expired, else link_invalid (28)", func(t *T) {
			a := t.account()
			d, err := newDevice()
			t.must(err, "keys")
			c := t.dial()
			req, err := c.registerReq(d, a.address, nil)
			t.must(err, "exporter")
			req.Link = randomID()
			t.expectErr(c, req, wire.CodeLinkInvalid)
		})
	register("5.11.2/3", MUST, "register with both an invite and a link token is malformed",
		"After the common checks (section 3.3.1, which reject key 3 together with key 5 as malformed)", func(t *T) {
			d, err := newDevice()
			t.must(err, "keys")
			c := t.dial()
			req, err := c.registerReq(d, t.env.newAddress(), garbageInvite)
			t.must(err, "exporter")
			req.Link = randomID()
			t.expectErr(c, req, wire.CodeMalformed)
		})
	register("5.11.3/1", MUST, "a removed device is gone: its connection is closed with device_removed, envelopes and authentication fail",
		"The server then closes every connection authenticated as the removed device with the close code device_removed (5, section 2.8)", func(t *T) {
			as := t.accountsWhere(2, canLink(1))
			a := as[0]
			c := t.connect(a)
			nc, d, id := t.link(a, c)
			t.untilCaughtUp(nc)
			t.do(c, &wire.RemoveDevice{Device: id}, nil)
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
		})
	register("5.11.3/2", MUST, "remove-device of the only device is last_device; of an unknown device unknown_device",
		"It is not the account's only device, else last_device (29)", func(t *T) {
			a := t.account()
			c := t.connect(a)
			t.expectErr(c, &wire.RemoveDevice{Device: 4000000000}, wire.CodeUnknownDevice)
			t.expectErr(c, &wire.RemoveDevice{Device: a.id}, wire.CodeLastDevice)
			t.expectRaw(c, frameOf(hx("a2 00 0d 01 00")), wire.CodeMalformed)
		})
}
