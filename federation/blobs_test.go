package federation_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server"
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
	rate := int64(wire.BlobPartSize) // burst: 4 s worth, 4 parts
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
	burst := server.FedBlobBurst(rate) / wire.BlobPartSize
	for i := range burst {
		var ok wire.BlobGetOK
		if err := r.Request(get, &ok); err != nil {
			t.Fatalf("read %d of the burst: %v", i, err)
		}
		if !bytes.Equal(ok.Data, blob[:wire.BlobPartSize]) || ok.Size != uint64(len(blob)) {
			t.Fatalf("read %d: wrong bytes", i)
		}
	}
	err := r.Request(get, &wire.BlobGetOK{})
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != wire.CodeRateLimited || pe.RetryAfter <= 0 || pe.RetryAfter > 2*time.Second {
		t.Fatalf("read past the burst: %v, want rate_limited with a retry-after of about 1 s", err)
	}
	// Another origin domain has a budget of its own; unknown blobs are
	// unknown_blob to it too.
	r2 := servertest.DialFed(t, s, s.CADir(), "other.test")
	if err := hello(r2, "other.test"); err != nil {
		t.Fatal(err)
	}
	if err := r2.Request(get, &wire.BlobGetOK{}); err != nil {
		t.Fatalf("another origin: %v", err)
	}
	servertest.MustCode(t, r2.Request(&wire.FedBlobGet{ID: servertest.RandomID(), Length: 10}, &wire.BlobGetOK{}), wire.CodeUnknownBlob)
}
