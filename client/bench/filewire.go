package bench

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// wireDriver moves files with the wire requests themselves (blob-create,
// blob-put, blob-finish, blob-get), several part requests in flight. Its
// blobs are random bytes of a file's ciphertext length followed by the
// zero padding: the servers see what they would see of an encrypted file,
// and the client spends nothing on encryption.
type wireDriver struct {
	domain   string     // of the first server, which holds the blobs
	up       *quic.Conn // a device of the first server that uploads
	down     *quic.Conn // a device of the first server that downloads
	fedDown  *quic.Conn // a device of the second server that downloads
	parallel int
	closers  []func()
	// limited counts blob-gets answered rate_limited and asked again.
	limited atomic.Int64
}

func newWireDriver(ctx context.Context, env *filesEnv) (fileDriver, error) {
	d := &wireDriver{domain: env.servers[0].domain, parallel: env.parallel}
	uc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return nil, err
	}
	tr := &quic.Transport{Conn: uc}
	d.closers = append(d.closers, func() { tr.Close(); uc.Close() })
	qconf := &quic.Config{HandshakeIdleTimeout: wire.HandshakeDeadline, MaxIdleTimeout: wire.IdleTimeout, KeepAlivePeriod: wire.KeepAlive, MaxIncomingStreams: -1}
	token := make([]byte, 32)
	crand.Read(token)
	verifier := wire.TokenVerifier(token)
	var runID [3]byte
	crand.Read(runID[:])
	for i, c := range []struct {
		s    *childServer
		name string
		conn **quic.Conn
	}{{env.servers[0], "up", &d.up}, {env.servers[0], "down", &d.down}, {env.servers[1], "down", &d.fedDown}} {
		tlsConf, err := clientTLS(c.s.domain, c.s.caFile)
		if err != nil {
			d.close()
			return nil, err
		}
		raddr, err := net.ResolveUDPAddr("udp", c.s.addr)
		if err != nil {
			d.close()
			return nil, err
		}
		address := fmt.Sprintf("files-%x-%s-%d@%s", runID, c.name, i, c.s.domain)
		dev, err := (&run{}).register(ctx, tr, raddr, tlsConf, qconf, address, verifier[:])
		if err != nil {
			d.close()
			return nil, fmt.Errorf("device %s: %w", address, err)
		}
		*c.conn = dev.qc
		d.closers = append(d.closers, func() { dev.qc.CloseWithError(0, "") })
	}
	return d, nil
}

func (d *wireDriver) describe() string {
	return fmt.Sprintf("wire requests (blob-put and blob-get, %d in flight; random blobs, no client encryption)", d.parallel)
}

func (d *wireDriver) close() {
	for i := len(d.closers) - 1; i >= 0; i-- {
		d.closers[i]()
	}
	d.closers = nil
}

// roundTrip sends one request on qc within the request deadline.
func roundTrip(ctx context.Context, qc *quic.Conn, req wire.Request, resp any) error {
	ctx, cancel := context.WithTimeout(ctx, wire.RequestDeadline)
	defer cancel()
	return wire.RoundTrip(ctx, qc, req, resp)
}

func (d *wireDriver) prepare(_ context.Context, size int64) (*fileHandle, error) {
	return &fileHandle{size: size}, nil
}

func (d *wireDriver) done(*fileHandle) {}

func (d *wireDriver) rateLimited() int64 { return d.limited.Swap(0) }

