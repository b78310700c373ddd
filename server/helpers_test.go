package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// register creates an account with the reference client in a fresh profile.
func register(t *testing.T, s *servertest.Server, address string) *client.Profile {
	t.Helper()
	p, err := client.OpenProfile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	if _, err := client.Register(testCtx(t), p, client.RegisterOptions{Address: address, Server: s.Addr, CAFile: s.CAFile}); err != nil {
		t.Fatalf("register %s: %v", address, err)
	}
	return p
}

func connect(t *testing.T, p *client.Profile) *client.Client {
	t.Helper()
	c, err := client.Connect(testCtx(t), p)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// receiveAll receives until nothing new arrives for a short while.
func receiveAll(t *testing.T, p *client.Profile) []client.Message {
	t.Helper()
	c := connect(t, p)
	var got []client.Message
	err := c.Receive(testCtx(t), client.ReceiveOptions{
		Wait:      300 * time.Millisecond,
		OnMessage: func(m client.Message) { got = append(got, m) },
		OnDrop:    func(_ [16]byte, err error) { t.Errorf("dropped envelope: %v", err) },
	})
	if err != nil {
		t.Fatalf("receive: %v", err)
	}
	c.Close()
	return got
}

// raw is a wire-level connection for sending arbitrary bytes.
type raw struct {
	t  *testing.T
	qc *quic.Conn
}

func tlsConf(t *testing.T, s *servertest.Server, alpn string) *tls.Config {
	pemBytes, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	return &tls.Config{RootCAs: pool, ServerName: s.Domain, NextProtos: []string{alpn}, MinVersion: tls.VersionTLS13}
}

func dialRaw(t *testing.T, s *servertest.Server) *raw {
	t.Helper()
	qc, err := quic.DialAddr(testCtx(t), s.Addr, tlsConf(t, s, wire.ALPN), &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	return &raw{t: t, qc: qc}
}

// roundTrip writes b on a new request stream and returns the response
// payload.
func (r *raw) roundTrip(b []byte) []byte {
	r.t.Helper()
	st, err := r.qc.OpenStreamSync(testCtx(r.t))
	if err != nil {
		r.t.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := st.Write(b); err != nil {
		r.t.Fatal(err)
	}
	st.Close()
	resp, err := wire.ReadFrame(st, wire.MaxFrame)
	if err != nil {
		r.t.Fatalf("read response: %v", err)
	}
	return resp
}

// request sends a request and decodes the response into ok.
func (r *raw) request(req wire.Request, ok any) error {
	r.t.Helper()
	frame, err := wire.EncodeRequest(req)
	if err != nil {
		r.t.Fatal(err)
	}
	return wire.DecodeResponse(r.roundTrip(frame), ok)
}

// expectCode sends b as a request and requires an error response with code.
func (r *raw) expectCode(b []byte, code wire.Code) {
	r.t.Helper()
	err := wire.DecodeResponse(r.roundTrip(b), &wire.OK{})
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != code {
		r.t.Fatalf("got %v, want error %s", err, code)
	}
}

// device is a raw test device with its keys.
type device struct {
	address string
	id      uint32
	sig     ed25519.PrivateKey
	hk      hpke.PrivateKey
}

func newDevice(t *testing.T, address string) *device {
	_, sig, _ := ed25519.GenerateKey(rand.Reader)
	hk, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &device{address: address, sig: sig, hk: hk}
}

func (d *device) keys() wire.DeviceKeys {
	return wire.DeviceKeys{SigKey: d.sig.Public().(ed25519.PublicKey), KEM: wire.KEMXWing, HPKEKey: d.hk.PublicKey().Bytes()}
}

func (r *raw) exporter() []byte {
	cs := r.qc.ConnectionState().TLS
	e, err := cs.ExportKeyingMaterial(wire.ExporterLabel, nil, 32)
	if err != nil {
		r.t.Fatal(err)
	}
	return e
}

// registerRaw registers d on this connection.
func (r *raw) register(d *device, invite []byte) error {
	var ok wire.RegisterOK
	err := r.request(&wire.Register{
		Address: d.address, Keys: d.keys(), Invite: invite,
		Signature: ed25519.Sign(d.sig, wire.DeviceAuthMessage(d.address, 0, r.exporter())),
	}, &ok)
	d.id = ok.Device
	return err
}

func (r *raw) authenticate(d *device) error {
	return r.request(&wire.Authenticate{
		Address: d.address, Device: d.id,
		Signature: ed25519.Sign(d.sig, wire.DeviceAuthMessage(d.address, d.id, r.exporter())),
	}, &wire.OK{})
}

func mustCode(t *testing.T, err error, code wire.Code) {
	t.Helper()
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// sealedOfLen returns random bytes of a valid sealed length for X-Wing.
func sealedOfLen(bucket int) []byte {
	b := make([]byte, wire.XWingEncLen+bucket+wire.AEADTagLen)
	rand.Read(b)
	return b
}

func randomID() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}
