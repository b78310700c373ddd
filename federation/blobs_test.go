package federation_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/devca"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// blobClient is an authenticated client connection for blob requests.
type blobClient struct {
	t   *testing.T
	r   *servertest.Raw
	ctx context.Context
}

func newBlobClient(t *testing.T, s *servertest.Server, address string) *blobClient {
	t.Helper()
	r := servertest.Dial(t, s)
	if err := r.Register(servertest.NewDevice(t, address), nil); err != nil {
		t.Fatalf("register %s: %v", address, err)
	}
	return &blobClient{t: t, r: r, ctx: servertest.Context(t)}
}

func (c *blobClient) do(req wire.Request, resp any) error {
	return wire.RoundTrip(c.ctx, c.r.QC, req, resp)
}

// upload uploads and finishes blob and returns its identifier.
func (c *blobClient) upload(blob []byte) []byte {
	c.t.Helper()
	size := uint64(len(blob))
	var created wire.BlobCreateOK
	if err := c.do(&wire.BlobCreate{Size: size}, &created); err != nil {
		c.t.Fatal(err)
	}
	for i := range wire.BlobParts(size) {
		off := i * wire.BlobPartSize
		put := &wire.BlobPut{ID: created.ID, Index: i, Data: blob[off : off+wire.BlobPartLen(size, i)]}
		if err := c.do(put, &wire.BlobPutOK{}); err != nil {
			c.t.Fatalf("part %d: %v", i, err)
		}
	}
	if err := c.do(&wire.BlobFinish{ID: created.ID}, &wire.BlobFinishOK{}); err != nil {
		c.t.Fatal(err)
	}
	return created.ID
}

func (c *blobClient) get(domain string, id []byte, off, length uint64) (wire.BlobGetOK, error) {
	var ok wire.BlobGetOK
	err := c.do(&wire.BlobGet{Domain: domain, ID: id, Offset: off, Length: length}, &ok)
	return ok, err
}

func randomBlob(n uint64) []byte {
	b := make([]byte, wire.PaddedBlobSize(n))
	rand.Read(b)
	return b
}

// A blob uploaded to a.test is read by a client of b.test through b.test
// (fed-blob-get); a.test's refusals reach the client unchanged.
func TestBlobAcrossFederation(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	alice := newBlobClient(t, fed["a.test"], "alice@a.test")
	bob := newBlobClient(t, fed["b.test"], "bob@b.test")
	blob := randomBlob(2*wire.BlobPartSize + 5000)
	size := uint64(len(blob))
	id := alice.upload(blob)

	var got []byte
	for uint64(len(got)) < size {
		ok, err := bob.get("a.test", id, uint64(len(got)), wire.BlobPartSize)
		if err != nil {
			t.Fatalf("blob-get through b.test at %d: %v", len(got), err)
		}
		if ok.Size != size || len(ok.Data) == 0 {
			t.Fatalf("blob-get at %d: %d bytes of %d", len(got), len(ok.Data), ok.Size)
		}
		got = append(got, ok.Data...)
	}
	if !bytes.Equal(got, blob) {
		t.Fatal("the blob read across federation differs")
	}
	_, err := bob.get("a.test", servertest.RandomID(), 0, 10)
	servertest.MustCode(t, err, wire.CodeUnknownBlob)
	_, err = bob.get("a.test", id, size, 10)
	servertest.MustCode(t, err, wire.CodeBadRange)
	// b.test caches nothing: its own domain does not know the blob.
	_, err = bob.get("b.test", id, 0, 10)
	servertest.MustCode(t, err, wire.CodeUnknownBlob)
}

