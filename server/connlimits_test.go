package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// Tests of spec/02-transport.md section 2.10 and spec/05-accounts.md
// section 5.7: connections per account and per address, failed
// authentications per address and per account. These belong in
// conformance later (with the limits a server announces or is started
// with).

// rateLimited fails unless err is rate_limited with a retry-after and a
// message naming the limit (containing want).
func rateLimited(t *testing.T, err error, want string) {
	t.Helper()
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeRateLimited {
		t.Fatalf("got %v, want rate_limited", err)
	}
	if pe.RetryAfter <= 0 {
		t.Fatalf("rate_limited without a retry-after: %v", err)
	}
	if !strings.Contains(pe.Message, want) {
		t.Fatalf("rate_limited %q does not name the limit (%q)", pe.Message, want)
	}
}

// One account cannot hold more connections than its limit, whichever
// devices they are; a connection that closes frees its slot; other
// accounts are not affected.
func TestConnectionsPerAccount(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{ConnsPerAccount: 3}})
	ra, a1 := registered(t, s, "alice@a.test", nil)
	_, a2 := linked(t, s, ra, "alice@a.test") // the second of 3
	r3 := servertest.Dial(t, s)
	if err := r3.Authenticate(a1); err != nil {
		t.Fatalf("third connection of the account: %v", err)
	}
	r4 := servertest.Dial(t, s)
	err := r4.Authenticate(a2)
	rateLimited(t, err, "connections per account")
	// Another account has its own slots.
	registered(t, s, "bob@a.test", nil)
	// A closed connection frees its slot, once the server saw it close.
	r3.QC.CloseWithError(0, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := r4.Authenticate(a2)
		if err == nil {
			break
		}
		var pe *wire.Error
		if !errors.As(err, &pe) || pe.Code != wire.CodeRateLimited || time.Now().After(deadline) {
			t.Fatalf("authenticate after a connection of the account closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling the condition, with a deadline
	}
}

// dialRefused fails unless a new connection to s is refused (during the
// handshake, or closed at once after it).
func dialRefused(t *testing.T, s *servertest.Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(servertest.Context(t), 20*time.Second)
	defer cancel()
	qc, err := quic.DialAddr(ctx, s.Addr, servertest.TLSConfig(t, s, wire.ALPN), &quic.Config{})
	if err == nil {
		select {
		case <-qc.Context().Done():
			err = context.Cause(qc.Context())
		case <-time.After(5 * time.Second):
			qc.CloseWithError(0, "")
			t.Fatal("a connection over the per-address limit was accepted")
		}
	}
	var te *quic.TransportError
	var ae *quic.ApplicationError
	if !(errors.As(err, &te) && te.ErrorCode == quic.ConnectionRefused) && !(errors.As(err, &ae) && ae.Remote) {
		t.Fatalf("connection over the per-address limit: %v, want it refused", err)
	}
}

// One source address cannot hold more connections than its limit; a
// closed connection frees its slot.
func TestConnectionsPerAddress(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{ConnsPerAddress: 3}})
	var r3 *servertest.Raw
	for range 3 {
		// A response shows that the server counts the connection (a
		// client's handshake completes before the server's).
		r3 = servertest.Dial(t, s)
		var ok wire.ServerInfoOK
		if err := r3.Request(&wire.ServerInfo{}, &ok); err != nil {
			t.Fatal(err)
		}
	}
	dialRefused(t, s)
	r3.QC.CloseWithError(0, "")
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(servertest.Context(t), 5*time.Second)
		qc, err := quic.DialAddr(ctx, s.Addr, servertest.TLSConfig(t, s, wire.ALPN), &quic.Config{})
		cancel()
		if err == nil {
			// Accepted, unless closed at once.
			var ok wire.ServerInfoOK
			if err = tryRequest(servertest.Context(t), qc, &wire.ServerInfo{}, &ok); err == nil {
				qc.CloseWithError(0, "")
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection accepted after one of the address closed: %v", err)
		}
		time.Sleep(20 * time.Millisecond) // polling the condition, with a deadline
	}
}

// badAuth authenticates on r as device id of address with a wrong key.
func badAuth(r *servertest.Raw, address string, id uint32) error {
	_, wrong, _ := ed25519.GenerateKey(rand.Reader)
	return r.Request(&wire.Authenticate{
		Address: address, Device: id,
		Signature: ed25519.Sign(wrong, wire.DeviceAuthMessage(address, id, r.Exporter())),
	}, &wire.OK{})
}

// Failed authentications from one address are throttled: past the budget
// every authenticate from the address gets rate_limited, naming the limit.
func TestFailedAuthenticationsPerAddress(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{
		AuthFailuresPerAddress: server.Rate{Burst: 3, Interval: time.Hour}}})
	_, a1 := registered(t, s, "alice@a.test", nil)
	r := servertest.Dial(t, s)
	// Three failures: a wrong key, an unknown account, another domain.
	servertest.MustCode(t, badAuth(r, "alice@a.test", 1), wire.CodeAuthFailed)
	servertest.MustCode(t, badAuth(r, "nobody@a.test", 1), wire.CodeAuthFailed)
	servertest.MustCode(t, badAuth(r, "bob@b.test", 1), wire.CodeAuthFailed)
	rateLimited(t, badAuth(r, "carol@a.test", 1), "failed authentications from this address")
	// On another connection from the address too.
	rateLimited(t, servertest.Dial(t, s).Authenticate(a1), "failed authentications from this address")
}

// Failed authentications naming one account are throttled, whatever
// address they come from: past the budget authenticate as that account
// gets rate_limited; other accounts are not affected.
func TestFailedAuthenticationsPerAccount(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{
		AuthFailuresPerAccount: server.Rate{Burst: 3, Interval: time.Hour}}})
	_, b1 := registered(t, s, "bob@a.test", nil)
	for range 3 {
		servertest.MustCode(t, badAuth(servertest.Dial(t, s), "alice@a.test", 1), wire.CodeAuthFailed)
	}
	rateLimited(t, badAuth(servertest.Dial(t, s), "alice@a.test", 2), "failed authentications of this account")
	servertest.MustCode(t, badAuth(servertest.Dial(t, s), "bob@a.test", 1), wire.CodeAuthFailed)
	if err := servertest.Dial(t, s).Authenticate(b1); err != nil {
		t.Fatalf("authenticate as another account: %v", err)
	}
}
