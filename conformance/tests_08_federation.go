package conformance

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/quic-go/quic-go"
	"github.com/xchat-im/xchat/spec/wire"
)

// relayWait is how long a test waits for the server under test to dial the
// suite's peer or relay to it. The server may still be backing off after
// an earlier test's refused attempts (section 8.9.3: 1 s doubling, with
// jitter), so the wait allows a few rounds of backoff; a server that
// relays at once costs nothing of it.
const relayWait = 40 * time.Second

// federationTests are the tests of section 8, federation, with the suite
// playing the peer's homeserver: inbound (the suite dials) and outbound (the
// server under test dials).
var federationTests = []*Test{
	{ID: "8.3/1", Level: MUST, Summary: "a federation handshake without a client certificate is aborted (certificate_required)",
		Cite: "it aborts a handshake that selects xchat-fed/1 without a peer certificate with the TLS alert certificate_required (116)",
		run:  test8_3_1_NoClientCertificate, Needs: []Need{NeedPeer}},
	{ID: "8.3/2", Level: MUST, Summary: "the listener negotiates xchat-fed/1 with a certificate valid for its domain",
		Cite: "A server that federates MUST offer both xchat/1 and xchat-fed/1 on its port",
		run:  test8_3_2_ListenerALPN, Needs: []Need{NeedPeer}},
	{ID: "8.3/3", Level: MUST, Summary: "the dialler offers only xchat-fed/1, names the destination in SNI and presents a certificate for its own domain",
		Cite: "offers only xchat-fed/1 in ALPN and sends the destination domain as the TLS server name (SNI); presents the certificate chain of its own domain as its TLS client certificate",
		run:  test8_3_3_DiallerTLS, Needs: []Need{NeedPeer}},
	{ID: "8.3/4", Level: MUST, Summary: "the listener does not accept 0-RTT data on a resumed xchat-fed/1 connection",
		Cite: "Listeners MUST NOT accept 0-RTT data on xchat-fed/1",
		run:  test8_3_4_No0RTTFederation, Needs: []Need{NeedPeer}},
	{ID: "8.3/5", Level: MUST, Summary: "the dialler refuses a listener whose certificate chain it does not trust, and relays nothing to it",
		Cite: "verifies the listener's chain against its trust anchors as a server-authentication certificate valid for the destination domain (section 2.3), whatever host name or IP address it dialled, and aborts the connection if verification fails",
		run:  test8_3_5_DiallerVerifiesChain, Needs: []Need{NeedPeer}},
	{ID: "8.4/1", Level: MUST, Summary: "a federation request before fed-hello is peer_unauthenticated",
		Cite: "a request other than fed-hello on a connection without a successful fed-hello gets peer_unauthenticated (26)",
		run:  test8_4_1_RequestBeforeHello, Needs: []Need{NeedPeer}},
	{ID: "8.4/2", Level: MUST, Summary: "client requests on a federation connection are unknown_request",
		Cite: "Every other request type on an xchat-fed/1 connection, including the other types of section 3.3, MUST get unknown_request (4)",
		run:  test8_4_2_ClientRequestsUnknown, Needs: []Need{NeedPeer}},
	{ID: "8.4/3", Level: MUST, Summary: "syntax comes before the hello state: an empty relay before fed-hello is limit_exceeded, an invalid second fed-hello invalid_address",
		Cite: "A listener MUST check a federation request in this order and answer with the first failure",
		run:  test8_4_3_SyntaxBeforeHelloState, Needs: []Need{NeedPeer}},
	{ID: "8.4.1/1", Level: MUST, Summary: "fed-hello with the certificate's domain succeeds and names the listener's domain",
		Cite: "On success the listener MUST answer fed-hello-ok with its own domain in key 1",
		run:  test8_4_1_1_HelloSucceeds, Needs: []Need{NeedPeer}},
	{ID: "8.4.1/2", Level: MUST, Summary: "fed-hello naming a domain the certificate does not cover (a spoofed origin) is peer_unauthenticated",
		Cite: "The peer's certificate chain is valid (section 8.3) for the domain of key 1, and that domain is not the listener's own domain; else peer_unauthenticated (26).",
		run:  test8_4_1_2_HelloSpoofedDomain, Needs: []Need{NeedPeer}},
	{ID: "8.4.1/3", Level: MUST, Summary: "a second fed-hello is already_authenticated",
		Cite: "On success the listener MUST answer fed-hello-ok with its own domain in key 1, and the connection is established with the domain of key 1 as its origin domain, until it closes.",
		run:  test8_4_1_3_SecondHello, Needs: []Need{NeedPeer}},
	{ID: "8.4.1/4", Level: MUST, Summary: "fed-hello with a domain not in normal form is invalid_address",
		Cite: "a value that is not a valid domain in normal form (section 4.1) MUST get invalid_address (6)",
		run:  test8_4_1_4_HelloDomainNotNormal, Needs: []Need{NeedPeer}},
	{ID: "8.4.1/5", Level: MUST, Summary: "a federation connection without fed-hello is closed with auth_timeout (2) within 10 s",
		Cite: "A listener MUST close a connection on which no fed-hello has succeeded within 10 s of handshake completion with the application error auth_timeout (2)",
		run:  test8_4_1_5_HelloTimeout, Needs: []Need{NeedPeer}, Slow: true},
	{ID: "8.4.1/6", Level: MUST, Summary: "the dialler's first request is fed-hello with its own domain",
		Cite: "fed-hello MUST be the first request the dialler sends on a connection, and the dialler MUST wait for its response before it sends any other request",
		run:  test8_4_1_6_DiallerHelloFirst, Needs: []Need{NeedPeer}},
	{ID: "8.4.1/7", Level: MUST, Summary: "a dialler answered fed-hello-ok with another domain closes with protocol_violation and relays nothing",
		Cite: "The dialler MUST check that fed-hello-ok key 1 equals the destination domain it dialled; otherwise it closes the connection with protocol_violation (1).",
		run:  test8_4_1_7_DiallerChecksHelloDomain, Needs: []Need{NeedPeer}},
	{ID: "8.7/1", Level: MUST, Summary: "an envelope for another domain is answered 0 and relayed exactly as the device built it",
		Cite: "The envelope is stored durably in the outbound queue (section 8.10). Result 0.",
		run:  test8_7_1_RelayedAsBuilt, Needs: []Need{NeedPeer}},
	{ID: "8.7/2", Level: MUST, Summary: "the relay adds nothing about the sender",
		Cite: "The server MUST delete it together with the envelope when the envelope leaves the queue, and MUST NOT log it or keep it anywhere else",
		run:  test8_7_2_RelayAddsNothing, Needs: []Need{NeedPeer}},
	{ID: "8.7/3", Level: MUST, Summary: "the origin checks the sealed length of an envelope for another domain",
		Cite: "if it is greater than 66,672 bytes, envelope_too_large (18); if it is not one of the X-Wing sealed lengths of section 7.5, bad_padding (19)",
		run:  test8_7_3_OriginChecksLength, Needs: []Need{NeedPeer}},
	{ID: "8.7/4", Level: MUST, Summary: "a retried send of a queued envelope queues it once",
		Cite: "If an envelope with the same identifier and the same recipient mailbox is already in the outbound queue, the result is 0 and nothing else happens",
		run:  test8_7_4_QueuedOnce, Needs: []Need{NeedPeer}},
	{ID: "8.7/5", Level: MUST, Summary: "an envelope sent again after it left the outbound queue is queued and relayed again",
		Cite: "If an envelope with the same identifier and the same recipient mailbox is already in the outbound queue, the result is 0 and nothing else happens",
		run:  test8_7_5_QueuedAgainAfterRelay, Needs: []Need{NeedPeer}},
	{ID: "8.8/1", Level: MUST, Summary: "a relayed envelope is stored for the local device and delivered unchanged",
		Cite: "storage with its lane and with the received-at time of section 8.8.1. Result 0.",
		run:  test8_8_1_RelayStored, Needs: []Need{NeedPeer}},
	{ID: "8.8/2", Level: MUST, Summary: "a replayed relay is answered 0 and stores the envelope once",
		Cite: "an envelope with the same identifier already waiting in the mailbox gives 0 and nothing else",
		run:  test8_8_2_RelayReplayed, Needs: []Need{NeedPeer}},
	{ID: "8.8/3", Level: MUST, Summary: "a relayed envelope is checked like a local send, per envelope and in order",
		Cite: "Steps 2 to 8 of section 7.12, in their order, exactly as for an envelope of a local send",
		run:  test8_8_3_RelayChecksLikeSend, Needs: []Need{NeedPeer}},
	{ID: "8.8/4", Level: MUST, Summary: "a relay of 0 or 257 envelopes is limit_exceeded",
		Cite: "a request with 0 or more than 256 envelopes MUST fail with limit_exceeded (21)",
		run:  test8_8_4_RelayCountBounds, Needs: []Need{NeedPeer}},
	{ID: "8.8/5", Level: MUST, Summary: "a relay with a malformed envelope or an invalid recipient fails as a whole",
		Cite: "an envelope that does not match the CDDL rule MUST make the whole request malformed (1), and an invalid recipient address makes it invalid_address (6)",
		run:  test8_8_5_RelayFailsAsWhole, Needs: []Need{NeedPeer}},
	{ID: "8.8/6", Level: MUST, Summary: "a relay frame over 1 MiB is frame_too_large",
		Cite: "and a frame over 1 MiB with frame_too_large (2) (section 3.1)",
		run:  test8_8_6_RelayFrameTooLarge, Needs: []Need{NeedPeer}},
	{ID: "8.8.1/1", Level: MUST, Summary: "the origin's acceptance time is clamped to [now − 7 d 1 h, now]; without it, now",
		Cite: "The listener MUST record as the envelope's received-at time that value, clamped to the interval from its current time minus 7 days and 1 hour ... to its current time (section 7.12, step 8); without key 5, or with the value 0, it records its current time.",
		run:  test8_8_1_1_AcceptedAtClamped, Needs: []Need{NeedPeer}},
	{ID: "8.9.1/1", Level: MUST, Summary: "an envelope the peer answers rate_limited is relayed again",
		Cite: "rate_limited (16), mailbox_full (17), and any other code | temporary | keeps the envelope and relays it again after its own backoff",
		run:  test8_9_1_1_RateLimitedRelayedAgain, Needs: []Need{NeedPeer}},
	{ID: "8.9.1/2", Level: MUST, Summary: "an envelope the peer refuses for good comes back to the sender as a notice with that code",
		Cite: "removes the envelope from the queue and stores a notice with that code for the submitting device",
		run:  test8_9_1_2_PermanentRefusalNotice, Needs: []Need{NeedPeer}},
	{ID: "8.9.1/3", Level: MUST, Summary: "a relay-ok with the wrong number of results makes the origin close with protocol_violation and relay again",
		Cite: "When the origin receives relay-ok it MUST check that the result list has as many entries as the request had envelopes; otherwise ... the origin closes the connection with protocol_violation (1)",
		run:  test8_9_1_3_WrongResultCount, Needs: []Need{NeedPeer}},
	{ID: "8.9.1/4", Level: MUST, Summary: "an envelope the peer answers mailbox_full is temporary: relayed again, no notice",
		Cite: "rate_limited (16), mailbox_full (17), and any other code | temporary | keeps the envelope and relays it again after its own backoff",
		run:  test8_9_1_4_MailboxFullRelayedAgain, Needs: []Need{NeedPeer}},
	{ID: "8.9.1/5", Level: MUST, Summary: "a relay-ok with fewer results than envelopes makes the origin close with protocol_violation and relay again",
		Cite: "When the origin receives relay-ok it MUST check that the result list has as many entries as the request had envelopes; otherwise ... the origin closes the connection with protocol_violation (1)",
		run:  test8_9_1_5_FewerResults, Needs: []Need{NeedPeer}},
	{ID: "8.9.1/6", Level: MUST, Summary: "the notice of a refused envelope goes to the device that submitted it, not to another device of the account",
		Cite: "removes the envelope from the queue and stores a notice with that code for the submitting device",
		run:  test8_9_1_6_NoticeToSubmittingDevice, Needs: []Need{NeedPeer}},
	{ID: "8.9.1/7", Level: MUST, Summary: "every permanent per-envelope code comes back as a notice with that code",
		Cite: "wrong_domain (7), unknown_device (12), token_invalid (14), request_lane_closed (15), envelope_too_large (18), bad_padding (19) | permanent | removes the envelope from the queue and stores a notice with that code for the submitting device",
		run:  test8_9_1_7_EveryPermanentCode, Needs: []Need{NeedPeer}},
	{ID: "8.9.1/8", Level: MUST, Summary: "a per-envelope code the table does not list (99) is temporary: relayed again, no notice",
		Cite: "rate_limited (16), mailbox_full (17), and any other code | temporary | keeps the envelope and relays it again after its own backoff",
		run:  test8_9_1_8_UnknownCodeTemporary, Needs: []Need{NeedPeer}},
	{ID: "8.9.2/1", Level: MUST, Summary: "an envelope for an unreachable peer is queued (0) and relayed when the peer is back",
		Cite: "The envelopes of a failed attempt MUST stay queued and be relayed again after the destination's backoff.",
		run:  test8_9_2_1_QueuedWhileUnreachable, Needs: []Need{NeedPeer}},
	{ID: "8.9.2/2", Level: MUST, Summary: "a relay answered with an error response is relayed again",
		Cite: "the relay request is answered with an error response, whatever its code ... The envelopes of a failed attempt MUST stay queued",
		run:  test8_9_2_2_ErrorResponseRelayedAgain, Needs: []Need{NeedPeer}},
	{ID: "8.11/1", Level: MUST, Summary: "a peer's get-devices for a local account is answered like a local one",
		Cite: "The destination server MUST answer get-devices and claim-key-package on an established federation connection as it answers its own clients",
		run:  test8_11_1_PeerGetDevices, Needs: []Need{NeedPeer}},
	{ID: "8.11/2", Level: MUST, Summary: "get-devices for a remote address returns the destination's answer, forwarding only the defined keys",
		Cite: "The request it sends is the same request map, rebuilt from the fields it defines ...: keys the client added that the request does not define are not forwarded",
		run:  test8_11_2_RemoteGetDevices, Needs: []Need{NeedPeer}},
	{ID: "8.11/3", Level: MUST, Summary: "a remote lookup answered with an error returns that error unchanged",
		Cite: "returns the destination's response to the client unchanged, success or error, retry-after included",
		run:  test8_11_3_RemoteLookupError, Needs: []Need{NeedPeer}},
	{ID: "8.11/4", Level: MUST, Summary: "a remote lookup while the destination is unreachable is unavailable",
		Cite: "the homeserver MUST answer unavailable (23) with a retry-after value",
		run:  test8_11_4_RemoteLookupUnavailable, Needs: []Need{NeedPeer}},
	{ID: "8.11/5", Level: MUST, Summary: "claim-key-package for a remote device is forwarded with its address and device, and the answer returned",
		Cite: "The request it sends is the same request map, rebuilt from the fields it defines ...: keys the client added that the request does not define are not forwarded",
		run:  test8_11_5_RemoteClaim, Needs: []Need{NeedPeer}},
	{ID: "8.12/1", Level: MUST, Summary: "get-domain-key for the server's own domain is server-info key 2",
		Cite: "For its own domain: its sender-certificate key, the same as server-info key 2",
		run:  test8_12_1_OwnDomainKey},
	{ID: "8.12/2", Level: MUST, Summary: "get-domain-key of an invalid domain is invalid_address",
		Cite: "one that is not a valid domain in normal form (section 4.1) MUST get invalid_address (6)",
		run:  test8_12_2_DomainKeyInvalidDomain},
	{ID: "8.12/3", Level: MUST, Summary: "server-info on an established federation connection names the domain and its key",
		Cite: "A listener MUST answer server-info on an established federation connection as section 5.1 says.",
		run:  test8_12_3_FedServerInfo, Needs: []Need{NeedPeer}},
	{ID: "8.12/4", Level: MUST, Summary: "get-domain-key for the peer's domain is the key of the peer's server-info",
		Cite: "Otherwise it sends server-info (section 5.1) to the domain on an established federation connection. ... The server caches key 2 of the answer with the time it was fetched, and returns it.",
		run:  test8_12_4_PeerDomainKey, Needs: []Need{NeedPeer}},
}

