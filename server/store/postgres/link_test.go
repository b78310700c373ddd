package postgres_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/postgres"
)

// TestUpgradeToLinkedDevices migrates a schema of version 1 that holds an
// account to the current version: the account's next device is 2.
func TestUpgradeToLinkedDevices(t *testing.T) {
	t.Parallel()
	u := newSchema(t, false)
	ctx := t.Context()
	if err := postgres.MigrateTo(ctx, u, 1); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, u)
	if _, err := conn.Exec(ctx, `INSERT INTO accounts (address, created_at_ms) VALUES ('alice@example.org', 1);
		INSERT INTO devices (address, id, sig_key, kem, hpke_key, created_at_ms)
		VALUES ('alice@example.org', 1, '\x00', 32, '\x00', 1)`); err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(ctx, u); err != nil {
		t.Fatalf("Migrate from version 1: %v", err)
	}
	s := open(t, u, store.DefaultLimits())
	t0 := time.Now()
	hash := bytes.Repeat([]byte{7}, 32)
	if err := s.CreateLink(ctx, "alice@example.org", hash, t0, t0.Add(10*time.Minute)); err != nil {
		t.Fatalf("CreateLink after the upgrade: %v", err)
	}
	dev := store.Device{Address: "alice@example.org", SigKey: make([]byte, 32), HPKEKey: make([]byte, 32)}
	if id, err := s.LinkDevice(ctx, dev, hash, t0); err != nil || id != 2 {
		t.Fatalf("LinkDevice after the upgrade = %d, %v; want device 2", id, err)
	}
}