// The domain policy refuses a blob-get for a refused domain before any
// connection, and a domain that cannot be reached gives unavailable with
// a retry-after.
func TestBlobGetRefusedAndUnreachable(t *testing.T) {
	t.Parallel()
	fed := servertest.StartFederation(t, servertest.Options{DenyDomains: []string{"x.test"}}, "a.test", "b.test")
	bob := newBlobClient(t, fed["b.test"], "bob@b.test")
	_, err := bob.get("x.test", servertest.RandomID(), 0, 10)
	servertest.MustCode(t, err, wire.CodeDomainRefused)

	only := servertest.Start(t, servertest.Options{Domain: "c.test", AllowDomains: []string{"a.test"}})
	carol := newBlobClient(t, only, "carol@c.test")
	_, err = carol.get("b.test", servertest.RandomID(), 0, 10)
	servertest.MustCode(t, err, wire.CodeDomainRefused)

	fed["a.test"].Stop()
	start := time.Now()
	_, err = bob.get("a.test", servertest.RandomID(), 0, 10)
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeUnavailable || pe.RetryAfter <= 0 {
		t.Fatalf("blob-get of a stopped domain: %v, want unavailable with a retry-after", err)
	}
	if took := time.Since(start); took > wire.RequestDeadline {
		t.Errorf("the refusal took %v, beyond the client's request deadline", took)
	}
}

// fed-blob-get is answered only after fed-hello, and within the origin
// domain's budget of bytes; past it, rate_limited with a retry-after.
func TestFedBlobGetHelloAndRate(t *testing.T) {
	t.Parallel()
	// 1 KiB per second: the burst is its floor, one whole part, and what
	// comes back while the test runs is far less than another part.
	rate := int64(1 << 10)
	if server.FedBlobBurst(rate) != wire.BlobPartSize {
		t.Fatalf("burst %d, want one part", server.FedBlobBurst(rate))
	}
	s := servertest.Start(t, servertest.Options{Domain: "a.test", Limits: server.Limits{FedBlobRate: rate}})
	alice := newBlobClient(t, s, "alice@a.test")
	blob := randomBlob(wire.BlobPartSize + 100)
	id := alice.upload(blob)

	r := servertest.DialFed(t, s, s.CADir(), "peer.test")
	get := &wire.FedBlobGet{ID: id, Offset: 0, Length: wire.BlobPartSize}
	servertest.MustCode(t, r.Request(get, &wire.BlobGetOK{}), wire.CodePeerUnauthenticated)
	if err := hello(r, "peer.test"); err != nil {
		t.Fatal(err)
	}
	var ok wire.BlobGetOK
	if err := r.Request(get, &ok); err != nil {
		t.Fatalf("read within the burst: %v", err)
	}
	if !bytes.Equal(ok.Data, blob[:wire.BlobPartSize]) || ok.Size != uint64(len(blob)) {
		t.Fatal("read within the burst: wrong bytes")
	}
	err := r.Request(get, &wire.BlobGetOK{})
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeRateLimited || pe.RetryAfter <= 0 || pe.RetryAfter > 512*time.Second {
		t.Fatalf("read past the burst: %v, want rate_limited with a retry-after of up to 512 s", err)
	}
	// Another origin domain has a budget of its own; unknown blobs are
	// unknown_blob to it.
	r2 := servertest.DialFed(t, s, s.CADir(), "other.test")
	if err := hello(r2, "other.test"); err != nil {
		t.Fatal(err)
	}
	servertest.MustCode(t, r2.Request(&wire.FedBlobGet{ID: servertest.RandomID(), Length: 10}, &wire.BlobGetOK{}), wire.CodeUnknownBlob)
	if err := r2.Request(&wire.FedBlobGet{ID: id, Offset: 10, Length: 100}, &ok); err != nil || !bytes.Equal(ok.Data, blob[10:110]) {
		t.Fatalf("another origin: %v", err)
	}
}

// fakePeer is a federation listener for evil.test that completes
// fed-hello and answers every fed-blob-get with answer's frame, recording
// how each connection ended.
type fakePeer struct {
	addr   string
	closed chan error // one per connection, when it ends
}

