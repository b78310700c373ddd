package client

import (
	"errors"
	"testing"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// A registration interrupted after the server created the account resumes
// with the same keys: the keys were saved first, and the server recognises
// them.
func TestRegisterResumesAfterInterruption(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	p, err := OpenProfile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	o := RegisterOptions{Address: "alice@a.test", Server: s.Addr, CAFile: s.CAFile}
	// What Register does up to the register request, then "dies".
	id, err := newIdentity("alice@a.test", o)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.saveIdentity(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	c, err := dial(t.Context(), s.Addr, "a.test", s.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := registerDevice(t.Context(), c, id, "", nil); err != nil {
		t.Fatal(err)
	}
	c.close()
	if _, err := Connect(t.Context(), p); err == nil {
		t.Fatal("connected with an unfinished registration")
	}

	got, err := Register(t.Context(), p, o)
	if err != nil {
		t.Fatalf("resume: %v", err)
	}
	if got.Device != 1 || !got.SigKey.Equal(id.SigKey) {
		t.Fatalf("resumed as device %d with other keys", got.Device)
	}
	cl, err := Connect(t.Context(), p)
	if err != nil {
		t.Fatalf("connect after resume: %v", err)
	}
	cl.Close()
	if _, err := Register(t.Context(), p, o); err == nil {
		t.Fatal("registered a complete profile twice")
	}
}

// A registration the server refuses leaves no identity behind, so another
// address can be tried with the same profile.
func TestRegisterRefusedDropsKeys(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	other, err := OpenProfile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := Register(t.Context(), other, RegisterOptions{Address: "bob@a.test", Server: s.Addr, CAFile: s.CAFile}); err != nil {
		t.Fatal(err)
	}
	p, err := OpenProfile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	_, err = Register(t.Context(), p, RegisterOptions{Address: "bob@a.test", Server: s.Addr, CAFile: s.CAFile})
	if !errors.Is(err, wire.ErrAccountExists) {
		t.Fatalf("register a taken address: %v", err)
	}
	if _, err := p.Identity(t.Context()); !errors.Is(err, ErrNoIdentity) {
		t.Fatalf("identity after refusal: %v", err)
	}
	if _, err := Register(t.Context(), p, RegisterOptions{Address: "carol@a.test", Server: s.Addr, CAFile: s.CAFile}); err != nil {
		t.Fatal(err)
	}

	closed := servertest.Start(t, servertest.Options{Domain: "c.test", Registration: server.RegistrationClosed})
	q, err := OpenProfile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	_, err = Register(t.Context(), q, RegisterOptions{Address: "dan@c.test", Server: closed.Addr, CAFile: closed.CAFile})
	if !errors.Is(err, wire.ErrRegistrationClosed) {
		t.Fatalf("register on a closed server: %v", err)
	}
}

// A registration resumed with a corrected server address keeps the
// corrected address: the finished profile connects with it.
func TestRegisterResumeKeepsCorrectedServer(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	p, err := OpenProfile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	// Saved keys, then an attempt at a wrong address: what a first
	// `xchat register` with a mistyped --server leaves behind.
	wrong := RegisterOptions{Address: "alice@a.test", Server: "127.0.0.1:1", CAFile: s.CAFile}
	id, err := newIdentity("alice@a.test", wrong)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.saveIdentity(t.Context(), id); err != nil {
		t.Fatal(err)
	}
	if _, err := Register(t.Context(), p, RegisterOptions{Address: "alice@a.test", Server: s.Addr, CAFile: s.CAFile}); err != nil {
		t.Fatalf("resume with the right server: %v", err)
	}
	got, err := p.Identity(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got.Server != s.Addr {
		t.Fatalf("profile keeps server %q, want the corrected %q", got.Server, s.Addr)
	}
	cl, err := Connect(t.Context(), p)
	if err != nil {
		t.Fatalf("connect after a corrected resume: %v", err)
	}
	cl.Close()
}
