package server_test

import (
	"bytes"
	"testing"

	"github.com/xchat-im/xchat/server/daemon"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// The embedded store copied into PostgreSQL keeps accounts, devices, key
// packages, waiting envelopes and finished blobs: after the copy, a server
// on PostgreSQL delivers what waited, hands out the key packages and serves
// the blob.
func TestCopyToPostgres(t *testing.T) {
	t.Parallel()
	db := servertest.PostgresURL(t)
	if err := daemon.Migrate(t.Context(), db); err != nil {
		t.Fatal(err)
	}
	s := servertest.Start(t, servertest.Options{})
	ra, rb := servertest.Dial(t, s), servertest.Dial(t, s)
	alice, bob := servertest.NewDevice(t, "alice@a.test"), servertest.NewDevice(t, "bob@a.test")
	if err := ra.Register(alice, nil); err != nil {
		t.Fatal(err)
	}
	if err := rb.Register(bob, nil); err != nil {
		t.Fatal(err)
	}
	if err := rb.Request(&wire.PublishKeyPackages{OneTime: [][]byte{[]byte("kp1")}, LastResort: []byte("last")}, &wire.PublishKeyPackagesOK{}); err != nil {
		t.Fatal(err)
	}
	env := wire.Envelope{ID: servertest.RandomID(), To: wire.Mailbox{Address: "bob@a.test", Device: 1}, Sealed: servertest.SealedOfLen(512)}
	var sent wire.SendOK
	if err := ra.Request(&wire.Send{Envelopes: []wire.Envelope{env}}, &sent); err != nil || sent.Results[0] != 0 {
		t.Fatalf("send: %v %v", err, sent.Results)
	}
	up := &blobClient{t: t, r: ra, ctx: servertest.Context(t)}
	blob := randomBlob(wire.BlobPartSize + 77)
	blobID := up.upload(blob)
	up.create(wire.MinBlobSize) // unfinished: not copied
	s.Stop()
	n, blobs, err := daemon.CopyToPostgres(t.Context(), s.Data, db, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n < 6 || blobs != 1 {
		t.Fatalf("copied %d records and %d blobs, want at least 6 and 1", n, blobs)
	}

	// The same domain, data directory (keys) and certificate, now on
	// PostgreSQL.
	pg := servertest.Start(t, servertest.Options{DB: db, Data: s.Data, CADir: s.CADir()})
	rb2 := servertest.Dial(t, pg)
	if err := rb2.Authenticate(bob); err != nil {
		t.Fatalf("bob authenticates after the copy: %v", err)
	}
	st, err := rb2.QC.AcceptUniStream(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	p, err := wire.ReadFrame(st, wire.MaxFrame)
	if err != nil {
		t.Fatal(err)
	}
	f, err := wire.DecodePush(p)
	if err != nil {
		t.Fatal(err)
	}
	d, ok := f.(*wire.Deliver)
	if !ok || len(d.Deliveries) != 1 || !bytes.Equal(d.Deliveries[0].ID, env.ID) || !bytes.Equal(d.Deliveries[0].Sealed, env.Sealed) {
		t.Fatalf("after the copy bob got %+v", f)
	}
	ra2 := servertest.Dial(t, pg)
	if err := ra2.Authenticate(alice); err != nil {
		t.Fatal(err)
	}
	var kp wire.ClaimKeyPackageOK
	if err := ra2.Request(&wire.ClaimKeyPackage{Address: "bob@a.test", Device: 1}, &kp); err != nil || string(kp.KeyPackage) != "kp1" || kp.LastResort {
		t.Fatalf("claim after the copy: %v %+v", err, kp)
	}
	if err := ra2.Request(&wire.ClaimKeyPackage{Address: "bob@a.test", Device: 1}, &kp); err != nil || string(kp.KeyPackage) != "last" || !kp.LastResort {
		t.Fatalf("claim the last resort after the copy: %v %+v", err, kp)
	}
	reader := &blobClient{t: t, r: rb2, ctx: servertest.Context(t)}
	if got := reader.download("a.test", blobID); !bytes.Equal(got, blob) {
		t.Fatal("the blob read after the copy differs")
	}
}
