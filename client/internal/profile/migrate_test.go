package profile

import (
	"bytes"
	"database/sql"
	"encoding/hex"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// schemaFormat2 is the profile schema as the client wrote it before this
// package existed (format 2, user_version 2), frozen: the migration tests
// must not follow later changes.
const schemaFormat2 = `
CREATE TABLE IF NOT EXISTS identity (id INTEGER PRIMARY KEY CHECK (id = 1), address TEXT NOT NULL, device INTEGER NOT NULL,
	server TEXT NOT NULL, ca_file TEXT NOT NULL, sig_seed BLOB NOT NULL, hpke_key BLOB NOT NULL, token BLOB NOT NULL, state INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (address TEXT PRIMARY KEY, token BLOB);
CREATE TABLE IF NOT EXISTS device_lists (address TEXT PRIMARY KEY, devices BLOB NOT NULL, fetched_at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS messages (id BLOB PRIMARY KEY, sender TEXT NOT NULL, sender_device INTEGER NOT NULL, recipient TEXT NOT NULL,
	text TEXT NOT NULL, sent_at_ms INTEGER NOT NULL, received_at_ms INTEGER NOT NULL, lane INTEGER NOT NULL, stored_at_ms INTEGER NOT NULL,
	group_id BLOB, msg_id BLOB, content_type INTEGER NOT NULL DEFAULT 1, ref BLOB, shown INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS groups (id BLOB PRIMARY KEY, kind INTEGER NOT NULL, name TEXT NOT NULL, peer TEXT NOT NULL, state BLOB NOT NULL,
	version INTEGER NOT NULL, active INTEGER NOT NULL, created_at_ms INTEGER NOT NULL, inviter TEXT NOT NULL DEFAULT '',
	joined_epoch INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS groups_peer ON groups (peer, id);
CREATE TABLE IF NOT EXISTS key_packages (ref BLOB PRIMARY KEY, bundle BLOB NOT NULL, last_resort INTEGER NOT NULL,
	created_at_ms INTEGER NOT NULL, used_at_ms INTEGER);
CREATE TABLE IF NOT EXISTS held_mls (envelope_id BLOB PRIMARY KEY, group_id BLOB NOT NULL, sender TEXT NOT NULL,
	sender_device INTEGER NOT NULL, sender_key BLOB NOT NULL, payload BLOB NOT NULL, received_at_ms INTEGER NOT NULL, lane INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS held_mls_group ON held_mls (group_id);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, payload BLOB NOT NULL, targets BLOB NOT NULL,
	created_at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS fragments (hash BLOB NOT NULL, sender TEXT NOT NULL, sender_device INTEGER NOT NULL, sender_key BLOB NOT NULL,
	idx INTEGER NOT NULL, count INTEGER NOT NULL, data BLOB NOT NULL, received_at_ms INTEGER NOT NULL, lane INTEGER NOT NULL,
	PRIMARY KEY (hash, sender, sender_device, idx));
CREATE TABLE IF NOT EXISTS processed (envelope_id BLOB PRIMARY KEY, at_ms INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS own_devices (device INTEGER PRIMARY KEY, sig_key BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS links (token BLOB PRIMARY KEY, secret BLOB NOT NULL, device INTEGER NOT NULL, expires_at_ms INTEGER NOT NULL,
	role INTEGER NOT NULL);
PRAGMA user_version = 2;
`

// schemaFormat1 is the profile format 1 (direct-content messages, no
// groups), frozen.
const schemaFormat1 = `
CREATE TABLE identity (id INTEGER PRIMARY KEY CHECK (id = 1), address TEXT NOT NULL, device INTEGER NOT NULL,
	server TEXT NOT NULL, ca_file TEXT NOT NULL, sig_seed BLOB NOT NULL, hpke_key BLOB NOT NULL, token BLOB NOT NULL, state INTEGER NOT NULL);
CREATE TABLE contacts (address TEXT PRIMARY KEY, token BLOB);
CREATE TABLE device_lists (address TEXT PRIMARY KEY, devices BLOB NOT NULL, fetched_at_ms INTEGER NOT NULL);
CREATE TABLE messages (id BLOB PRIMARY KEY, sender TEXT NOT NULL, sender_device INTEGER NOT NULL, recipient TEXT NOT NULL,
	text TEXT NOT NULL, sent_at_ms INTEGER NOT NULL, received_at_ms INTEGER NOT NULL, lane INTEGER NOT NULL, stored_at_ms INTEGER NOT NULL);
PRAGMA user_version = 1;
`

// writeOld makes a profile file with an older schema and data, as the
// code of that time wrote it.
func writeOld(t *testing.T, schema, data string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "profile.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(schema + data); err != nil {
		t.Fatal(err)
	}
	return path
}