func startFakePeer(t *testing.T, caDir string, answer func(*wire.FedBlobGet) []byte) *fakePeer {
	t.Helper()
	ca, err := devca.LoadOrCreate(caDir)
	if err != nil {
		t.Fatal(err)
	}
	if err := ca.Issue(caDir, "evil.test"); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(devca.DomainCertPath(caDir, "evil.test"), devca.DomainKeyPath(caDir, "evil.test"))
	if err != nil {
		t.Fatal(err)
	}
	ln, err := quic.ListenAddr("127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13,
		NextProtos: []string{wire.ALPNFederation}, ClientAuth: tls.RequireAnyClientCert}, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &fakePeer{addr: ln.Addr().String(), closed: make(chan error, 8)}
	go func() {
		for {
			qc, err := ln.Accept(context.Background())
			if err != nil {
				return
			}
			go func() {
				for {
					st, err := qc.AcceptStream(context.Background())
					if err != nil {
						p.closed <- err
						return
					}
					payload, err := wire.ReadRequest(st, wire.MaxFrame)
					if err != nil {
						st.CancelWrite(0)
						continue
					}
					req, err := wire.DecodeFedRequest(payload)
					var resp []byte
					switch r := req.(type) {
					case *wire.FedHello:
						resp, err = wire.EncodeSuccess(&wire.FedHelloOK{Domain: "evil.test"})
					case *wire.FedBlobGet:
						resp = answer(r)
					}
					if err != nil || resp == nil {
						st.CancelWrite(0)
						continue
					}
					wire.WriteResponse(st, resp)
				}
			}()
		}
	}()
	return p
}

// closedWith waits until the fake peer sees a connection end, and checks
// that the homeserver closed it with code.
func (p *fakePeer) closedWith(t *testing.T, code quic.ApplicationErrorCode) {
	t.Helper()
	select {
	case err := <-p.closed:
		var ae *quic.ApplicationError
		if !errors.As(err, &ae) || ae.ErrorCode != code || !ae.Remote {
			t.Fatalf("the connection ended with %v, want the homeserver's close with code %d", err, code)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the homeserver kept the connection of a peer that broke the protocol")
	}
}

// A peer's answer to fed-blob-get that is out of range, or not a valid
// response, reaches the client as unavailable, and the homeserver closes
// the peer's connection with protocol_violation (spec/11-files.md section
// 11.7.1).
func TestBlobGetInvalidPeerAnswer(t *testing.T) {
	t.Parallel()
	caDir := filepath.Join(t.TempDir(), "ca")
	var mode atomic.Int32
	peer := startFakePeer(t, caDir, func(r *wire.FedBlobGet) []byte {
		switch mode.Load() {
		case 0: // one byte more than asked
			b, _ := wire.EncodeSuccess(&wire.BlobGetOK{Data: make([]byte, r.Length+1), Size: wire.MinBlobSize})
			return b
		case 1: // a size that is not a padding bucket
			b, _ := wire.EncodeSuccess(&wire.BlobGetOK{Data: make([]byte, r.Length), Size: wire.MinBlobSize + 1})
			return b
		}
		return wire.AppendFrame(nil, []byte{0xa1, 0x00, 0x00, 0x01}) // {0: 0} and a stray byte: not one CBOR item
	})
	b := servertest.Start(t, servertest.Options{Domain: "b.test", CADir: caDir, Peers: map[string]string{"evil.test": peer.addr}})
	bob := newBlobClient(t, b, "bob@b.test")
	for m := range int32(3) {
		mode.Store(m)
		_, err := bob.get("evil.test", servertest.RandomID(), 0, 10)
		var pe *wire.Error
		if !errors.As(err, &pe) || pe.Code != wire.CodeUnavailable || pe.RetryAfter <= 0 {
			t.Fatalf("answer %d: %v, want unavailable with a retry-after", m, err)
		}
		peer.closedWith(t, wire.CloseProtocolViolation)
	}
}