// test8_3_1_NoClientCertificate checks 8.3/1: a federation handshake without a client certificate is aborted (certificate_required).
func test8_3_1_NoClientCertificate(t *T) {
	c, err := t.env.peer.dialFed(t.ctx, false)
	if err == nil {
		defer c.close()
		err = c.request(t.ctx, &wire.FedHello{Domain: t.env.peer.c.Domain}, &wire.FedHelloOK{})
		if err == nil {
			t.Fatalf("fed-hello succeeded without a certificate")
		}
		<-c.qc.Context().Done()
		err = context.Cause(c.qc.Context())
	}
	var te *quic.TransportError
	if !errors.As(err, &te) || te.ErrorCode != 0x100+116 {
		t.Fatalf("got %v, want CRYPTO_ERROR 0x0174 (certificate_required)", err)
	}
}

// test8_3_2_ListenerALPN checks 8.3/2: the listener negotiates xchat-fed/1 with a certificate valid for its domain.
func test8_3_2_ListenerALPN(t *T) {
	c := t.fedConn("") // the handshake verified the chain for the domain
	if p := c.qc.ConnectionState().TLS.NegotiatedProtocol; p != wire.ALPNFederation {
		t.Fatalf("negotiated %q", p)
	}
}

// test8_3_3_DiallerTLS checks 8.3/3: the dialler offers only xchat-fed/1, names the destination in SNI and presents a certificate for its own domain.
func test8_3_3_DiallerTLS(t *T) {
	p := t.usePeer()
	p.dropConns()
	from := p.mark()
	t.sendOK(t.connect(t.account()), t.remoteEnvelope())
	ctx, cancel := context.WithTimeout(t.ctx, relayWait)
	defer cancel()
	ev, _, err := p.await(ctx, from, func(ev peerEvent) bool { return ev.kind == "handshake" })
	t.must(err, "waiting for the server to dial the peer")
	if len(ev.protos) != 1 || ev.protos[0] != wire.ALPNFederation {
		t.Errorf("ALPN offered %q", ev.protos)
	}
	if ev.sni != p.c.Domain {
		t.Errorf("SNI %q, want %q", ev.sni, p.c.Domain)
	}
	if ev.certErr != nil {
		t.Errorf("client certificate: %v", ev.certErr)
	}
}

