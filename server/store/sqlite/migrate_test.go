package sqlite_test

import (
	"bytes"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/sqlite"
)

// schemaV1 is the schema of version 1, exactly as the first release of this
// package created it (git show c5bb686:server/store/sqlite/schema.go).
const schemaV1 = `
CREATE TABLE IF NOT EXISTS accounts (
	address           TEXT    PRIMARY KEY,
	created_at_ms     INTEGER NOT NULL,
	request_lane_open INTEGER NOT NULL DEFAULT 1
);

CREATE TABLE IF NOT EXISTS policy_verifiers (
	address  TEXT    NOT NULL REFERENCES accounts(address) ON DELETE CASCADE,
	pos      INTEGER NOT NULL,
	verifier BLOB    NOT NULL,
	PRIMARY KEY (address, pos)
);

CREATE TABLE IF NOT EXISTS devices (
	address       TEXT    NOT NULL REFERENCES accounts(address) ON DELETE CASCADE,
	id            INTEGER NOT NULL,
	sig_key       BLOB    NOT NULL,
	kem           INTEGER NOT NULL,
	hpke_key      BLOB    NOT NULL,
	created_at_ms INTEGER NOT NULL,
	mb_count      INTEGER NOT NULL DEFAULT 0,
	mb_bytes      INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (address, id)
);

CREATE TABLE IF NOT EXISTS invites (
	hash       BLOB    PRIMARY KEY,
	expires_ms INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS key_packages (
	id      INTEGER PRIMARY KEY,
	address TEXT    NOT NULL,
	device  INTEGER NOT NULL,
	data    BLOB    NOT NULL,
	FOREIGN KEY (address, device) REFERENCES devices(address, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS key_packages_by_device ON key_packages(address, device, id);

CREATE TABLE IF NOT EXISTS last_resort (
	address TEXT    NOT NULL,
	device  INTEGER NOT NULL,
	data    BLOB    NOT NULL,
	PRIMARY KEY (address, device),
	FOREIGN KEY (address, device) REFERENCES devices(address, id) ON DELETE CASCADE
);

CREATE TABLE IF NOT EXISTS mailbox (
	seq            INTEGER PRIMARY KEY AUTOINCREMENT,
	address        TEXT    NOT NULL,
	device         INTEGER NOT NULL,
	envelope_id    BLOB    NOT NULL,
	lane           INTEGER NOT NULL,
	received_at_ms INTEGER NOT NULL,
	size           INTEGER NOT NULL,
	sealed         BLOB    NOT NULL,
	UNIQUE (address, device, envelope_id),
	FOREIGN KEY (address, device) REFERENCES devices(address, id) ON DELETE CASCADE
);
CREATE INDEX IF NOT EXISTS mailbox_by_box ON mailbox(address, device, seq);
CREATE INDEX IF NOT EXISTS mailbox_by_received ON mailbox(received_at_ms);

`

