package servertest

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server/devca"
	"github.com/xchat-im/xchat/spec/wire"
)

// Context returns a context for one test's requests, ended after a minute
// or when the test ends.
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// Raw is a wire-level connection for sending arbitrary bytes and
// requests, for tests of what a server does with them.
type Raw struct {
	T  testing.TB
	QC *quic.Conn
}

// TLSConfig returns a client TLS configuration for s that trusts its CA
// and offers alpn.
func TLSConfig(t testing.TB, s *Server, alpn string) *tls.Config {
	pemBytes, err := os.ReadFile(s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pemBytes)
	return &tls.Config{RootCAs: pool, ServerName: s.Domain, NextProtos: []string{alpn}, MinVersion: tls.VersionTLS13}
}

// Dial opens a client connection (ALPN xchat/1) to s.
func Dial(t testing.TB, s *Server) *Raw {
	t.Helper()
	return DialConfig(t, s, &quic.Config{})
}

// DialDatagrams opens a client connection to s that supports QUIC
// DATAGRAMs, as a call's connection must (spec/12-calls.md section 12.5).
func DialDatagrams(t testing.TB, s *Server) *Raw {
	t.Helper()
	return DialConfig(t, s, &quic.Config{EnableDatagrams: true})
}

// DialConfig opens a client connection to s with the QUIC configuration
// conf.
func DialConfig(t testing.TB, s *Server, conf *quic.Config) *Raw {
	t.Helper()
	qc, err := quic.DialAddr(Context(t), s.Addr, TLSConfig(t, s, wire.ALPN), conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	return &Raw{T: t, QC: qc}
}

// DialOver opens a client connection to s over pc (a UDP socket, or a
// wrapper of one that a test controls) with the QUIC configuration conf.
func DialOver(t testing.TB, s *Server, pc net.PacketConn, conf *quic.Config) *Raw {
	t.Helper()
	addr, err := net.ResolveUDPAddr("udp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	tr := &quic.Transport{Conn: pc}
	t.Cleanup(func() { tr.Close() })
	qc, err := tr.Dial(Context(t), addr, TLSConfig(t, s, wire.ALPN), conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	return &Raw{T: t, QC: qc}
}

// CallJoin joins the call room with call-join (spec/12-calls.md section
// 12.3) and returns its handle.
func (r *Raw) CallJoin(room, token []byte, domains ...string) (uint32, error) {
	var ok wire.CallJoinOK
	err := r.Request(&wire.CallJoin{Room: room, Token: token, Domains: domains}, &ok)
	return ok.Handle, err
}

// CallLeave leaves the call room of handle with call-leave.
func (r *Raw) CallLeave(handle uint32) error {
	return r.Request(&wire.CallLeave{Handle: handle}, &wire.OK{})
}

// NextDatagram returns the next DATAGRAM the connection receives, or an
// error after d.
func (r *Raw) NextDatagram(d time.Duration) ([]byte, error) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return r.QC.ReceiveDatagram(ctx)
}

// RoundTrip writes b on a new request stream and returns the response
// payload.
func (r *Raw) RoundTrip(b []byte) []byte {
	r.T.Helper()
	st, err := r.QC.OpenStreamSync(Context(r.T))
	if err != nil {
		r.T.Fatal(err)
	}
	st.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := st.Write(b); err != nil {
		r.T.Fatal(err)
	}
	st.Close()
	resp, err := wire.ReadFrame(st, wire.MaxFrame)
	if err != nil {
		r.T.Fatalf("read response: %v", err)
	}
	return resp
}

// Request sends a request and decodes the response into ok.
func (r *Raw) Request(req wire.Request, ok any) error {
	r.T.Helper()
	frame, err := wire.EncodeRequest(req)
	if err != nil {
		r.T.Fatal(err)
	}
	return wire.DecodeResponse(r.RoundTrip(frame), ok)
}

// ExpectCode sends b as a request and requires an error response with code.
func (r *Raw) ExpectCode(b []byte, code wire.Code) {
	r.T.Helper()
	err := wire.DecodeResponse(r.RoundTrip(b), &wire.OK{})
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != code {
		r.T.Fatalf("got %v, want error %s", err, code)
	}
}

// Device is a test device with its keys.
type Device struct {
	Address string
	ID      uint32
	Sig     ed25519.PrivateKey
	HPKE    hpke.PrivateKey
}

// NewDevice makes the keys of a device of address.
func NewDevice(t testing.TB, address string) *Device {
	_, sig, _ := ed25519.GenerateKey(rand.Reader)
	hk, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	return &Device{Address: address, Sig: sig, HPKE: hk}
}

// Keys returns the device's public keys.
func (d *Device) Keys() wire.DeviceKeys {
	return wire.DeviceKeys{SigKey: d.Sig.Public().(ed25519.PublicKey), KEM: wire.KEMXWing, HPKEKey: d.HPKE.PublicKey().Bytes()}
}

// Exporter returns the connection's device-authentication exporter value.
func (r *Raw) Exporter() []byte {
	cs := r.QC.ConnectionState().TLS
	e, err := cs.ExportKeyingMaterial(wire.ExporterLabel, nil, 32)
	if err != nil {
		r.T.Fatal(err)
	}
	return e
}

// Register registers d on this connection and sets its ID.
func (r *Raw) Register(d *Device, invite []byte) error {
	var ok wire.RegisterOK
	err := r.Request(&wire.Register{
		Address: d.Address, Keys: d.Keys(), Invite: invite,
		Signature: ed25519.Sign(d.Sig, wire.DeviceAuthMessage(d.Address, 0, r.Exporter())),
	}, &ok)
	d.ID = ok.Device
	return err
}

// CreateLink asks for a link token on this connection, which must be
// authenticated (spec/05-accounts.md section 5.11.1).
func (r *Raw) CreateLink() (*wire.CreateLinkOK, error) {
	var ok wire.CreateLinkOK
	if err := r.Request(&wire.CreateLink{}, &ok); err != nil {
		return nil, err
	}
	return &ok, nil
}

// RegisterLinked registers d as a new device of the existing account
// d.Address with a link token on this connection, and sets d.ID.
func (r *Raw) RegisterLinked(d *Device, token []byte) error {
	var ok wire.RegisterOK
	err := r.Request(&wire.Register{
		Address: d.Address, Keys: d.Keys(), Link: token,
		Signature: ed25519.Sign(d.Sig, wire.DeviceAuthMessage(d.Address, 0, r.Exporter())),
	}, &ok)
	if err == nil {
		d.ID = ok.Device
	}
	return err
}

// RemoveDevice removes device id of this connection's account.
func (r *Raw) RemoveDevice(id uint32) error {
	return r.Request(&wire.RemoveDevice{Device: id}, &wire.OK{})
}

// Authenticate authenticates this connection as d.
func (r *Raw) Authenticate(d *Device) error {
	return r.Request(&wire.Authenticate{
		Address: d.Address, Device: d.ID,
		Signature: ed25519.Sign(d.Sig, wire.DeviceAuthMessage(d.Address, d.ID, r.Exporter())),
	}, &wire.OK{})
}

// MustCode fails the test unless err is a protocol error with code.
func MustCode(t testing.TB, err error, code wire.Code) {
	t.Helper()
	var pe *wire.Error
	if !errors.As(err, &pe) || pe.Code != code {
		t.Fatalf("got %v, want %s", err, code)
	}
}

// SealedOfLen returns random bytes of a valid sealed length for X-Wing.
func SealedOfLen(bucket int) []byte {
	b := make([]byte, wire.XWingEncLen+bucket+wire.AEADTagLen)
	rand.Read(b)
	return b
}

// RandomID returns a random envelope id.
func RandomID() []byte {
	b := make([]byte, 16)
	rand.Read(b)
	return b
}

// DialFed opens a federation connection (ALPN xchat-fed/1) to s that
// presents the certificate the development CA in caDir issued for
// certDomain (issuing it when missing). It does not send fed-hello.
func DialFed(t testing.TB, s *Server, caDir, certDomain string) *Raw {
	t.Helper()
	ca, err := devca.LoadOrCreate(caDir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(devca.DomainCertPath(caDir, certDomain)); err != nil {
		if err := ca.Issue(caDir, certDomain); err != nil {
			t.Fatal(err)
		}
	}
	cert, err := tls.LoadX509KeyPair(devca.DomainCertPath(caDir, certDomain), devca.DomainKeyPath(caDir, certDomain))
	if err != nil {
		t.Fatal(err)
	}
	conf := TLSConfig(t, s, wire.ALPNFederation)
	conf.Certificates = []tls.Certificate{cert}
	qc, err := quic.DialAddr(Context(t), s.Addr, conf, &quic.Config{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { qc.CloseWithError(0, "") })
	return &Raw{T: t, QC: qc}
}

// CADir returns the directory of the development CA that issued the
// server's certificate.
func (s *Server) CADir() string { return filepath.Dir(s.CAFile) }