// test8_4_1_RequestBeforeHello checks 8.4/1: a federation request before fed-hello is peer_unauthenticated.
func test8_4_1_RequestBeforeHello(t *T) {
	c := t.fedConn("")
	a := t.account()
	t.expectErr(c, &wire.Relay{Envelopes: []wire.Envelope{envelopeFor(a)}}, wire.CodePeerUnauthenticated)
	t.expectErr(c, &wire.ServerInfo{}, wire.CodePeerUnauthenticated)
}

// test8_4_2_ClientRequestsUnknown checks 8.4/2: client requests on a federation connection are unknown_request.
func test8_4_2_ClientRequestsUnknown(t *T) {
	c := t.fedConn(t.env.peer.c.Domain)
	a := t.account()
	t.expectErr(c, &wire.Send{Envelopes: []wire.Envelope{envelopeFor(a)}}, wire.CodeUnknownRequest)
	t.expectErr(c, &wire.GetSenderCert{}, wire.CodeUnknownRequest)
}

// test8_4_1_1_HelloSucceeds checks 8.4.1/1: fed-hello with the certificate's domain succeeds and names the listener's domain.
func test8_4_1_1_HelloSucceeds(t *T) {
	t.fedConn(t.env.peer.c.Domain)
}

// test8_4_1_2_HelloSpoofedDomain checks 8.4.1/2: fed-hello naming a domain the certificate does not cover (a spoofed origin) is peer_unauthenticated.
func test8_4_1_2_HelloSpoofedDomain(t *T) {
	c := t.fedConn("")
	a := t.account()
	t.expectErr(c, &wire.FedHello{Domain: "spoofed-" + t.env.peer.c.Domain}, wire.CodePeerUnauthenticated)
	t.expectErr(c, &wire.Relay{Envelopes: []wire.Envelope{envelopeFor(a)}}, wire.CodePeerUnauthenticated)
}

// test8_4_1_3_SecondHello checks 8.4.1/3: a second fed-hello is already_authenticated.
func test8_4_1_3_SecondHello(t *T) {
	c := t.fedConn(t.env.peer.c.Domain)
	t.expectErr(c, &wire.FedHello{Domain: t.env.peer.c.Domain}, wire.CodeAlreadyAuthenticated)
}

// test8_4_1_4_HelloDomainNotNormal checks 8.4.1/4: fed-hello with a domain not in normal form is invalid_address.
func test8_4_1_4_HelloDomainNotNormal(t *T) {
	t.expectErr(t.fedConn(""), &wire.FedHello{Domain: "Peer.Test"}, wire.CodeInvalidAddress)
}

// test8_4_1_5_HelloTimeout checks 8.4.1/5: a federation connection without fed-hello is closed with auth_timeout (2) within 10 s.
func test8_4_1_5_HelloTimeout(t *T) {
	start := time.Now()
	c := t.fedConn("")
	ctx, cancel := context.WithTimeout(t.ctx, 20*time.Second)
	defer cancel()
	ae, err := closeCode(ctx, c.qc)
	t.must(err, "waiting for the close")
	if !ae.Remote || ae.ErrorCode != wire.CloseAuthTimeout || time.Since(start) > 13*time.Second {
		t.Fatalf("closed with %v after %s", ae, time.Since(start).Round(time.Millisecond))
	}
}

// test8_4_1_6_DiallerHelloFirst checks 8.4.1/6: the dialler's first request is fed-hello with its own domain.
func test8_4_1_6_DiallerHelloFirst(t *T) {
	p := t.usePeer()
	p.dropConns()
	from := p.mark()
	e := t.remoteEnvelope()
	t.sendOK(t.connect(t.account()), e)
	_, rev, _ := t.awaitRelay(p, from, e.ID, relayWait)
	first, _, err := p.await(t.ctx, from, func(ev peerEvent) bool { return ev.kind == "request" && ev.conn == rev.conn })
	t.must(err, "first request")
	h, ok := first.req.(*wire.FedHello)
	if !ok || h.Domain != t.env.c.Domain {
		t.Fatalf("first request %T %+v, want fed-hello naming %q", first.req, first.req, t.env.c.Domain)
	}
}

