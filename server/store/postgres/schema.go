package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations[i] takes a database from schema version i to i+1. Each runs
// in the transaction of Migrate, which records the version it reached in
// schema_migrations.
//
// Addresses and domains are TEXT COLLATE "C": compared and ordered by bytes,
// as the SQLite backend does, and so that every transaction locks device
// rows in the same order whatever the database's collation.
var migrations = []string{
	// Version 1: everything.
	`
CREATE TABLE accounts (
	address           TEXT COLLATE "C" PRIMARY KEY,
	created_at_ms     BIGINT  NOT NULL,
	request_lane_open BOOLEAN NOT NULL DEFAULT TRUE
);

CREATE TABLE policy_verifiers (
	address  TEXT COLLATE "C" NOT NULL REFERENCES accounts (address) ON DELETE CASCADE,
	pos      INTEGER NOT NULL,
	verifier BYTEA   NOT NULL,
	PRIMARY KEY (address, pos)
);

CREATE TABLE devices (
	address       TEXT COLLATE "C" NOT NULL REFERENCES accounts (address) ON DELETE CASCADE,
	id            BIGINT  NOT NULL,
	sig_key       BYTEA   NOT NULL,
	kem           INTEGER NOT NULL,
	hpke_key      BYTEA   NOT NULL,
	created_at_ms BIGINT  NOT NULL,
	mb_count      BIGINT  NOT NULL DEFAULT 0,
	mb_bytes      BIGINT  NOT NULL DEFAULT 0,
	PRIMARY KEY (address, id)
);

CREATE TABLE invites (
	hash       BYTEA  PRIMARY KEY,
	expires_ms BIGINT NOT NULL
);

CREATE TABLE key_packages (
	id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	address TEXT COLLATE "C" NOT NULL,
	device  BIGINT NOT NULL,
	data    BYTEA  NOT NULL,
	FOREIGN KEY (address, device) REFERENCES devices (address, id) ON DELETE CASCADE
);
CREATE INDEX key_packages_by_device ON key_packages (address, device, id);

CREATE TABLE last_resort (
	address TEXT COLLATE "C" NOT NULL,
	device  BIGINT NOT NULL,
	data    BYTEA  NOT NULL,
	PRIMARY KEY (address, device),
	FOREIGN KEY (address, device) REFERENCES devices (address, id) ON DELETE CASCADE
);

CREATE TABLE mailbox (
	seq            BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	address        TEXT COLLATE "C" NOT NULL,
	device         BIGINT   NOT NULL,
	envelope_id    BYTEA    NOT NULL,
	lane           SMALLINT NOT NULL,
	received_at_ms BIGINT   NOT NULL,
	size           INTEGER  NOT NULL,
	sealed         BYTEA    NOT NULL,
	UNIQUE (address, device, envelope_id),
	FOREIGN KEY (address, device) REFERENCES devices (address, id) ON DELETE CASCADE
);
CREATE INDEX mailbox_by_box ON mailbox (address, device, seq);
CREATE INDEX mailbox_by_received ON mailbox (received_at_ms);

-- The outbound queue (outbound.go). A row is due when next_try_ms is not
-- after the claimer's clock; 0 marks the rows never claimed.
CREATE TABLE outbound (
	seq          BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	domain       TEXT COLLATE "C" NOT NULL,
	to_address   TEXT COLLATE "C" NOT NULL,
	to_device    BIGINT  NOT NULL,
	envelope_id  BYTEA   NOT NULL,
	token        BYTEA,
	sealed       BYTEA   NOT NULL,
	from_address TEXT COLLATE "C" NOT NULL,
	from_device  BIGINT  NOT NULL,
	queued_at_ms BIGINT  NOT NULL,
	attempts     INTEGER NOT NULL DEFAULT 0,
	next_try_ms  BIGINT  NOT NULL,
	UNIQUE (to_address, to_device, envelope_id)
);
CREATE INDEX outbound_due ON outbound (domain, next_try_ms, seq);
`,
	// Version 2: linked devices (link.go). accounts.last_device is the
	// highest device identifier ever assigned in the account, so that the
	// identifiers of removed devices are never reused; link_tokens holds the
	// SHA-256 hashes of unused link tokens.
	`
ALTER TABLE accounts ADD COLUMN last_device BIGINT NOT NULL DEFAULT 1;
UPDATE accounts a SET last_device = d.m
	FROM (SELECT address, max(id) AS m FROM devices GROUP BY address) d
	WHERE d.address = a.address;
CREATE TABLE link_tokens (
	hash       BYTEA  PRIMARY KEY,
	address    TEXT COLLATE "C" NOT NULL REFERENCES accounts (address) ON DELETE CASCADE,
	expires_ms BIGINT NOT NULL
);
CREATE INDEX link_tokens_by_account ON link_tokens (address, expires_ms);
`,
	// Version 3: the origin domain of relayed envelopes, so that one
	// domain's envelopes hold at most a share of a mailbox (mailbox.go);
	// '' for envelopes of local devices and notices, which the partial
	// index leaves out.
	`
ALTER TABLE mailbox ADD COLUMN origin TEXT COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX mailbox_by_origin ON mailbox (address, device, origin) INCLUDE (size) WHERE origin <> '';
`,
	// Version 4: the domain's keys that every process sharing the database
	// must hold alike (domainkeys.go).
	`
CREATE TABLE domain_keys (
	name          TEXT COLLATE "C" PRIMARY KEY,
	key           BYTEA  NOT NULL,
	created_at_ms BIGINT NOT NULL
);
`,
	// Version 5: no counter shared across mailboxes (spec/16-security.md
	// section 16.11). devices.mb_seq is the last sequence number its mailbox
	// assigned, starting above every number the shared identity gave;
	// mailbox.seq counts per mailbox.
	`
ALTER TABLE devices ADD COLUMN mb_seq BIGINT NOT NULL DEFAULT 0;
UPDATE devices SET mb_seq = coalesce(pg_sequence_last_value(pg_get_serial_sequence('mailbox', 'seq')::regclass), 0);
ALTER TABLE mailbox ALTER COLUMN seq DROP IDENTITY;
ALTER TABLE mailbox DROP CONSTRAINT mailbox_pkey;
ALTER TABLE mailbox ADD PRIMARY KEY (address, device, seq);
DROP INDEX mailbox_by_box;
`,
	// Version 6: the blob store (blobs.go). blobs holds each blob's
	// metadata, with prefix a lower bound of the number of parts from the
	// first that were all written; blob_parts holds the parts' data, stored
	// out of line and uncompressed (ciphertext does not compress), so that
	// reading a range of a part reads only the TOAST chunks it needs.
	`
CREATE TABLE blobs (
	id            BYTEA   PRIMARY KEY,
	owner         TEXT COLLATE "C" NOT NULL,
	size          BIGINT  NOT NULL,
	created_at_ms BIGINT  NOT NULL,
	expires_ms    BIGINT  NOT NULL,
	complete      BOOLEAN NOT NULL DEFAULT FALSE,
	prefix        BIGINT  NOT NULL DEFAULT 0
);
CREATE INDEX blobs_by_owner ON blobs (owner, expires_ms);
CREATE INDEX blobs_by_expiry ON blobs (expires_ms);
CREATE TABLE blob_parts (
	blob_id BYTEA  NOT NULL REFERENCES blobs (id) ON DELETE CASCADE,
	idx     BIGINT NOT NULL,
	data    BYTEA  NOT NULL,
	PRIMARY KEY (blob_id, idx)
);
ALTER TABLE blob_parts ALTER COLUMN data SET STORAGE EXTERNAL;
`,
}