// createV1 creates a database of schema version 1 at path, as the first
// release left it: an account alice with one device, two envelopes in her
// mailbox, key packages and an invite.
func createV1(t *testing.T, path string, received time.Time) {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range []string{
		`PRAGMA journal_mode = WAL`,
		schemaV1,
		`PRAGMA user_version = 1`,
		`INSERT INTO accounts (address, created_at_ms, request_lane_open) VALUES ('alice@example.org', 1700000000000, 0)`,
		`INSERT INTO policy_verifiers (address, pos, verifier) VALUES ('alice@example.org', 0, x'0101010101010101010101010101010101010101010101010101010101010101')`,
		`INSERT INTO devices (address, id, sig_key, kem, hpke_key, created_at_ms, mb_count, mb_bytes)
			VALUES ('alice@example.org', 1, zeroblob(32), 32, zeroblob(32), 1700000000000, 2, 7)`,
		`INSERT INTO invites (hash, expires_ms) VALUES (x'09', 99999999999999)`,
		`INSERT INTO key_packages (address, device, data) VALUES ('alice@example.org', 1, 'kp-1'), ('alice@example.org', 1, 'kp-2')`,
		`INSERT INTO last_resort (address, device, data) VALUES ('alice@example.org', 1, 'kp-lr')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%.40s: %v", q, err)
		}
	}
	for i, sealed := range []string{"one", "four"} {
		id := envelope(store.Mailbox{}, i).ID
		if _, err := db.Exec(`INSERT INTO mailbox (address, device, envelope_id, lane, received_at_ms, size, sealed)
			VALUES ('alice@example.org', 1, ?, ?, ?, ?, ?)`,
			id[:], i, received.UnixMilli(), len(sealed), []byte(sealed)); err != nil {
			t.Fatal(err)
		}
	}
}

// userVersion returns the schema version of the database at path.
func userVersion(t *testing.T, path string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

// schemaOf returns the DDL of every table and index of the database at path.
func schemaOf(t *testing.T, path string) map[string]string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name, coalesce(sql, '') FROM sqlite_master`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := make(map[string]string)
	for rows.Next() {
		var name, ddl string
		if err := rows.Scan(&name, &ddl); err != nil {
			t.Fatal(err)
		}
		out[name] = strings.Join(strings.Fields(ddl), " ")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestUpgradeFromV1(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "store.db")
	received := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	createV1(t, path, received)
	if v := userVersion(t, path); v != 1 {
		t.Fatalf("fixture has schema version %d", v)
	}

	s, err := sqlite.Open(t.Context(), path, store.DefaultLimits(), nil)
	if err != nil {
		t.Fatalf("Open of a version 1 database: %v", err)
	}
	ctx := t.Context()
	alice := store.Mailbox{Address: "alice@example.org", Device: 1}

	// The data of version 1 is kept.
	devs, err := s.Devices(ctx, alice.Address)
	if err != nil || len(devs) != 1 || devs[0].KEM != 32 || !devs[0].CreatedAt.Equal(time.UnixMilli(1700000000000)) {
		t.Fatalf("Devices = %+v, %v", devs, err)
	}
	p, err := s.Policy(ctx, alice.Address)
	if err != nil || p.RequestLaneOpen || len(p.Verifiers) != 1 || !bytes.Equal(p.Verifiers[0], bytes.Repeat([]byte{1}, 32)) {
		t.Fatalf("Policy = %+v, %v", p, err)
	}
	got, err := s.Pending(ctx, alice, 0, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("Pending = %d envelopes, %v; want 2", len(got), err)
	}
	for i, want := range []string{"one", "four"} {
		if got[i].ID != envelope(alice, i).ID || string(got[i].Sealed) != want ||
			got[i].Lane != store.Lane(i) || !got[i].ReceivedAt.Equal(received) {
			t.Fatalf("envelope %d read back as %+v", i, got[i])
		}
	}
	kp, lr, err := s.ClaimKeyPackage(ctx, alice)
	if err != nil || lr || string(kp) != "kp-1" {
		t.Fatalf("ClaimKeyPackage = %q, %v, %v", kp, lr, err)
	}
	// The mailbox counters of version 1 still count: with a limit of 3
	// envelopes, one more fits.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, store.Limits{MailboxMaxEnvelopes: 3})
	res, err := s.Enqueue(ctx, []store.Envelope{envelope(alice, 2), envelope(alice, 3)})
	if err != nil || res[0] != nil || !errors.Is(res[1], store.ErrLimit) {
		t.Fatalf("Enqueue = %v, %v; want nil, ErrLimit", res, err)
	}
	// The mailbox's own counter goes on after the shared one of before.
	if all, err := s.Pending(ctx, alice, 0, 10); err != nil || len(all) != 3 || all[2].Seq <= got[1].Seq {
		t.Fatalf("after the upgrade, Pending = %+v, %v; want the new envelope after seq %d", all, err, got[1].Seq)
	}
	dev := store.Device{Address: "bob@example.org", ID: 1, SigKey: make([]byte, 32), HPKEKey: make([]byte, 32)}
	if err := s.CreateAccount(ctx, dev, []byte{9}); err != nil {
		t.Fatalf("CreateAccount with the invite of version 1: %v", err)
	}

	// And the outbound queue of version 2 works.
	out := store.Outbound{
		Domain:   "b.example",
		Envelope: store.Envelope{ID: envelope(alice, 9).ID, To: store.Mailbox{Address: "bob@b.example", Device: 1}, Sealed: []byte("sealed"), ReceivedAt: received},
		Token:    []byte("token"),
		From:     alice,
	}
	if err := s.EnqueueOutbound(ctx, []store.Outbound{out}); err != nil {
		t.Fatalf("EnqueueOutbound after the upgrade: %v", err)
	}
	claimed, err := s.ClaimOutbound(ctx, "b.example", time.Now(), time.Minute, 10)
	if err != nil || len(claimed) != 1 || claimed[0].Envelope.ID != out.Envelope.ID || string(claimed[0].Token) != "token" {
		t.Fatalf("ClaimOutbound = %+v, %v", claimed, err)
	}
	// And linked devices of version 3: alice's next device is 2.
	t0 := time.Now()
	link := bytes.Repeat([]byte{7}, 32)
	if err := s.CreateLink(ctx, alice.Address, link, t0, t0.Add(10*time.Minute)); err != nil {
		t.Fatalf("CreateLink after the upgrade: %v", err)
	}
	linked := store.Device{Address: alice.Address, SigKey: make([]byte, 32), HPKEKey: make([]byte, 32)}
	if id, err := s.LinkDevice(ctx, linked, link, t0); err != nil || id != 2 {
		t.Fatalf("LinkDevice after the upgrade = %d, %v; want device 2", id, err)
	}
	// And the blob store of version 6.
	b := store.Blob{ID: store.BlobID{1}, Owner: alice.Address, Size: 541, CreatedAt: t0, Expires: t0.Add(time.Hour)}
	if err := s.CreateBlob(ctx, b, store.BlobLimits{}); err != nil {
		t.Fatalf("CreateBlob after the upgrade: %v", err)
	}
	if got, err := s.PutPart(ctx, b.Owner, b.ID, 0, make([]byte, 541), t0); err != nil || got.Received != 541 {
		t.Fatalf("PutPart after the upgrade = %+v, %v", got, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	if v := userVersion(t, path); v != 6 {
		t.Fatalf("after the upgrade, schema version %d, want 6", v)
	}
	// The upgraded schema is the one a new database gets.
	fresh := filepath.Join(dir, "fresh.db")
	if err := open(t, fresh, store.DefaultLimits()).Close(); err != nil {
		t.Fatal(err)
	}
	upgraded, created := schemaOf(t, path), schemaOf(t, fresh)
	for name, ddl := range created {
		if upgraded[name] != ddl {
			t.Errorf("%s: upgraded\n  %s\nnew\n  %s", name, upgraded[name], ddl)
		}
	}
	if len(upgraded) != len(created) {
		t.Errorf("upgraded database has %d schema objects, a new one %d", len(upgraded), len(created))
	}
	for _, name := range []string{"outbound_due", "link_tokens", "link_tokens_by_account", "mailbox_by_origin"} {
		if _, ok := created[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
}

// TestOpenRefusesNextSchema checks that version 7 is refused, and that the
// refusal changes nothing.
func TestOpenRefusesNextSchema(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "store.db")
	if err := open(t, path, store.DefaultLimits()).Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`PRAGMA user_version = 7`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	s, err := sqlite.Open(t.Context(), path, store.DefaultLimits(), nil)
	if err == nil {
		s.Close()
		t.Fatal("Open of a database with schema version 7 succeeded")
	}
	if !strings.Contains(err.Error(), "newer") {
		t.Fatalf("Open: %v; want an error about a newer schema", err)
	}
	if v := userVersion(t, path); v != 7 {
		t.Fatalf("after a refused Open, schema version %d", v)
	}
}
