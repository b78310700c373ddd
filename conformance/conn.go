package conformance

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/spec/wire"
)

// conn is a client connection to the server under test.
type conn struct {
	e  *env
	qc *quic.Conn

	pushOnce sync.Once
	push     *pushReader

	dgOnce sync.Once
	dg     *dgrams
}

// dial opens a client connection (ALPN xchat/1).
func (e *env) dial(ctx context.Context) (*conn, error) {
	return e.dialTLS(ctx, e.tls.Clone())
}

func (e *env) dialTLS(ctx context.Context, conf *tls.Config) (*conn, error) {
	qc, err := quic.DialAddr(ctx, e.c.Server, conf, clientQUIC())
	if err != nil {
		return nil, err
	}
	return &conn{e: e, qc: qc}, nil
}

// clientQUIC is the QUIC configuration of the suite's connections: QUIC
// DATAGRAMs enabled (max_datagram_frame_size), for call media (section
// 12.5).
func clientQUIC() *quic.Config {
	return &quic.Config{KeepAlivePeriod: 10 * time.Second, EnableDatagrams: true}
}

// dial opens a client connection for t, closed when t ends.
func (t *T) dial() *conn {
	c, err := t.env.dial(t.ctx)
	t.must(err, "connect")
	t.Cleanup(c.close)
	return c
}

func (c *conn) close() { c.qc.CloseWithError(wire.CloseNoError, "") }

// exporter returns the device-authentication exporter of the connection.
func (c *conn) exporter() ([]byte, error) {
	if c.e.c.exporter != nil {
		return c.e.c.exporter(c.qc)
	}
	cs := c.qc.ConnectionState().TLS
	return cs.ExportKeyingMaterial(wire.ExporterLabel, nil, 32)
}

// roundTrip writes raw on a new request stream, finishes it and returns the
// payload of the one response frame.
func (c *conn) roundTrip(ctx context.Context, raw []byte) ([]byte, error) {
	return c.roundTripFin(ctx, raw, true)
}

func (c *conn) roundTripFin(ctx context.Context, raw []byte, fin bool) ([]byte, error) {
	st, err := c.qc.OpenStreamSync(ctx)
	if err != nil {
		return nil, fmt.Errorf("open stream: %w", err)
	}
	if dl, ok := ctx.Deadline(); ok {
		st.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() {
		st.CancelRead(wire.StreamRequestCancelled)
		st.CancelWrite(wire.StreamRequestCancelled)
	})
	defer stop()
	if _, err := st.Write(raw); err != nil {
		// A server may stop reading (STOP_SENDING) once it has decided
		// to reject the request; its response still comes.
		if p, rerr := readResponse(st); rerr == nil {
			return p, nil
		}
		return nil, fmt.Errorf("write request: %w", err)
	}
	if fin {
		st.Close()
	}
	return readResponse(st)
}

// readResponse reads exactly one response frame and the FIN after it.
func readResponse(st *quic.Stream) ([]byte, error) {
	p, err := wire.ReadFrame(st, wire.MaxFrame)
	if errors.Is(err, wire.ErrEndOfStream) {
		return nil, errors.New("the server finished the request stream without a response")
	}
	if err != nil {
		return nil, fmt.Errorf("read response: %w", err)
	}
	var one [1]byte
	n, err := st.Read(one[:])
	if n > 0 {
		return nil, errors.New("bytes after the response frame")
	}
	if !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("no FIN after the response frame: %w", err)
	}
	return p, nil
}

// request sends req and decodes the response into ok; an error response is
// a *wire.Error.
func (c *conn) request(ctx context.Context, req wire.Request, ok any) error {
	f, err := wire.EncodeRequest(req)
	if err != nil {
		return err
	}
	p, err := c.roundTrip(ctx, f)
	if err != nil {
		return err
	}
	return wire.DecodeResponse(p, ok)
}

// do sends req for t and fails t on anything but success.
func (t *T) do(c *conn, req wire.Request, ok any) {
	if ok == nil {
		ok = &wire.OK{}
	}
	if err := c.request(t.ctx, req, ok); err != nil {
		t.Fatalf("%T: %v", req, err)
	}
}

// expectErr sends req and requires an error response with code.
func (t *T) expectErr(c *conn, req wire.Request, code wire.Code) {
	err := c.request(t.ctx, req, &wire.OK{})
	t.wantCode(err, code, fmt.Sprintf("%T", req))
}

// expectRaw sends the raw bytes of a request stream and requires an error
// response with code.
func (t *T) expectRaw(c *conn, raw []byte, code wire.Code) {
	p, err := c.roundTrip(t.ctx, raw)
	if err != nil {
		t.Fatalf("request %x: %v", short(raw), err)
	}
	t.wantCode(wire.DecodeResponse(p, &wire.OK{}), code, fmt.Sprintf("request %x", short(raw)))
}

// expectRawOK sends raw bytes and requires a success response.
func (t *T) expectRawOK(c *conn, raw []byte) {
	p, err := c.roundTrip(t.ctx, raw)
	if err != nil {
		t.Fatalf("request %x: %v", short(raw), err)
	}
	var ok wire.OK
	if err := wire.DecodeResponse(p, &ok); err != nil {
		t.Fatalf("request %x: got %v, want success", short(raw), err)
	}
}