// test8_4_1_7_DiallerChecksHelloDomain checks 8.4.1/7: a dialler answered fed-hello-ok with another domain closes with protocol_violation and relays nothing.
func test8_4_1_7_DiallerChecksHelloDomain(t *T) {
	p := t.usePeer()
	p.dropConns()
	p.behave(func(p *peer) { p.helloDomain = "other-" + p.c.Domain })
	from := p.mark()
	e := t.remoteEnvelope()
	t.sendOK(t.connect(t.account()), e)
	ctx, cancel := context.WithTimeout(t.ctx, relayWait)
	defer cancel()
	hello, _, err := p.await(ctx, from, func(ev peerEvent) bool { _, ok := ev.req.(*wire.FedHello); return ok })
	t.must(err, "waiting for fed-hello")
	closed, end, err := p.await(ctx, from, func(ev peerEvent) bool { return ev.kind == "closed" && ev.conn == hello.conn })
	t.must(err, "waiting for the dialler to close")
	var ae *quic.ApplicationError
	if !errors.As(closed.err, &ae) || ae.ErrorCode != wire.CloseProtocolViolation {
		t.Errorf("closed with %v, want protocol_violation (1)", closed.err)
	}
	for _, ev := range p.between(from, end) {
		if _, ok := ev.req.(*wire.Relay); ok && ev.conn == hello.conn {
			t.Errorf("relayed on that connection")
		}
	}
	p.behave(func(p *peer) { p.helloDomain = "" })
	t.awaitRelay(p, from, e.ID, relayWait) // and it is relayed once the peer is sane
}

// test8_7_1_RelayedAsBuilt checks 8.7/1: an envelope for another domain is answered 0 and relayed exactly as the device built it.
func test8_7_1_RelayedAsBuilt(t *T) {
	p := t.usePeer()
	from := p.mark()
	e := t.remoteEnvelope()
	before := time.Now()
	t.sendOK(t.connect(t.account()), e)
	after := time.Now()
	got, _, _ := t.awaitRelay(p, from, e.ID, relayWait)
	if !bytes.Equal(got.Sealed, e.Sealed) || !bytes.Equal(got.Token, e.Token) || got.To != e.To {
		t.Fatalf("the relayed envelope differs from the one sent")
	}
	at := time.UnixMilli(int64(got.AcceptedAt))
	if at.Before(before.Add(-2*time.Second)) || at.After(after.Add(2*time.Second)) {
		t.Fatalf("key 5 (acceptance time) %s, sent between %s and %s", at.UTC(), before.UTC(), after.UTC())
	}
}

// test8_7_2_RelayAddsNothing checks 8.7/2: the relay adds nothing about the sender.
func test8_7_2_RelayAddsNothing(t *T) {
	p := t.usePeer()
	from := p.mark()
	a := t.account()
	e := t.remoteEnvelope()
	t.sendOK(t.connect(a), e)
	_, ev, _ := t.awaitRelay(p, from, e.ID, relayWait)
	if bytes.Contains(ev.raw, []byte(a.address)) {
		t.Fatalf("the relay request holds the sender's address")
	}
	var f struct {
		Envelopes []map[uint64]any `cbor:"1,keyasint"`
	}
	t.must(decodeLoose(ev.raw, &f), "relay")
	for _, m := range f.Envelopes {
		for k := range m {
			if k < 1 || k > 5 {
				t.Fatalf("a relayed envelope has key %d", k)
			}
		}
	}
}

// test8_7_3_OriginChecksLength checks 8.7/3: the origin checks the sealed length of an envelope for another domain.
func test8_7_3_OriginChecksLength(t *T) {
	c := t.connect(t.account())
	pad, large := t.remoteEnvelope(), t.remoteEnvelope()
	pad.Sealed = pad.Sealed[:1000]
	large.Sealed = make([]byte, 66673)
	if r := t.send(c, pad, large); r[0] != wire.CodeBadPadding || r[1] != wire.CodeEnvelopeTooLarge {
		t.Fatalf("results %v", r)
	}
}

// test8_7_4_QueuedOnce checks 8.7/4: a retried send of a queued envelope queues it once.
func test8_7_4_QueuedOnce(t *T) {
	p := t.usePeer()
	p.setUnreachable(true)
	from := p.mark()
	e := t.remoteEnvelope()
	c := t.connect(t.account())
	t.sendOK(c, e)
	t.sendOK(c, e)
	p.setUnreachable(false)
	_, _, next := t.awaitRelay(p, from, e.ID, 20*time.Second)
	if t.relayedAgainWithin(p, next, e.ID, 500*time.Millisecond) {
		t.Fatalf("the envelope was relayed twice")
	}
}

// test8_8_1_RelayStored checks 8.8/1: a relayed envelope is stored for the local device and delivered unchanged.
func test8_8_1_RelayStored(t *T) {
	a := t.account()
	c := t.fedConn(t.env.peer.c.Domain)
	e := envelopeFor(a)
	e.AcceptedAt = uint64(time.Now().Add(-time.Hour).UnixMilli())
	if r := t.relay(c, e); r[0] != 0 {
		t.Fatalf("result %s", r[0])
	}
	d := t.waitFor(t.connect(a), 5*time.Second, e.ID)[0]
	if !bytes.Equal(d.Sealed, e.Sealed) || d.Lane != wire.LaneToken {
		t.Fatalf("delivered in lane %d, sealed bytes equal: %v", d.Lane, bytes.Equal(d.Sealed, e.Sealed))
	}
	if d.ReceivedAt != e.AcceptedAt {
		t.Fatalf("received-at %d, want the origin's acceptance time %d", d.ReceivedAt, e.AcceptedAt)
	}
}

// test8_8_2_RelayReplayed checks 8.8/2: a replayed relay is answered 0 and stores the envelope once.
func test8_8_2_RelayReplayed(t *T) {
	a := t.account()
	c := t.fedConn(t.env.peer.c.Domain)
	e := envelopeFor(a)
	t.relay(c, e)
	c2 := t.fedConn(t.env.peer.c.Domain)
	if r := t.relay(c2, e, e); r[0] != 0 || r[1] != 0 {
		t.Fatalf("results of the replay %v", r)
	}
	if n := countIDs(t.untilCaughtUp(t.connect(a)))[string(e.ID)]; n != 1 {
		t.Fatalf("delivered %d times", n)
	}
}

// test8_8_3_RelayChecksLikeSend checks 8.8/3: a relayed envelope is checked like a local send, per envelope and in order.
func test8_8_3_RelayChecksLikeSend(t *T) {
	as := t.accounts(2)
	t.do(t.connect(as[1]), &wire.SetDeliveryPolicy{Verifiers: [][]byte{as[1].verifier()}, RequestLaneOpen: false}, nil)
	c := t.fedConn(t.env.peer.c.Domain)
	wrongDomain := envelopeFor(as[0])
	wrongDomain.To.Address = "x@" + t.env.peer.c.Domain
	unknown := envelopeFor(as[0])
	unknown.To.Device = 4000000000
	padding := envelopeFor(as[0])
	padding.Sealed = padding.Sealed[:1000]
	large := envelopeFor(as[0])
	large.Sealed = make([]byte, wire.XWingEncLen+131072+wire.AEADTagLen)
	badToken := envelopeFor(as[0])
	badToken.Token = randomID()
	badToken.Token = append(badToken.Token, badToken.Token...)
	closed := envelopeFor(as[1])
	closed.Token = nil
	good := envelopeFor(as[0])
	want := []wire.Code{wire.CodeWrongDomain, wire.CodeUnknownDevice, wire.CodeBadPadding, wire.CodeEnvelopeTooLarge,
		wire.CodeTokenInvalid, wire.CodeRequestLaneClosed, wire.CodeOK}
	got := t.relay(c, wrongDomain, unknown, padding, large, badToken, closed, good)
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("results %v, want %v", got, want)
		}
	}
}