// schemaVersion is the schema version this package writes and reads.
var schemaVersion = len(migrations)

// migrateLock is the transaction-level advisory lock that serialises
// migrations of one schema: its key is derived from the schema's name.
const migrateLock = `SELECT pg_advisory_xact_lock(hashtextextended('xchat schema migration ' || current_schema(), 0))`

// Migrate creates the tables of the store, or upgrades them, in the schema
// that url selects (see the package documentation), and records the schema
// version in the table schema_migrations. It does nothing when the schema
// is up to date, and refuses a schema newer than this package. Processes
// may run it at once (they take turns) and while servers use the database.
func Migrate(ctx context.Context, url string) error {
	return migrateTo(ctx, url, schemaVersion)
}

// migrateTo is Migrate up to version target, for tests of upgrades.
func migrateTo(ctx context.Context, url string, target int) error {
	// Parsed as for Open, so that the pool settings are understood (and
	// ignored: Migrate uses one connection).
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var schema *string
		if err := tx.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema); err != nil {
			return err
		}
		if schema == nil {
			return errors.New("the search_path names no existing schema: create the schema first")
		}
		if _, err := tx.Exec(ctx, migrateLock); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
				version    INTEGER PRIMARY KEY,
				applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
			)`); err != nil {
			return err
		}
		var v int
		if err := tx.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
			return err
		}
		if v > schemaVersion {
			return fmt.Errorf("schema %q has version %d, newer than the %d this build supports", *schema, v, schemaVersion)
		}
		for ; v < target; v++ {
			if _, err := tx.Exec(ctx, migrations[v]); err != nil {
				return fmt.Errorf("to version %d: %w", v+1, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, v+1); err != nil {
				return fmt.Errorf("to version %d: %w", v+1, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: migrate: %w", err)
	}
	return nil
}

// checkSchema returns the name of the schema the pool's connections use and
// an error unless it has the version this package writes.
func checkSchema(ctx context.Context, pool *pgxpool.Pool) (string, error) {
	var (
		schema *string
		v      int
	)
	err := pool.QueryRow(ctx, `SELECT current_schema()`).Scan(&schema)
	if err != nil {
		return "", fmt.Errorf("postgres: open: %w", err)
	}
	if schema == nil {
		return "", errors.New("postgres: open: the search_path names no existing schema")
	}
	err = pool.QueryRow(ctx, `SELECT coalesce(max(version), 0) FROM schema_migrations`).Scan(&v)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P01" { // undefined_table
		return "", fmt.Errorf("postgres: open: schema %q has no xchat tables: run xchatd migrate --db URL", *schema)
	}
	if err != nil {
		return "", fmt.Errorf("postgres: open: schema version: %w", err)
	}
	switch {
	case v < schemaVersion:
		return "", fmt.Errorf("postgres: open: schema %q has version %d, this build needs %d: run xchatd migrate --db URL", *schema, v, schemaVersion)
	case v > schemaVersion:
		return "", fmt.Errorf("postgres: open: schema %q has version %d, newer than the %d this build supports", *schema, v, schemaVersion)
	}
	return *schema, nil
}