// A profile of the format the client wrote before (format 2), holding a
// row in every table, opens at the latest version with every row readable
// through the store.
func TestMigrateFromCurrentSchema(t *testing.T) {
	t.Parallel()
	devs, _ := wire.Marshal([]wire.DeviceInfo{{ID: 2}})
	targets, _ := wire.Marshal([]wire.Mailbox{{Address: "bob@a.test", Device: 2}})
	path := writeOld(t, schemaFormat2, `
INSERT INTO identity VALUES (1, 'alice@a.test', 1, '127.0.0.1:4433', '/ca.pem', x'`+strings.Repeat("01", 32)+`', x'0203', x'04', 2);
INSERT INTO contacts VALUES ('bob@a.test', x'05'), ('carol@a.test', NULL);
INSERT INTO device_lists VALUES ('bob@a.test', x'`+hex.EncodeToString(devs)+`', 7);
INSERT INTO groups VALUES (x'aa', 1, '', 'bob@a.test', x'0a0b', 4, 1, 1000, 'bob@a.test/2/0c', 3);
INSERT INTO messages VALUES (x'00112233445566778899aabbccddeeff', 'bob@a.test', 2, 'alice@a.test', 'hi', 1, 2, 0, 3,
	x'aa', x'`+strings.Repeat("cd", 32)+`', 1, NULL, 0);
INSERT INTO key_packages VALUES (x'f0', x'f1', 1, 5, NULL);
INSERT INTO held_mls VALUES (x'e0', x'bb', 'bob@a.test', 2, x'e1', x'e2', 9000000000000, 1);
INSERT INTO outbox (payload, targets, created_at_ms) VALUES (x'd0', x'`+hex.EncodeToString(targets)+`', 6);
INSERT INTO fragments VALUES (x'c0', 'bob@a.test', 2, x'c1', 0, 2, x'c2', 9000000000000, 0);
INSERT INTO processed VALUES (x'b0', 9000000000000);
INSERT INTO own_devices VALUES (2, x'a1');
INSERT INTO links VALUES (x'90', x'91', 1, 9000000000000, 1);
`)
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if v := userVersion(t, s); v != len(migrations) {
		t.Fatalf("schema version %d after migrating, want %d", v, len(migrations))
	}
	view(t, s, func(tx *Tx) error {
		id, err := tx.Identity()
		if err != nil || id.Address != "alice@a.test" || id.CAFile != "/ca.pem" || len(id.SigSeed) != 32 || !bytes.Equal(id.Token, []byte{4}) || id.State != 2 {
			t.Fatalf("identity %+v, %v", id, err)
		}
		if tok, err := tx.ContactToken("bob@a.test"); err != nil || !bytes.Equal(tok, []byte{5}) {
			t.Fatalf("bob's token %x, %v", tok, err)
		}
		if tok, err := tx.ContactToken("carol@a.test"); err != nil || tok != nil {
			t.Fatalf("carol's revoked token %x, %v", tok, err)
		}
		if d, err := tx.DeviceList("bob@a.test"); err != nil || len(d) != 1 || d[0].ID != 2 {
			t.Fatalf("device list %+v, %v", d, err)
		}
		g, err := tx.DirectGroup("bob@a.test")
		if err != nil || !bytes.Equal(g.ID, []byte{0xaa}) || g.Version != 4 || !g.Active || g.JoinedEpoch != 3 || g.Inviter != "bob@a.test/2/0c" {
			t.Fatalf("group %+v, %v", g, err)
		}
		ms, err := tx.Messages(true)
		if err != nil || len(ms) != 1 || ms[0].Text != "hi" || ms[0].GroupKind != wire.GroupKindDirect || ms[0].MessageID[0] != 0xcd || ms[0].File != nil {
			t.Fatalf("unshown messages %+v, %v", ms, err)
		}
		if from, err := tx.MessageSender([]byte{0xaa}, bytes.Repeat([]byte{0xcd}, 32)); err != nil || from != "bob@a.test" {
			t.Fatalf("message sender %q, %v", from, err)
		}
		if b, err := tx.KeyPackage([]byte{0xf0}); err != nil || !bytes.Equal(b, []byte{0xf1}) {
			t.Fatalf("key package %x, %v", b, err)
		}
		if last, err := tx.HasLastResort(); err != nil || !last {
			t.Fatalf("last resort %v, %v", last, err)
		}
		if h, err := tx.HeldMessages([]byte{0xbb}); err != nil || len(h) != 1 || h[0].SenderDevice != 2 || h[0].Lane != 1 {
			t.Fatalf("held %+v, %v", h, err)
		}
		if o, err := tx.Outbox(); err != nil || len(o) != 1 || o[0].Targets[0].Device != 2 {
			t.Fatalf("outbox %+v, %v", o, err)
		}
		if f, err := tx.Fragments([]byte{0xc0}, "bob@a.test", 2); err != nil || len(f) != 1 || f[0].Count != 2 {
			t.Fatalf("fragments %+v, %v", f, err)
		}
		if seen, err := tx.Processed([]byte{0xb0}); err != nil || !seen {
			t.Fatalf("processed %v, %v", seen, err)
		}
		if k, err := tx.OwnDeviceKey(2); err != nil || !bytes.Equal(k, []byte{0xa1}) {
			t.Fatalf("own device %x, %v", k, err)
		}
		if l, err := tx.JoinLink(); err != nil || !bytes.Equal(l.Secret, []byte{0x91}) || l.Device != 1 {
			t.Fatalf("join link %+v, %v", l, err)
		}
		return nil
	})
	// The store writes to the migrated file as to a new one.
	update(t, s, func(tx *Tx) error {
		_, err := tx.InsertMessage(&Message{ID: [16]byte{1}, Sender: "bob@a.test", Group: []byte{0xaa}, SentAt: time.Now()})
		return err
	})
}