// upload creates a blob of a file of f.size bytes, puts its parts, at
// most d.parallel at once, and finishes it.
func (d *wireDriver) upload(ctx context.Context, f *fileHandle) (time.Duration, error) {
	start := time.Now()
	ct := wire.EncryptedFileSize(uint64(f.size))
	blob := wire.PaddedBlobSize(ct)
	var created wire.BlobCreateOK
	if err := roundTrip(ctx, d.up, &wire.BlobCreate{Size: blob}, &created); err != nil {
		return 0, fmt.Errorf("blob-create: %w", err)
	}
	var seed [32]byte
	crand.Read(seed[:])
	rng := rand.NewChaCha8(seed)
	h := sha256.New()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	free := make(chan []byte, d.parallel)
	for range d.parallel {
		free <- make([]byte, wire.BlobPartSize)
	}
	var wg sync.WaitGroup
	var errOnce sync.Once
	var firstErr error
	fail := func(err error) { errOnce.Do(func() { firstErr = err; cancel() }) }
	for i := range wire.BlobParts(blob) {
		var buf []byte
		select {
		case buf = <-free:
		case <-ctx.Done():
		}
		if buf == nil {
			break
		}
		off, n := i*wire.BlobPartSize, wire.BlobPartLen(blob, i)
		buf = buf[:n]
		random := min(n, ct-min(off, ct)) // ciphertext bytes in this part, then padding
		rng.Read(buf[:random])
		clear(buf[random:])
		h.Write(buf)
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ok wire.BlobPutOK
			if err := roundTrip(ctx, d.up, &wire.BlobPut{ID: created.ID, Index: i, Data: buf}, &ok); err != nil {
				fail(fmt.Errorf("blob-put part %d: %w", i, err))
			}
			free <- buf[:cap(buf)]
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	var fin wire.BlobFinishOK
	if err := roundTrip(ctx, d.up, &wire.BlobFinish{ID: created.ID}, &fin); err != nil {
		return 0, fmt.Errorf("blob-finish: %w", err)
	}
	f.ref = wire.FileRef{Domain: d.domain, BlobID: created.ID, Hash: h.Sum(nil), Size: uint64(f.size)}
	return time.Since(start), nil
}

// getRange sends a blob-get; answered rate_limited (a server's
// fed-blob-get rate), it waits the retry-after and asks again.
func (d *wireDriver) getRange(ctx context.Context, qc *quic.Conn, req *wire.BlobGet, resp *wire.BlobGetOK) error {
	for {
		err := roundTrip(ctx, qc, req, resp)
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeRateLimited {
			return err
		}
		d.limited.Add(1)
		wait := max(we.RetryAfter, 10*time.Millisecond)
		select {
		case <-time.After(wait):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// partResult is one blob-get's answer.
type partResult struct {
	data []byte
	err  error
}

// download reads f's blob in parts, at most d.parallel requests at once,
// in order into its hash, and checks the hash: through the first server,
// or with federated through the second.
func (d *wireDriver) download(ctx context.Context, f *fileHandle, federated bool) (time.Duration, error) {
	start := time.Now()
	qc := d.down
	if federated {
		qc = d.fedDown
	}
	blob := f.ref.BlobSize()
	parts := wire.BlobParts(blob)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pending := make(chan chan partResult, d.parallel-1)
	go func() {
		defer close(pending)
		for i := range parts {
			ch := make(chan partResult, 1)
			select {
			case pending <- ch:
			case <-ctx.Done():
				return
			}
			go func() {
				var ok wire.BlobGetOK
				err := d.getRange(ctx, qc, &wire.BlobGet{Domain: f.ref.Domain, ID: f.ref.BlobID, Offset: i * wire.BlobPartSize, Length: wire.BlobPartSize}, &ok)
				switch {
				case err != nil:
					err = fmt.Errorf("blob-get part %d: %w", i, err)
				case ok.Size != blob:
					err = fmt.Errorf("blob-get part %d: blob size %d, want %d", i, ok.Size, blob)
				case uint64(len(ok.Data)) != wire.BlobPartLen(blob, i):
					err = fmt.Errorf("blob-get part %d: %d bytes, want %d", i, len(ok.Data), wire.BlobPartLen(blob, i))
				}
				ch <- partResult{ok.Data, err}
			}()
		}
	}()
	h := sha256.New()
	var got uint64
	for ch := range pending {
		r := <-ch
		if r.err != nil {
			return 0, r.err
		}
		h.Write(r.data)
		got++
	}
	if got != parts {
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		return 0, fmt.Errorf("%d parts of %d", got, parts)
	}
	if !bytes.Equal(h.Sum(nil), f.ref.Hash) {
		return 0, errors.New("the downloaded blob's hash differs from the uploaded one's")
	}
	return time.Since(start), nil
}
