package conformance

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/xchat-im/xchat/spec/wire"
)

// transportTests are the tests of section 2, transport: ALPN, certificates,
// streams, authentication deadline, 0-RTT.
var transportTests = []*Test{
	{ID: "2.2/1", Level: MUST, Summary: "a handshake that offers no supported ALPN fails with no_application_protocol (0x0178)",
		Cite: "A server MUST NOT complete a handshake in which no protocol it supports was offered: it aborts with the TLS alert no_application_protocol (120)",
		run:  test2_2_1_NoSupportedALPN},
	{ID: "2.2/2", Level: MUST, Summary: "a client offering xchat/1 gets xchat/1",
		Cite: "The TLS handshake MUST negotiate an application protocol with ALPN",
		run:  test2_2_2_ALPNXchat1},
	{ID: "2.3/1", Level: MUST, Summary: "the server's certificate is valid for its domain and server-info names that domain",
		Cite: "The homeserver of a domain MUST present an X.509 certificate chain that is valid for that domain",
		run:  test2_3_1_CertificateForDomain},
	{ID: "2.3/2", Level: MUST, Summary: "a client certificate on xchat/1 is not required and, when presented, ignored",
		Cite: "on an xchat/1 connection it MUST NOT require one and ignores any that is presented",
		run:  test2_3_2_ClientCertificateIgnored},
	{ID: "2.4/1", Level: MUST, Summary: "the server allows the client no unidirectional streams",
		Cite: "The client MUST NOT open unidirectional streams (the server's limit is 0",
		run:  test2_4_1_NoClientUniStreams},
	{ID: "2.4/2", Level: MUST, Summary: "the server allows 100 concurrent request streams, not more",
		Cite: "The server MUST allow at most 100 concurrently open request streams per connection",
		run:  test2_4_2_Limit100RequestStreams},
	{ID: "2.4/3", Level: MUST, Summary: "after authentication the server opens one push stream whose first frame is deliver or caught-up",
		Cite: "After the connection is authenticated (section 5.8) the server MUST open exactly one unidirectional stream, the push stream (section 3.4), and write to it at once",
		run:  test2_4_3_OnePushStream},
	{ID: "2.5/1", Level: MUST, Summary: "a connection that does not authenticate is closed with auth_timeout (2) within 10 s; failed attempts do not extend it",
		Cite: "A server MUST close a connection that has not completed a successful register or authenticate ... within 10 s of handshake completion, with the application error auth_timeout (2).",
		run:  test2_5_1_AuthTimeout, Slow: true},
	{ID: "2.6/1", Level: MUST, Summary: "the server does not accept 0-RTT data",
		Cite: "Servers MUST NOT accept 0-RTT data on xchat/1 or xchat-fed/1 connections in v0",
		run:  test2_6_1_No0RTT},
	{ID: "2.7/1", Level: SHOULD, Summary: "a new authenticated connection of a device ends the push stream of the older one",
		Cite: "the server SHOULD end the push stream of the older connection (finish it with FIN after any frame in progress)",
		run:  test2_7_1_NewConnectionEndsOldPush},
}

// test2_2_1_NoSupportedALPN checks 2.2/1: a handshake that offers no supported ALPN fails with no_application_protocol (0x0178).
func test2_2_1_NoSupportedALPN(t *T) {
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
}

// test2_2_2_ALPNXchat1 checks 2.2/2: a client offering xchat/1 gets xchat/1.
func test2_2_2_ALPNXchat1(t *T) {
	c := t.dial()
	if p := c.qc.ConnectionState().TLS.NegotiatedProtocol; p != wire.ALPN {
		t.Fatalf("negotiated %q", p)
	}
}

// test2_3_1_CertificateForDomain checks 2.3/1: the server's certificate is valid for its domain and server-info names that domain.
func test2_3_1_CertificateForDomain(t *T) {
	c := t.dial() // the handshake verified the chain for the domain
	var info wire.ServerInfoOK
	t.do(c, &wire.ServerInfo{}, &info)
	if info.Domain != t.env.c.Domain {
		t.Fatalf("server-info names %q", info.Domain)
	}
}

// test2_3_2_ClientCertificateIgnored checks 2.3/2: a client certificate on xchat/1 is not required and, when presented, ignored.
func test2_3_2_ClientCertificateIgnored(t *T) {
	cert, err := selfSigned()
	t.must(err, "certificate")
	conf := t.env.tls.Clone()
	conf.Certificates = []tls.Certificate{cert}
	c, err := t.env.dialTLS(t.ctx, conf)
	t.must(err, "handshake with a self-signed client certificate")
	defer c.close()
	t.do(c, &wire.ServerInfo{}, &wire.ServerInfoOK{})
}

// test2_4_1_NoClientUniStreams checks 2.4/1: the server allows the client no unidirectional streams.
func test2_4_1_NoClientUniStreams(t *T) {
	c := t.dial()
	if _, err := c.qc.OpenUniStream(); err == nil {
		t.Fatalf("the server's limit allowed a unidirectional stream")
	}
}

// test2_4_2_Limit100RequestStreams checks 2.4/2: the server allows 100 concurrent request streams, not more.
func test2_4_2_Limit100RequestStreams(t *T) {
	c := t.dial()
	for i := range 100 {
		if _, err := c.qc.OpenStream(); err != nil {
			t.Fatalf("stream %d: %v", i+1, err)
		}
	}
	if _, err := c.qc.OpenStream(); err == nil {
		t.Fatalf("a 101st concurrent stream was allowed")
	}
}

// test2_4_3_OnePushStream checks 2.4/3: after authentication the server opens one push stream whose first frame is deliver or caught-up.
func test2_4_3_OnePushStream(t *T) {
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
}

// test2_5_1_AuthTimeout checks 2.5/1: a connection that does not authenticate is closed with auth_timeout (2) within 10 s; failed attempts do not extend it.
func test2_5_1_AuthTimeout(t *T) {
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
}

// test2_6_1_No0RTT checks 2.6/1: the server does not accept 0-RTT data.
func test2_6_1_No0RTT(t *T) {
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
}

// test2_7_1_NewConnectionEndsOldPush checks 2.7/1: a new authenticated connection of a device ends the push stream of the older one.
func test2_7_1_NewConnectionEndsOldPush(t *T) {
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
}

// selfSigned returns a throwaway self-signed client certificate.
func selfSigned() (tls.Certificate, error) { return selfSignedFor("") }

// selfSignedFor returns a throwaway self-signed certificate, for domain
// when it is set.
func selfSignedFor(domain string) (tls.Certificate, error) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	if domain != "" {
		tmpl.DNSNames = []string{domain}
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	}
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