// A format-1 profile keeps its messages, which count as shown and as
// direct-content text.
func TestMigrateFromFormat1(t *testing.T) {
	t.Parallel()
	path := writeOld(t, schemaFormat1,
		`INSERT INTO messages VALUES (x'00112233445566778899aabbccddeeff', 'alice@a.test', 1, 'bob@a.test', 'old text', 1, 2, 0, 3);`)
	s, err := Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	view(t, s, func(tx *Tx) error {
		ms, err := tx.Messages(false)
		if err != nil || len(ms) != 1 || ms[0].Text != "old text" || ms[0].Sender != "alice@a.test" || ms[0].GroupKind != wire.GroupKindDirect || ms[0].Type != 1 {
			t.Fatalf("messages %+v, %v", ms, err)
		}
		if un, err := tx.Messages(true); err != nil || len(un) != 0 {
			t.Fatalf("unshown %+v, %v", un, err)
		}
		if gs, err := tx.Groups(); err != nil || len(gs) != 0 {
			t.Fatalf("groups %+v, %v", gs, err)
		}
		return nil
	})
}

// The migrations run in one transaction: one that fails leaves the file
// as it was, at its old version.
func TestMigrationFailureChangesNothing(t *testing.T) {
	t.Parallel()
	// An object already named like the index migration 3 makes.
	path := writeOld(t, schemaFormat2, `CREATE TABLE messages_ref (x);`)
	if _, err := Open(t.Context(), path); err == nil {
		t.Fatal("opened a profile whose migration failed")
	}
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var v int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&v); err != nil || v != 2 {
		t.Fatalf("version %d after a failed migration, want 2 (%v)", v, err)
	}
}

// A profile of a later version than this code knows is refused.
func TestNewerFormatRefused(t *testing.T) {
	t.Parallel()
	path := writeOld(t, schemaFormat2, `PRAGMA user_version = 99;`)
	_, err := Open(t.Context(), path)
	if !errors.Is(err, errNewer) {
		t.Fatalf("a format-99 profile: %v", err)
	}
}