// test8_8_4_RelayCountBounds checks 8.8/4: a relay of 0 or 257 envelopes is limit_exceeded.
func test8_8_4_RelayCountBounds(t *T) {
	a := t.account()
	c := t.fedConn(t.env.peer.c.Domain)
	t.expectErr(c, &wire.Relay{Envelopes: []wire.Envelope{}}, wire.CodeLimitExceeded)
	envs := make([]wire.Envelope, 257)
	for i := range envs {
		envs[i] = envelopeFor(a)
	}
	t.expectErr(c, &wire.Relay{Envelopes: envs}, wire.CodeLimitExceeded)
}

// test8_8_5_RelayFailsAsWhole checks 8.8/5: a relay with a malformed envelope or an invalid recipient fails as a whole.
func test8_8_5_RelayFailsAsWhole(t *T) {
	a := t.account()
	c := t.fedConn(t.env.peer.c.Domain)
	bad := envelopeFor(a)
	bad.ID = bad.ID[:8]
	t.expectErr(c, &wire.Relay{Envelopes: []wire.Envelope{envelopeFor(a), bad}}, wire.CodeMalformed)
	bad = envelopeFor(a)
	bad.To.Address = "Bad@" + t.env.c.Domain
	t.expectErr(c, &wire.Relay{Envelopes: []wire.Envelope{envelopeFor(a), bad}}, wire.CodeInvalidAddress)
}