func (t *T) wantCode(err error, code wire.Code, what string) {
	var pe *wire.Error
	switch {
	case err == nil:
		t.Fatalf("%s: succeeded, want error %s (%d)", what, code, code)
	case !errors.As(err, &pe):
		t.Fatalf("%s: %v, want error %s (%d)", what, err, code, code)
	case pe.Code != code:
		t.Fatalf("%s: error %s (%d), want %s (%d)", what, pe.Code, pe.Code, code, code)
	}
}

func short(b []byte) []byte {
	if len(b) > 24 {
		return b[:24]
	}
	return b
}

// device is a device's key pairs.
type device struct {
	sig  ed25519.PrivateKey
	hpke hpke.PrivateKey
}

func newDevice() (*device, error) {
	_, sig, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hk, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		return nil, err
	}
	return &device{sig: sig, hpke: hk}, nil
}

func (d *device) keys() wire.DeviceKeys {
	return wire.DeviceKeys{SigKey: d.sig.Public().(ed25519.PublicKey), KEM: wire.KEMXWing, HPKEKey: d.hpke.PublicKey().Bytes()}
}

// registerReq builds a register request signed for c.
func (c *conn) registerReq(d *device, address string, invite []byte) (*wire.Register, error) {
	x, err := c.exporter()
	if err != nil {
		return nil, err
	}
	return &wire.Register{Address: address, Keys: d.keys(), Invite: invite,
		Signature: ed25519.Sign(d.sig, wire.DeviceAuthMessage(address, 0, x))}, nil
}

// authReq builds an authenticate request signed for c.
func (c *conn) authReq(d *device, address string, id uint32) (*wire.Authenticate, error) {
	x, err := c.exporter()
	if err != nil {
		return nil, err
	}
	return &wire.Authenticate{Address: address, Device: id,
		Signature: ed25519.Sign(d.sig, wire.DeviceAuthMessage(address, id, x))}, nil
}

// pushItem is one frame of the push stream, or its end.
type pushItem struct {
	raw []byte
	msg any // *wire.Deliver, *wire.CaughtUp or *wire.UnknownPush
	err error
}

// pushReader reads the push stream of a connection.
type pushReader struct {
	ch chan pushItem
}

// pushes returns the connection's push stream reader, accepting the stream
// on first use.
func (c *conn) pushes() *pushReader {
	c.pushOnce.Do(func() {
		p := &pushReader{ch: make(chan pushItem, 1024)}
		c.push = p
		go func() {
			defer close(p.ch)
			st, err := c.qc.AcceptUniStream(context.Background())
			if err != nil {
				p.ch <- pushItem{err: fmt.Errorf("no push stream: %w", err)}
				return
			}
			for {
				b, err := wire.ReadFrame(st, wire.MaxFrame)
				if err != nil {
					if errors.Is(err, wire.ErrEndOfStream) {
						err = io.EOF
					}
					p.ch <- pushItem{err: err}
					return
				}
				m, err := wire.DecodePush(b)
				p.ch <- pushItem{raw: b, msg: m, err: err}
				if err != nil {
					return
				}
			}
		}()
	})
	return c.push
}

// next returns the next push frame.
func (p *pushReader) next(ctx context.Context) (pushItem, error) {
	select {
	case it, ok := <-p.ch:
		if !ok {
			return pushItem{}, io.EOF
		}
		return it, it.err
	case <-ctx.Done():
		return pushItem{}, fmt.Errorf("waiting for a push frame: %w", ctx.Err())
	}
}

// pushWait bounds the wait for one push frame that must come.
const pushWait = 10 * time.Second

// untilCaughtUp returns every delivery pushed before caught-up.
func (t *T) untilCaughtUp(c *conn) []wire.Delivery {
	var out []wire.Delivery
	p := c.pushes()
	ctx, cancel := context.WithTimeout(t.ctx, pushWait)
	defer cancel()
	for {
		it, err := p.next(ctx)
		if err != nil {
			t.Fatalf("push stream before caught-up: %v", err)
		}
		switch m := it.msg.(type) {
		case *wire.Deliver:
			out = append(out, m.Deliveries...)
		case *wire.CaughtUp:
			return out
		}
	}
}

// waitFor reads pushes until every id in ids was delivered and returns
// those deliveries, in order; other deliveries are ignored. It fails t
// after d.
func (t *T) waitFor(c *conn, d time.Duration, ids ...[]byte) []wire.Delivery {
	ctx, cancel := context.WithTimeout(t.ctx, d)
	defer cancel()
	want := map[string]bool{}
	for _, id := range ids {
		want[string(id)] = true
	}
	var out []wire.Delivery
	p := c.pushes()
	for len(want) > 0 {
		it, err := p.next(ctx)
		if err != nil {
			t.Fatalf("waiting for %d of %d envelopes to be pushed: %v", len(want), len(ids), err)
		}
		if m, ok := it.msg.(*wire.Deliver); ok {
			for _, x := range m.Deliveries {
				if want[string(x.ID)] {
					delete(want, string(x.ID))
					out = append(out, x)
				}
			}
		}
	}
	return out
}

// randomID returns a fresh envelope id.
func randomID() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}

// sealedOf returns random bytes of a valid X-Wing sealed length for
// bucket (a power of two from 256 to 65536).
func sealedOf(bucket int) []byte {
	b := make([]byte, wire.XWingEncLen+bucket+wire.AEADTagLen)
	rand.Read(b)
	return b
}
