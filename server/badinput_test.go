package server_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// Bad input gets a typed error frame and the connection keeps working.
func TestBadInputIsRefusedWithTypedErrors(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	r := servertest.Dial(t, s)
	frame := func(payload []byte) []byte { return wire.AppendFrame(nil, payload) }

	tests := []struct {
		name  string
		bytes []byte
		code  wire.Code
	}{
		{"frame over the limit", wire.AppendVarint(nil, wire.MaxFrame+1), wire.CodeFrameTooLarge},
		{"empty frame", []byte{0}, wire.CodeMalformed},
		{"non-shortest frame length", []byte{0x40, 0x01, 0xa0}, wire.CodeNoncanonical},
		{"truncated CBOR", frame([]byte{0xa1, 0x00}), wire.CodeMalformed},
		{"not a map", frame([]byte{0x01}), wire.CodeMalformed},
		{"no type key", frame([]byte{0xa1, 0x01, 0x01}), wire.CodeMalformed},
		{"unknown request", frame([]byte{0xa1, 0x00, 0x18, 0x63}), wire.CodeUnknownRequest},
		{"non-shortest integer", frame([]byte{0xa1, 0x00, 0x18, 0x03}), wire.CodeNoncanonical},
		{"unsorted map keys", frame([]byte{0xa2, 0x01, 0x61, 'x', 0x00, 0x04}), wire.CodeNoncanonical},
		{"duplicate map keys", frame([]byte{0xa2, 0x00, 0x03, 0x00, 0x03}), wire.CodeMalformed},
		{"indefinite map", frame([]byte{0xbf, 0x00, 0x03, 0xff}), wire.CodeNoncanonical},
		{"tag", frame([]byte{0xc1, 0xa1, 0x00, 0x03}), wire.CodeMalformed},
		{"float", frame([]byte{0xa1, 0x00, 0xf9, 0x42, 0x00}), wire.CodeMalformed},
		{"trailing bytes", frame([]byte{0xa1, 0x00, 0x03, 0x00}), wire.CodeMalformed},
		{"two frames", append(frame([]byte{0xa1, 0x00, 0x03}), frame([]byte{0xa1, 0x00, 0x03})...), wire.CodeMalformed},
		{"wrong field type", frame([]byte{0xa2, 0x00, 0x04, 0x01, 0x05}), wire.CodeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r.T = t
			r.ExpectCode(tt.bytes, tt.code)
		})
	}
	r.T = t
	// Still usable.
	var info wire.ServerInfoOK
	if err := r.Request(&wire.ServerInfo{}, &info); err != nil || info.Domain != "a.test" {
		t.Fatalf("server-info after bad input: %v %+v", err, info)
	}
}

func TestRequestsBeforeAuthentication(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	r := servertest.Dial(t, s)
	for _, req := range []wire.Request{
		&wire.GetDevices{Address: "bob@a.test"},
		&wire.Send{Envelopes: []wire.Envelope{{ID: servertest.RandomID(), To: wire.Mailbox{Address: "bob@a.test", Device: 1}, Sealed: servertest.SealedOfLen(256)}}},
		&wire.Ack{IDs: [][]byte{servertest.RandomID()}},
		&wire.GetSenderCert{},
		&wire.SetDeliveryPolicy{RequestLaneOpen: false},
		&wire.PublishKeyPackages{OneTime: [][]byte{{1}}},
		&wire.ClaimKeyPackage{Address: "bob@a.test", Device: 1},
	} {
		servertest.MustCode(t, r.Request(req, &wire.OK{}), wire.CodeUnauthenticated)
	}
}

func TestAuthentication(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	d := servertest.NewDevice(t, "alice@a.test")
	if err := servertest.Dial(t, s).Register(d, nil); err != nil {
		t.Fatal(err)
	}
	// A signature made for another TLS session does not verify here.
	other := servertest.Dial(t, s)
	r := servertest.Dial(t, s)
	sig := ed25519.Sign(d.Sig, wire.DeviceAuthMessage(d.Address, d.ID, other.Exporter()))
	servertest.MustCode(t, r.Request(&wire.Authenticate{Address: d.Address, Device: d.ID, Signature: sig}, &wire.OK{}), wire.CodeAuthFailed)
	// Unknown device and unknown account fail the same way.
	servertest.MustCode(t, r.Request(&wire.Authenticate{Address: d.Address, Device: 7, Signature: sig}, &wire.OK{}), wire.CodeAuthFailed)
	servertest.MustCode(t, r.Request(&wire.Authenticate{Address: "nobody@a.test", Device: 1, Signature: sig}, &wire.OK{}), wire.CodeAuthFailed)
	// The right signature works, once.
	if err := r.Authenticate(d); err != nil {
		t.Fatal(err)
	}
	servertest.MustCode(t, r.Authenticate(d), wire.CodeAlreadyAuthenticated)
	// Registering the same address again fails; so does a wrong domain and a
	// bad proof of possession.
	r2 := servertest.Dial(t, s)
	servertest.MustCode(t, r2.Register(servertest.NewDevice(t, "alice@a.test"), nil), wire.CodeAccountExists)
	servertest.MustCode(t, r2.Register(servertest.NewDevice(t, "carol@b.test"), nil), wire.CodeWrongDomain)
	c := servertest.NewDevice(t, "carol@a.test")
	servertest.MustCode(t, r2.Request(&wire.Register{Address: c.Address, Keys: c.Keys(),
		Signature: ed25519.Sign(c.Sig, wire.DeviceAuthMessage(c.Address, 0, other.Exporter()))}, &wire.OK{}), wire.CodeAuthFailed)
	// An invalid address is refused as such.
	bad := servertest.NewDevice(t, "Carol@a.test")
	servertest.MustCode(t, r2.Register(bad, nil), wire.CodeInvalidAddress)
}

func TestWrongALPNIsRefused(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	_, err := quic.DialAddr(ctx, s.Addr, servertest.TLSConfig(t, s, "h3"), &quic.Config{})
	var te *quic.TransportError
	if !errors.As(err, &te) || te.ErrorCode != 0x100+0x78 {
		t.Fatalf("dial with ALPN h3: got %v, want CRYPTO_ERROR 0x178", err)
	}
	// And a client that does not verify the domain's certificate is not a
	// concern of the server, but a wrong server name fails on the client.
	conf := servertest.TLSConfig(t, s, wire.ALPN)
	conf.ServerName = "b.test"
	if _, err := quic.DialAddr(ctx, s.Addr, conf, &quic.Config{}); err == nil {
		t.Fatal("certificate for a.test accepted as b.test")
	}
}

// An unauthenticated connection is closed after the authentication deadline.
func TestAuthDeadline(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the 10 s authentication deadline")
	}
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	r := servertest.Dial(t, s)
	select {
	case <-r.QC.Context().Done():
	case <-time.After(wire.AuthDeadline + 10*time.Second):
		t.Fatal("unauthenticated connection still open")
	}
	var ae *quic.ApplicationError
	if err := context.Cause(r.QC.Context()); !errors.As(err, &ae) || ae.ErrorCode != wire.CloseAuthTimeout {
		t.Fatalf("closed with %v, want application error %d", err, wire.CloseAuthTimeout)
	}
}