// test8_8_6_RelayFrameTooLarge checks 8.8/6: a relay frame over 1 MiB is frame_too_large.
func test8_8_6_RelayFrameTooLarge(t *T) {
	c := t.fedConn(t.env.peer.c.Domain)
	n := wire.MaxFrame
	p := append(hx("a2 00 18 41 09 5a"), byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	p = append(p, make([]byte, n)...)
	t.expectRaw(c, frameOf(p), wire.CodeFrameTooLarge)
}

// test8_8_1_1_AcceptedAtClamped checks 8.8.1/1: the origin's acceptance time is clamped to [now − 7 d 1 h, now]; without it, now.
func test8_8_1_1_AcceptedAtClamped(t *T) {
	a := t.account()
	c := t.fedConn(t.env.peer.c.Domain)
	old, future, none := envelopeFor(a), envelopeFor(a), envelopeFor(a)
	old.AcceptedAt = uint64(time.Now().Add(-60 * 24 * time.Hour).UnixMilli())
	future.AcceptedAt = uint64(time.Now().Add(24 * time.Hour).UnixMilli())
	before := time.Now()
	t.relay(c, old, future, none)
	after := time.Now()
	ds := t.waitFor(t.connect(a), 5*time.Second, old.ID, future.ID, none.ID)
	for _, d := range ds {
		at := time.UnixMilli(int64(d.ReceivedAt))
		lo, hi := before.Add(-2*time.Second), after.Add(2*time.Second)
		if bytes.Equal(d.ID, old.ID) {
			lo, hi = before.Add(-(7*24+1)*time.Hour-2*time.Second), after.Add(-(7*24+1)*time.Hour+2*time.Second)
		}
		if at.Before(lo) || at.After(hi) {
			t.Errorf("received-at %s, want between %s and %s", at.UTC(), lo.UTC(), hi.UTC())
		}
	}
}

// test8_9_1_1_RateLimitedRelayedAgain checks 8.9.1/1: an envelope the peer answers rate_limited is relayed again.
func test8_9_1_1_RateLimitedRelayedAgain(t *T) {
	p := t.usePeer()
	e := t.remoteEnvelope()
	p.behave(func(p *peer) { p.onRelay = answerFor(e.ID, wire.CodeRateLimited) })
	from := p.mark()
	t.sendOK(t.connect(t.account()), e)
	_, _, next := t.awaitRelay(p, from, e.ID, relayWait)
	p.behave(func(p *peer) { p.onRelay = nil })
	t.awaitRelay(p, next, e.ID, relayWait)
}

// test8_9_1_2_PermanentRefusalNotice checks 8.9.1/2: an envelope the peer refuses for good comes back to the sender as a notice with that code.
func test8_9_1_2_PermanentRefusalNotice(t *T) {
	p := t.usePeer()
	a := t.account()
	e := t.remoteEnvelope()
	p.behave(func(p *peer) { p.onRelay = answerFor(e.ID, wire.CodeUnknownDevice) })
	from := p.mark()
	c := t.connect(a)
	t.untilCaughtUp(c)
	t.sendOK(c, e)
	nid := wire.NoticeID(e.ID, e.To)
	d := t.waitFor(c, relayWait, nid)[0]
	if d.Lane != wire.LaneNotice {
		t.Fatalf("notice in lane %d", d.Lane)
	}
	var n wire.Notice
	t.must(wire.Unmarshal(d.Sealed, &n), "notice")
	if !bytes.Equal(n.ID, e.ID) || n.To != e.To || n.Code != wire.CodeUnknownDevice {
		t.Fatalf("notice %+v", n)
	}
	_, _, next := t.awaitRelay(p, from, e.ID, time.Second)
	if t.relayedAgainWithin(p, next, e.ID, 300*time.Millisecond) {
		t.Fatalf("the refused envelope was relayed again")
	}
}

// test8_9_1_3_WrongResultCount checks 8.9.1/3: a relay-ok with the wrong number of results makes the origin close with protocol_violation and relay again.
func test8_9_1_3_WrongResultCount(t *T) {
	p := t.usePeer()
	e := t.remoteEnvelope()
	p.behave(func(p *peer) {
		p.onRelay = func(r *wire.Relay) []byte {
			if slicesContainsID(r.Envelopes, e.ID) {
				f, _ := wire.EncodeSuccess(&wire.RelayOK{Results: make([]wire.Code, len(r.Envelopes)+1)})
				return f
			}
			f, _ := wire.EncodeSuccess(&wire.RelayOK{Results: make([]wire.Code, len(r.Envelopes))})
			return f
		}
	})
	from := p.mark()
	t.sendOK(t.connect(t.account()), e)
	_, ev, next := t.awaitRelay(p, from, e.ID, relayWait)
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	closed, _, err := p.await(ctx, from, func(x peerEvent) bool { return x.kind == "closed" && x.conn == ev.conn })
	t.must(err, "waiting for the origin to close the connection")
	var ae *quic.ApplicationError
	if !errors.As(closed.err, &ae) || ae.ErrorCode != wire.CloseProtocolViolation {
		t.Errorf("closed with %v, want protocol_violation (1)", closed.err)
	}
	p.behave(func(p *peer) { p.onRelay = nil })
	t.awaitRelay(p, next, e.ID, relayWait)
}

// test8_9_2_1_QueuedWhileUnreachable checks 8.9.2/1: an envelope for an unreachable peer is queued (0) and relayed when the peer is back.
func test8_9_2_1_QueuedWhileUnreachable(t *T) {
	p := t.usePeer()
	p.setUnreachable(true)
	from := p.mark()
	e := t.remoteEnvelope()
	t.sendOK(t.connect(t.account()), e)
	ctx, cancel := context.WithTimeout(t.ctx, relayWait)
	defer cancel()
	_, _, err := p.await(ctx, from, func(ev peerEvent) bool { return ev.kind == "refused" })
	t.must(err, "waiting for a connection attempt")
	p.setUnreachable(false)
	t.awaitRelay(p, from, e.ID, 20*time.Second)
}

// test8_9_2_2_ErrorResponseRelayedAgain checks 8.9.2/2: a relay answered with an error response is relayed again.
func test8_9_2_2_ErrorResponseRelayedAgain(t *T) {
	p := t.usePeer()
	e := t.remoteEnvelope()
	p.behave(func(p *peer) {
		p.onRelay = func(r *wire.Relay) []byte {
			if slicesContainsID(r.Envelopes, e.ID) {
				return wire.EncodeError(wire.Errorf(wire.CodeUnavailable, "try later"))
			}
			f, _ := wire.EncodeSuccess(&wire.RelayOK{Results: make([]wire.Code, len(r.Envelopes))})
			return f
		}
	})
	from := p.mark()
	t.sendOK(t.connect(t.account()), e)
	_, _, next := t.awaitRelay(p, from, e.ID, relayWait)
	p.behave(func(p *peer) { p.onRelay = nil })
	t.awaitRelay(p, next, e.ID, relayWait)
}

// test8_11_1_PeerGetDevices checks 8.11/1: a peer's get-devices for a local account is answered like a local one.
func test8_11_1_PeerGetDevices(t *T) {
	a := t.accountsWhere(1, oneDevice)[0]
	c := t.fedConn(t.env.peer.c.Domain)
	var ok wire.GetDevicesOK
	t.do(c, &wire.GetDevices{Address: a.address}, &ok)
	if len(ok.Devices) != 1 || ok.Devices[0].ID != a.id || !bytes.Equal(ok.Devices[0].Keys.HPKEKey, a.dev.keys().HPKEKey) {
		t.Fatalf("devices %+v", ok.Devices)
	}
	t.expectErr(c, &wire.GetDevices{Address: t.env.newAddress()}, wire.CodeUnknownAccount)
	t.expectErr(c, &wire.GetDevices{Address: "x@" + t.env.peer.c.Domain}, wire.CodeWrongDomain)
	t.expectErr(c, &wire.ClaimKeyPackage{Address: a.address, Device: 4000000000}, wire.CodeUnknownDevice)
}

// test8_11_2_RemoteGetDevices checks 8.11/2: get-devices for a remote address returns the destination's answer, forwarding only the defined keys.
func test8_11_2_RemoteGetDevices(t *T) {
	p := t.usePeer()
	from := p.mark()
	c := t.connect(t.account())
	addr := "conf-lookup@" + p.c.Domain
	var ok wire.GetDevicesOK
	raw, err := wire.Marshal(map[uint64]any{0: uint64(wire.TypeGetDevices), 1: addr, 9: "client extension"})
	t.must(err, "encode")
	resp, err := c.roundTrip(t.ctx, frameOf(raw))
	t.must(err, "get-devices")
	t.must(wire.DecodeResponse(resp, &ok), "get-devices")
	if len(ok.Devices) != 1 || !bytes.Equal(ok.Devices[0].Keys.HPKEKey, p.dev.keys().HPKEKey) {
		t.Fatalf("devices %+v, not the destination's answer", ok.Devices)
	}
	ev, _, err := p.await(t.ctx, from, func(ev peerEvent) bool {
		g, ok := ev.req.(*wire.GetDevices)
		return ok && g.Address == addr
	})
	t.must(err, "the relayed lookup")
	var m map[uint64]any
	t.must(decodeLoose(ev.raw, &m), "relayed request")
	if len(m) != 2 {
		t.Fatalf("the relayed request has keys %v", keysOf(m))
	}
}

// test8_11_3_RemoteLookupError checks 8.11/3: a remote lookup answered with an error returns that error unchanged.
func test8_11_3_RemoteLookupError(t *T) {
	p := t.usePeer()
	p.behave(func(p *peer) {
		p.onLookup = func(wire.Request) []byte {
			return wire.EncodeError(&wire.Error{Code: wire.CodeRateLimited, Message: "slow down", RetryAfter: 7 * time.Second})
		}
	})
	err := t.connect(t.account()).request(t.ctx, &wire.ClaimKeyPackage{Address: "conf-claim@" + p.c.Domain, Device: 3}, &wire.ClaimKeyPackageOK{})
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeRateLimited || pe.RetryAfter != 7*time.Second {
		t.Fatalf("got %v (retry-after %v), want rate_limited with retry-after 7s", err, func() time.Duration {
			if pe != nil {
				return pe.RetryAfter
			}
			return 0
		}())
	}
}

// test8_11_4_RemoteLookupUnavailable checks 8.11/4: a remote lookup while the destination is unreachable is unavailable.
func test8_11_4_RemoteLookupUnavailable(t *T) {
	p := t.usePeer()
	p.setUnreachable(true)
	t.expectErr(t.connect(t.account()), &wire.GetDevices{Address: "conf-lookup@" + p.c.Domain}, wire.CodeUnavailable)
}

// test8_12_1_OwnDomainKey checks 8.12/1: get-domain-key for the server's own domain is server-info key 2.
func test8_12_1_OwnDomainKey(t *T) {
	var ok wire.DomainKeyOK
	t.do(t.connect(t.account()), &wire.GetDomainKey{Domain: t.env.c.Domain}, &ok)
	if !bytes.Equal(ok.Key, t.env.info.CertKey) {
		t.Fatalf("key %x, server-info has %x", ok.Key, t.env.info.CertKey)
	}
}

// test8_12_2_DomainKeyInvalidDomain checks 8.12/2: get-domain-key of an invalid domain is invalid_address.
func test8_12_2_DomainKeyInvalidDomain(t *T) {
	t.expectErr(t.connect(t.account()), &wire.GetDomainKey{Domain: "Example.org"}, wire.CodeInvalidAddress)
}

// test8_12_3_FedServerInfo checks 8.12/3: server-info on an established federation connection names the domain and its key.
func test8_12_3_FedServerInfo(t *T) {
	var ok wire.ServerInfoOK
	t.do(t.fedConn(t.env.peer.c.Domain), &wire.ServerInfo{}, &ok)
	if ok.Domain != t.env.c.Domain || !bytes.Equal(ok.CertKey, t.env.info.CertKey) {
		t.Fatalf("server-info %q %x", ok.Domain, ok.CertKey)
	}
}

// test8_12_4_PeerDomainKey checks 8.12/4: get-domain-key for the peer's domain is the key of the peer's server-info.
func test8_12_4_PeerDomainKey(t *T) {
	p := t.usePeer()
	var ok wire.DomainKeyOK
	t.do(t.connect(t.account()), &wire.GetDomainKey{Domain: p.c.Domain}, &ok)
	if !bytes.Equal(ok.Key, p.certKey.Public().(ed25519.PublicKey)) {
		t.Fatalf("key %x, the peer's is %x", ok.Key, p.certKey.Public())
	}
}

// remoteMailbox is a mailbox on the peer's domain.
func (t *T) remoteMailbox() wire.Mailbox {
	return wire.Mailbox{Address: "conf-" + string(hexID()) + "@" + t.env.peer.c.Domain, Device: 1}
}

func hexID() []byte {
	const digits = "0123456789abcdef"
	b := randomID()[:6]
	out := make([]byte, 0, 12)
	for _, c := range b {
		out = append(out, digits[c>>4], digits[c&15])
	}
	return out
}

// remoteEnvelope is an envelope for a mailbox on the peer's domain.
func (t *T) remoteEnvelope() wire.Envelope {
	tok := randomID()
	return wire.Envelope{ID: randomID(), To: t.remoteMailbox(), Token: append(tok, tok...), Sealed: sealedOf(256)}
}

// awaitRelay waits until the peer receives a relay holding an envelope
// with id, and returns that envelope and the event.
func (t *T) awaitRelay(p *peer, from int, id []byte, d time.Duration) (wire.Envelope, peerEvent, int) {
	ctx, cancel := context.WithTimeout(t.ctx, d)
	defer cancel()
	var found wire.Envelope
	ev, next, err := p.await(ctx, from, func(ev peerEvent) bool {
		r, ok := ev.req.(*wire.Relay)
		if !ok {
			return false
		}
		for _, e := range r.Envelopes {
			if bytes.Equal(e.ID, id) {
				found = e
				return true
			}
		}
		return false
	})
	if err != nil {
		t.Fatalf("the envelope was not relayed to the peer within %s: %v", d, err)
	}
	return found, ev, next
}

// relayedAgainWithin reports whether id is relayed again within d (a
// bounded wait, to observe that something does not happen).
func (t *T) relayedAgainWithin(p *peer, from int, id []byte, d time.Duration) bool {
	ctx, cancel := context.WithTimeout(t.ctx, d)
	defer cancel()
	_, _, err := p.await(ctx, from, func(ev peerEvent) bool {
		r, ok := ev.req.(*wire.Relay)
		return ok && slicesContainsID(r.Envelopes, id)
	})
	return err == nil
}

func slicesContainsID(envs []wire.Envelope, id []byte) bool {
	for _, e := range envs {
		if bytes.Equal(e.ID, id) {
			return true
		}
	}
	return false
}

// relayResults relays envs on c and returns the per-envelope results.
func (t *T) relay(c *conn, envs ...wire.Envelope) []wire.Code {
	var ok wire.RelayOK
	t.do(c, &wire.Relay{Envelopes: envs}, &ok)
	if len(ok.Results) != len(envs) {
		t.Fatalf("relay-ok has %d results for %d envelopes", len(ok.Results), len(envs))
	}
	return ok.Results
}

// dropConns closes the peer's accepted connections, so that the server
// under test dials again.
func (p *peer) dropConns() {
	p.setUnreachable(true)
	p.setUnreachable(false)
}

// answerFor is a relay handler that answers code for the envelope id and 0
// for the others.
func answerFor(id []byte, code wire.Code) func(r *wire.Relay) []byte {
	return func(r *wire.Relay) []byte {
		res := make([]wire.Code, len(r.Envelopes))
		for i, e := range r.Envelopes {
			if bytes.Equal(e.ID, id) {
				res[i] = code
			}
		}
		f, _ := wire.EncodeSuccess(&wire.RelayOK{Results: res})
		return f
	}
}

func keysOf(m map[uint64]any) []uint64 {
	var out []uint64
	for k := range m {
		out = append(out, k)
	}
	return out
}

// test8_3_4_No0RTTFederation checks 8.3/4: the listener does not accept 0-RTT data on a resumed xchat-fed/1 connection.
func test8_3_4_No0RTTFederation(t *T) {
	p := t.env.peer
	conf := t.env.tls.Clone()
	conf.NextProtos = []string{wire.ALPNFederation}
	conf.Certificates = []tls.Certificate{p.c.Certificate}
	conf.ClientSessionCache = tls.NewLRUClientSessionCache(4)
	addr, err := net.ResolveUDPAddr("udp", t.env.c.Server)
	t.must(err, "server address")
	qc, err := p.tr.Dial(t.ctx, addr, conf, &quic.Config{})
	t.must(err, "first connection")
	first := &conn{e: t.env, qc: qc}
	t.do(first, &wire.FedHello{Domain: p.c.Domain}, &wire.FedHelloOK{})
	first.close()
	eqc, err := p.tr.DialEarly(t.ctx, addr, conf, &quic.Config{})
	t.must(err, "second connection")
	defer eqc.CloseWithError(0, "")
	select {
	case <-eqc.HandshakeComplete():
	case <-t.ctx.Done():
		t.Fatalf("handshake: %v", t.ctx.Err())
	}
	if !eqc.ConnectionState().TLS.DidResume {
		t.Skipf("the server did not resume the session, so 0-RTT could not be offered")
	}
	if eqc.ConnectionState().Used0RTT {
		t.Fatalf("the server accepted 0-RTT on xchat-fed/1")
	}
}

// test8_9_1_4_MailboxFullRelayedAgain checks 8.9.1/4: an envelope the peer answers mailbox_full is temporary: relayed again, no notice.
func test8_9_1_4_MailboxFullRelayedAgain(t *T) {
	p := t.usePeer()
	e := t.remoteEnvelope()
	p.behave(func(p *peer) { p.onRelay = answerFor(e.ID, wire.CodeMailboxFull) })
	from := p.mark()
	c := t.connect(t.account())
	t.untilCaughtUp(c)
	t.sendOK(c, e)
	_, _, next := t.awaitRelay(p, from, e.ID, relayWait)
	p.behave(func(p *peer) { p.onRelay = nil })
	t.awaitRelay(p, next, e.ID, 10*time.Second)
	if t.pushedWithin(c, 200*time.Millisecond, wire.NoticeID(e.ID, e.To)) {
		t.Fatalf("a notice for an envelope refused with the temporary mailbox_full")
	}
}

// test8_9_1_5_FewerResults checks 8.9.1/5: a relay-ok with fewer results than envelopes makes the origin close with protocol_violation and relay again.
func test8_9_1_5_FewerResults(t *T) {
	p := t.usePeer()
	e1, e2 := t.remoteEnvelope(), t.remoteEnvelope()
	p.behave(func(p *peer) {
		p.onRelay = func(r *wire.Relay) []byte {
			n := len(r.Envelopes)
			if slicesContainsID(r.Envelopes, e1.ID) || slicesContainsID(r.Envelopes, e2.ID) {
				n-- // 0 results for one envelope: also fewer, and not a relay-ok
			}
			f, _ := wire.Marshal(map[uint64]any{0: uint64(0), 1: make([]uint64, n)})
			return wire.AppendFrame(nil, f)
		}
	})
	from := p.mark()
	t.sendOK(t.connect(t.account()), e1, e2)
	_, ev, next := t.awaitRelay(p, from, e1.ID, relayWait)
	ctx, cancel := context.WithTimeout(t.ctx, 10*time.Second)
	defer cancel()
	closed, _, err := p.await(ctx, from, func(x peerEvent) bool { return x.kind == "closed" && x.conn == ev.conn })
	t.must(err, "waiting for the origin to close the connection")
	var ae *quic.ApplicationError
	if !errors.As(closed.err, &ae) || ae.ErrorCode != wire.CloseProtocolViolation {
		t.Errorf("closed with %v, want protocol_violation (1)", closed.err)
	}
	p.behave(func(p *peer) { p.onRelay = nil })
	t.awaitRelay(p, next, e1.ID, relayWait)
}

// test8_9_1_6_NoticeToSubmittingDevice checks 8.9.1/6: the notice of a refused envelope goes to the device that submitted it, not to another device of the account.
func test8_9_1_6_NoticeToSubmittingDevice(t *T) {
	p := t.usePeer() // first: hold no account while waiting for the peer
	a := t.accountsFirst(1, twoDevices)[0]
	c1 := t.connect(a)
	l := t.extraDevice(a, c1)
	e := t.remoteEnvelope()
	p.behave(func(p *peer) { p.onRelay = answerFor(e.ID, wire.CodeUnknownDevice) })
	t.untilCaughtUp(c1)
	c2 := t.connect(a.as(l))
	t.untilCaughtUp(c2)
	nid := wire.NoticeID(e.ID, e.To)
	// The first device must not get the notice: watch it while waiting.
	ctx, cancel := context.WithTimeout(t.ctx, 15*time.Second)
	defer cancel()
	wrong := make(chan struct{})
	go func() {
		if t.pushedWithin(c1, 15*time.Second, nid) {
			close(wrong)
			cancel()
		}
	}()
	t.sendOK(c2, e)
	for {
		it, err := c2.pushes().next(ctx)
		select {
		case <-wrong:
			t.Fatalf("the notice went to device %d, not to device %d that submitted the envelope", a.id, l.id)
		default:
		}
		t.must(err, "waiting for the notice on the submitting device")
		if m, ok := it.msg.(*wire.Deliver); ok && countIDs(m.Deliveries)[string(nid)] > 0 {
			break
		}
	}
	select { // a bounded wait, to observe that something does not happen
	case <-wrong:
		t.Fatalf("the notice also went to device %d", a.id)
	case <-time.After(300 * time.Millisecond):
	}
}

// test8_7_5_QueuedAgainAfterRelay checks 8.7/5: an envelope sent again after it left the outbound queue is queued and relayed again.
func test8_7_5_QueuedAgainAfterRelay(t *T) {
	p := t.usePeer()
	from := p.mark()
	e := t.remoteEnvelope()
	c := t.connect(t.account())
	t.sendOK(c, e)
	_, _, next := t.awaitRelay(p, from, e.ID, relayWait)
	// The envelope leaves the queue when the origin has the peer's
	// answer, which the peer cannot observe: send it again until it is
	// relayed again (while it is still queued, a send is answered 0 and
	// queues nothing).
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		t.sendOK(c, e)
		if t.relayedAgainWithin(p, next, e.ID, 250*time.Millisecond) {
			return
		}
	}
	t.Fatalf("the envelope sent again after it was relayed (answered 0) was not relayed again within 10 s")
}

