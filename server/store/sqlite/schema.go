package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// schemaVersion is the user_version this package writes and understands.
const schemaVersion = 6

// schema creates every table and index of schema version 1. Each statement
// is idempotent. Later versions add to it with the steps in upgrades.
//
// Times are integer milliseconds since the Unix epoch. Each device row
// carries the counters of its mailbox (mb_count, mb_bytes: envelopes and
// sealed bytes waiting), which every statement that adds or removes mailbox
// rows updates in the same transaction. (Triggers would do the same, but a
// statement that fires one needs a statement journal, which doubled the CPU
// time of Enqueue.)
const schema = `
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

// upgrades[v] takes a database from schema version v to v+1. A step runs
// exactly once, in the transaction of migrate that records the new version.
// A new database runs schema and then every step.
var upgrades = map[int]string{
	// Version 2: the outbound queue (outbound.go). A row is due when
	// next_try_ms is not after the claimer's clock; a claim leases it by
	// moving next_try_ms forward. The rows of a domain are claimed in seq
	// order, and OutboundDomains reads the earliest next_try_ms of each
	// domain from the same index.
	1: `
CREATE TABLE IF NOT EXISTS outbound (
	seq          INTEGER PRIMARY KEY AUTOINCREMENT,
	domain       TEXT    NOT NULL,
	to_address   TEXT    NOT NULL,
	to_device    INTEGER NOT NULL,
	envelope_id  BLOB    NOT NULL,
	token        BLOB,
	sealed       BLOB    NOT NULL,
	from_address TEXT    NOT NULL,
	from_device  INTEGER NOT NULL,
	queued_at_ms INTEGER NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_try_ms  INTEGER NOT NULL,
	UNIQUE (to_address, to_device, envelope_id)
);
CREATE INDEX IF NOT EXISTS outbound_due ON outbound(domain, next_try_ms, seq);
`,
	// Version 3: linked devices (link.go). accounts.last_device is the
	// highest device identifier ever assigned in the account, so that the
	// identifiers of removed devices are never reused; link_tokens holds the
	// SHA-256 hashes of unused link tokens.
	2: `
ALTER TABLE accounts ADD COLUMN last_device INTEGER NOT NULL DEFAULT 1;
UPDATE accounts SET last_device = (SELECT max(id) FROM devices WHERE devices.address = accounts.address)
	WHERE EXISTS (SELECT 1 FROM devices WHERE devices.address = accounts.address);
CREATE TABLE IF NOT EXISTS link_tokens (
	hash       BLOB    PRIMARY KEY,
	address    TEXT    NOT NULL REFERENCES accounts(address) ON DELETE CASCADE,
	expires_ms INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS link_tokens_by_account ON link_tokens(address, expires_ms);
`,
	// Version 4: the origin domain of relayed envelopes, so that one
	// domain's envelopes hold at most a share of a mailbox (mailbox.go);
	// '' for envelopes of local devices and notices, which the partial
	// index leaves out.
	3: `
ALTER TABLE mailbox ADD COLUMN origin TEXT NOT NULL DEFAULT '';
CREATE INDEX IF NOT EXISTS mailbox_by_origin ON mailbox(address, device, origin, size) WHERE origin <> '';
`,
	// Version 5: no counter shared across mailboxes (spec/16-security.md
	// section 16.11). devices.mb_seq is the last sequence number its mailbox
	// assigned; it starts above every number the shared counter gave. The
	// mailbox table is rebuilt so that seq, which counts per mailbox, is no
	// longer its rowid; id is the rowid, which only addresses a row.
	4: `
ALTER TABLE devices ADD COLUMN mb_seq INTEGER NOT NULL DEFAULT 0;
UPDATE devices SET mb_seq = coalesce((SELECT seq FROM sqlite_sequence WHERE name = 'mailbox'), 0);
CREATE TABLE mailbox_v4 (
	id             INTEGER PRIMARY KEY,
	address        TEXT    NOT NULL,
	device         INTEGER NOT NULL,
	seq            INTEGER NOT NULL,
	envelope_id    BLOB    NOT NULL,
	lane           INTEGER NOT NULL,
	received_at_ms INTEGER NOT NULL,
	size           INTEGER NOT NULL,
	sealed         BLOB    NOT NULL,
	origin         TEXT    NOT NULL DEFAULT '',
	UNIQUE (address, device, envelope_id),
	FOREIGN KEY (address, device) REFERENCES devices(address, id) ON DELETE CASCADE
);
INSERT INTO mailbox_v4 (id, address, device, seq, envelope_id, lane, received_at_ms, size, sealed, origin)
	SELECT seq, address, device, seq, envelope_id, lane, received_at_ms, size, sealed, origin FROM mailbox;
DROP TABLE mailbox;
ALTER TABLE mailbox_v4 RENAME TO mailbox;
CREATE UNIQUE INDEX mailbox_by_box ON mailbox(address, device, seq);
CREATE INDEX mailbox_by_received ON mailbox(received_at_ms);
CREATE INDEX IF NOT EXISTS mailbox_by_origin ON mailbox(address, device, origin, size) WHERE origin <> '';
`,
	// Version 6: the blob store (blobs.go). A blob's data is a file of its
	// own outside the database; blobs holds its metadata, with prefix the
	// number of parts from the first that were all written, and blob_parts
	// the index of every part written and synced to the file.
	// blob_deletions lists the deleted blobs whose files may still exist.
	5: `
CREATE TABLE IF NOT EXISTS blobs (
	id            BLOB    PRIMARY KEY,
	owner         TEXT    NOT NULL,
	size          INTEGER NOT NULL,
	created_at_ms INTEGER NOT NULL,
	expires_ms    INTEGER NOT NULL,
	complete      INTEGER NOT NULL DEFAULT 0,
	prefix        INTEGER NOT NULL DEFAULT 0
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS blobs_by_owner ON blobs(owner, expires_ms);
CREATE INDEX IF NOT EXISTS blobs_by_expiry ON blobs(expires_ms);
CREATE TABLE IF NOT EXISTS blob_parts (
	blob_id BLOB    NOT NULL REFERENCES blobs(id) ON DELETE CASCADE,
	idx     INTEGER NOT NULL,
	PRIMARY KEY (blob_id, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blob_deletions (
	id BLOB PRIMARY KEY
) WITHOUT ROWID;
`,
}

// migrate checks the database's schema version, creates the schema or
// upgrades it in place to schemaVersion, all in one transaction, and returns
// the version the database had before (0 for a new one). It refuses a
// database written by a newer version of this package.
func migrate(ctx context.Context, conn *sql.Conn) (from int, err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("sqlite: schema: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var v int
	if err := tx.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("sqlite: schema: read version: %w", err)
	}
	if v < 0 {
		return v, fmt.Errorf("sqlite: schema: database has invalid schema version %d", v)
	}
	if v > schemaVersion {
		return v, fmt.Errorf("sqlite: schema: database has schema version %d, newer than the %d this build supports", v, schemaVersion)
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return v, fmt.Errorf("sqlite: schema: create: %w", err)
	}
	for step := max(v, 1); step < schemaVersion; step++ {
		if _, err := tx.ExecContext(ctx, upgrades[step]); err != nil {
			return v, fmt.Errorf("sqlite: schema: upgrade from version %d: %w", step, err)
		}
	}
	if v < schemaVersion {
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, schemaVersion)); err != nil {
			return v, fmt.Errorf("sqlite: schema: set version: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return v, fmt.Errorf("sqlite: schema: commit: %w", err)
	}
	return v, nil
}
