package client

import (
	"database/sql"
	"path/filepath"
	"testing"
)

// profileSchemaV1 is the profile format 1, frozen: the upgrade test must
// not follow later changes.
const profileSchemaV1 = `
CREATE TABLE identity (id INTEGER PRIMARY KEY CHECK (id = 1), address TEXT NOT NULL, device INTEGER NOT NULL,
	server TEXT NOT NULL, ca_file TEXT NOT NULL, sig_seed BLOB NOT NULL, hpke_key BLOB NOT NULL, token BLOB NOT NULL, state INTEGER NOT NULL);
CREATE TABLE contacts (address TEXT PRIMARY KEY, token BLOB);
CREATE TABLE device_lists (address TEXT PRIMARY KEY, devices BLOB NOT NULL, fetched_at_ms INTEGER NOT NULL);
CREATE TABLE messages (id BLOB PRIMARY KEY, sender TEXT NOT NULL, sender_device INTEGER NOT NULL, recipient TEXT NOT NULL,
	text TEXT NOT NULL, sent_at_ms INTEGER NOT NULL, received_at_ms INTEGER NOT NULL, lane INTEGER NOT NULL, stored_at_ms INTEGER NOT NULL);
PRAGMA user_version = 1;
`

// A format-1 profile (direct-content messages, no groups) opens as format
// 2 with its messages kept.
func TestProfileUpgradeFromFormat1(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(dir, ProfileFile))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(profileSchemaV1 + `INSERT INTO messages VALUES (x'00112233445566778899aabbccddeeff', 'alice@a.test', 1, 'bob@a.test', 'old text', 1, 2, 0, 3);`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	p, err := OpenProfile(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	var v int
	if err := p.db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != profileVersion {
		t.Fatalf("format %d, %v", v, err)
	}
	ms, err := p.Messages(t.Context())
	if err != nil || len(ms) != 1 || ms[0].Text != "old text" || ms[0].From != "alice@a.test" || !ms[0].Direct || ms[0].Type != 1 {
		t.Fatalf("messages %+v, %v", ms, err)
	}
	if gs, err := p.groups(t.Context()); err != nil || len(gs) != 0 {
		t.Fatalf("groups %v, %v", gs, err)
	}
}