// test8_9_1_7_EveryPermanentCode checks 8.9.1/7: every permanent per-envelope code comes back as a notice with that code.
func test8_9_1_7_EveryPermanentCode(t *T) {
	p := t.usePeer()
	codes := map[string]wire.Code{}
	var envs []wire.Envelope
	var nids [][]byte
	for _, code := range []wire.Code{wire.CodeWrongDomain, wire.CodeTokenInvalid, wire.CodeRequestLaneClosed,
		wire.CodeEnvelopeTooLarge, wire.CodeBadPadding} {
		e := t.remoteEnvelope()
		codes[string(e.ID)] = code
		envs = append(envs, e)
		nids = append(nids, wire.NoticeID(e.ID, e.To))
	}
	p.behave(func(p *peer) {
		p.onRelay = func(r *wire.Relay) []byte {
			res := make([]wire.Code, len(r.Envelopes))
			for i, e := range r.Envelopes {
				res[i] = codes[string(e.ID)]
			}
			f, _ := wire.EncodeSuccess(&wire.RelayOK{Results: res})
			return f
		}
	})
	c := t.connect(t.account())
	t.untilCaughtUp(c)
	t.sendOK(c, envs...)
	for _, d := range t.waitFor(c, relayWait, nids...) {
		var n wire.Notice
		t.must(wire.Unmarshal(d.Sealed, &n), "notice")
		if d.Lane != wire.LaneNotice || n.Code != codes[string(n.ID)] {
			t.Errorf("notice in lane %d with code %s, want lane 2 and %s", d.Lane, n.Code, codes[string(n.ID)])
		}
	}
}

