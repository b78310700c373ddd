package server_test

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/quic-go/quic-go"

	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// Tests of spec/05-accounts.md sections 5.9 and 5.11.3: removing a device
// is atomic with respect to its authentications and its sender
// certificates. These belong in conformance later.

// tryRequest sends req on a new stream of qc and decodes the response into
// ok; transport failures are returned, not fatal, so that it can run in
// goroutines.
func tryRequest(ctx context.Context, qc *quic.Conn, req wire.Request, ok any) error {
	frame, err := wire.EncodeRequest(req)
	if err != nil {
		return err
	}
	st, err := qc.OpenStreamSync(ctx)
	if err != nil {
		return err
	}
	st.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := st.Write(frame); err != nil {
		return err
	}
	st.Close()
	resp, err := wire.ReadFrame(st, wire.MaxFrame)
	if err != nil {
		return err
	}
	return wire.DecodeResponse(resp, ok)
}

// refusedAsRemoved reports whether err is what a request of a removed
// device may get: unauthenticated, or its connection closed with
// device_removed.
func refusedAsRemoved(err error) bool {
	var pe *wire.Error
	if errors.As(err, &pe) {
		return pe.Code == wire.CodeUnauthenticated
	}
	var ae *quic.ApplicationError
	return errors.As(err, &ae) && ae.Remote && ae.ErrorCode == wire.CloseDeviceRemoved
}

// A device removed while it authenticates on several connections at once:
// once remove-device has answered, no connection of the device is left
// authenticated (its requests get unauthenticated or it is closed with
// device_removed) and none gets a sender certificate; a connection whose
// authenticate succeeded is closed with device_removed.
func TestRemoveDeviceRacesAuthenticate(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{Registrations: server.Rate{Burst: -1}}})
	ctx := servertest.Context(t)
	ra, _ := registered(t, s, "alice@a.test", nil)
	const rounds, conns = 60, 8
	for round := range rounds {
		rl, dev := linked(t, s, ra, "alice@a.test")
		rl.QC.CloseWithError(0, "")
		// Connections of the device, dialled and ready to authenticate.
		qcs := make([]*quic.Conn, conns)
		auths := make([][]byte, conns)
		for i := range qcs {
			r := servertest.Dial(t, s)
			qcs[i] = r.QC
			auths[i] = ed25519.Sign(dev.Sig, wire.DeviceAuthMessage(dev.Address, dev.ID, r.Exporter()))
		}
		authErr := make([]error, conns)
		var removeErr error
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range qcs {
			wg.Go(func() {
				<-start
				authErr[i] = tryRequest(ctx, qcs[i], &wire.Authenticate{Address: dev.Address, Device: dev.ID, Signature: auths[i]}, &wire.OK{})
			})
		}
		wg.Go(func() {
			<-start
			removeErr = tryRequest(ctx, ra.QC, &wire.RemoveDevice{Device: dev.ID}, &wire.OK{})
		})
		close(start)
		wg.Wait()
		if removeErr != nil {
			t.Fatalf("round %d: remove-device: %v", round, removeErr)
		}
		for i, qc := range qcs {
			var cert wire.SenderCertOK
			err := tryRequest(ctx, qc, &wire.GetSenderCert{}, &cert)
			if !refusedAsRemoved(err) {
				t.Fatalf("round %d, connection %d (authenticate: %v): get-sender-cert after the device's removal: %v; want unauthenticated or closed with device_removed",
					round, i, authErr[i], describe(err))
			}
			if authErr[i] == nil {
				closedWithin(t, qc, wire.CloseDeviceRemoved, fmt.Sprintf("round %d, connection %d authenticated", round, i))
			}
			qc.CloseWithError(0, "")
		}
	}
}

func describe(err error) string {
	if err == nil {
		return "a certificate"
	}
	return err.Error()
}

// closedWithin waits until the server closed qc and fails unless with code.
func closedWithin(t *testing.T, qc *quic.Conn, code quic.ApplicationErrorCode, what string) {
	t.Helper()
	select {
	case <-qc.Context().Done():
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: the connection of the removed device was not closed", what)
	}
	var ae *quic.ApplicationError
	if err := context.Cause(qc.Context()); !errors.As(err, &ae) || !ae.Remote || ae.ErrorCode != code {
		t.Fatalf("%s: connection closed with %v, want application error %d from the server", what, err, code)
	}
}

// Two processes share a PostgreSQL store: a device removed through one
// gets no sender certificate from the other, even before the other heard
// of the removal.
func TestRemovedDeviceGetsNoSenderCertOnSharedStore(t *testing.T) {
	t.Parallel()
	db := servertest.PostgresURL(t)
	if err := daemon.Migrate(servertest.Context(t), db); err != nil {
		t.Fatal(err)
	}
	s1 := servertest.Start(t, servertest.Options{DB: db})
	s2 := servertest.Start(t, servertest.Options{DB: db, Data: s1.Data, CADir: s1.CADir()})
	ra, _ := registered(t, s1, "alice@a.test", nil)
	ctx := servertest.Context(t)
	for round := range 10 {
		rb, dev := linked(t, s2, ra, "alice@a.test")
		if err := ra.RemoveDevice(dev.ID); err != nil {
			t.Fatal(err)
		}
		var cert wire.SenderCertOK
		if err := tryRequest(ctx, rb.QC, &wire.GetSenderCert{}, &cert); !refusedAsRemoved(err) {
			t.Fatalf("round %d: get-sender-cert on the other process after the device's removal: %v; want unauthenticated or closed with device_removed", round, describe(err))
		}
	}
}