// test8_9_1_8_UnknownCodeTemporary checks 8.9.1/8: a per-envelope code the table does not list (99) is temporary: relayed again, no notice.
func test8_9_1_8_UnknownCodeTemporary(t *T) {
	p := t.usePeer()
	e := t.remoteEnvelope()
	p.behave(func(p *peer) { p.onRelay = answerFor(e.ID, 99) })
	from := p.mark()
	c := t.connect(t.account())
	t.untilCaughtUp(c)
	t.sendOK(c, e)
	_, _, next := t.awaitRelay(p, from, e.ID, relayWait)
	p.behave(func(p *peer) { p.onRelay = nil })
	t.awaitRelay(p, next, e.ID, 10*time.Second)
	if t.pushedWithin(c, 200*time.Millisecond, wire.NoticeID(e.ID, e.To)) {
		t.Fatalf("a notice for an envelope refused with a code the table does not list")
	}
}

// test8_4_3_SyntaxBeforeHelloState checks 8.4/3: syntax comes before the hello state: an empty relay before fed-hello is limit_exceeded, an invalid second fed-hello invalid_address.
func test8_4_3_SyntaxBeforeHelloState(t *T) {
	c := t.fedConn("")
	t.expectErr(c, &wire.Relay{Envelopes: []wire.Envelope{}}, wire.CodeLimitExceeded)
	c = t.fedConn(t.env.peer.c.Domain)
	t.expectErr(c, &wire.FedHello{Domain: "Peer.Test"}, wire.CodeInvalidAddress)
}

// test8_3_5_DiallerVerifiesChain checks 8.3/5: the dialler refuses a listener whose certificate chain it does not trust, and relays nothing to it.
func test8_3_5_DiallerVerifiesChain(t *T) {
	p := t.usePeer()
	bad, err := selfSignedFor(p.c.Domain)
	t.must(err, "certificate")
	p.behave(func(p *peer) { p.cert = &bad })
	// A connection the server dialled just before the certificate changed
	// may still be accepted after the drop, and a server rightly relays on
	// it: then drop again and send another envelope, until the server has
	// to dial.
	var from int
	var e wire.Envelope
	for attempt := 1; ; attempt++ {
		p.dropConns()
		from = p.mark()
		e = t.remoteEnvelope()
		t.sendOK(t.connect(t.account()), e)
		ctx, cancel := context.WithTimeout(t.ctx, relayWait)
		ev, _, err := p.await(ctx, from, func(ev peerEvent) bool {
			r, ok := ev.req.(*wire.Relay)
			return ev.kind == "badcert" || ok && slicesContainsID(r.Envelopes, e.ID)
		})
		cancel()
		t.must(err, "waiting for the server to dial the peer")
		if ev.kind == "badcert" {
			break
		}
		if attempt == 3 {
			t.Fatalf("the server relayed on a connection made before the peer's certificate changed, three times")
		}
	}
	if t.relayedAgainWithin(p, from, e.ID, 500*time.Millisecond) {
		t.Fatalf("the envelope was relayed to a listener with a self-signed certificate")
	}
	p.behave(func(p *peer) { p.cert = nil })
	t.awaitRelay(p, from, e.ID, relayWait) // and it is relayed once the peer is genuine
}

// test8_11_5_RemoteClaim checks 8.11/5: claim-key-package for a remote device is forwarded with its address and device, and the answer returned.
func test8_11_5_RemoteClaim(t *T) {
	p := t.usePeer()
	p.behave(func(p *peer) {
		p.onLookup = func(req wire.Request) []byte {
			r, ok := req.(*wire.ClaimKeyPackage)
			if !ok {
				return wire.EncodeError(wire.Errorf(wire.CodeUnknownRequest, "%T", req))
			}
			f, _ := wire.EncodeSuccess(&wire.ClaimKeyPackageOK{KeyPackage: fmt.Appendf(nil, "%s/%d", r.Address, r.Device)})
			return f
		}
	})
	addr := "conf-claim@" + p.c.Domain
	var ok wire.ClaimKeyPackageOK
	t.do(t.connect(t.account()), &wire.ClaimKeyPackage{Address: addr, Device: 7}, &ok)
	if want := addr + "/7"; string(ok.KeyPackage) != want || ok.LastResort {
		t.Fatalf("claimed %q (last resort %v), the destination answered %q for the device asked", ok.KeyPackage, ok.LastResort, want)
	}
}
