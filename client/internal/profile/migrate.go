package profile

import (
	"context"
	"errors"
	"fmt"
)

// migrations are the schema steps, in order: a profile at version n (PRAGMA
// user_version) went through the first n. A released step is never edited;
// a change is a new step at the end.
var migrations = []string{
	// 1: the identity, contacts' tokens and device lists, direct-content
	// messages.
	`CREATE TABLE identity (
		id INTEGER PRIMARY KEY CHECK (id = 1),
		address TEXT NOT NULL,
		device INTEGER NOT NULL,
		server TEXT NOT NULL,
		ca_file TEXT NOT NULL,
		sig_seed BLOB NOT NULL,
		hpke_key BLOB NOT NULL,
		token BLOB NOT NULL,
		state INTEGER NOT NULL
	);
	CREATE TABLE contacts (
		address TEXT PRIMARY KEY,
		token BLOB
	);
	CREATE TABLE device_lists (
		address TEXT PRIMARY KEY,
		devices BLOB NOT NULL,
		fetched_at_ms INTEGER NOT NULL
	);
	CREATE TABLE messages (
		id BLOB PRIMARY KEY,
		sender TEXT NOT NULL,
		sender_device INTEGER NOT NULL,
		recipient TEXT NOT NULL,
		text TEXT NOT NULL,
		sent_at_ms INTEGER NOT NULL,
		received_at_ms INTEGER NOT NULL,
		lane INTEGER NOT NULL,
		stored_at_ms INTEGER NOT NULL
	);`,

	// 2: MLS groups, key packages, held-back MLS messages, the outbox,
	// fragments, processed envelopes, trusted own devices and device
	// links; messages belong to groups. Messages stored before were shown.
	`ALTER TABLE messages ADD COLUMN group_id BLOB;
	ALTER TABLE messages ADD COLUMN msg_id BLOB;
	ALTER TABLE messages ADD COLUMN content_type INTEGER NOT NULL DEFAULT 1;
	ALTER TABLE messages ADD COLUMN ref BLOB;
	ALTER TABLE messages ADD COLUMN shown INTEGER NOT NULL DEFAULT 1;
	CREATE TABLE groups (
		id BLOB PRIMARY KEY,
		kind INTEGER NOT NULL,
		name TEXT NOT NULL,
		peer TEXT NOT NULL,
		state BLOB NOT NULL,
		version INTEGER NOT NULL,
		active INTEGER NOT NULL,
		created_at_ms INTEGER NOT NULL,
		inviter TEXT NOT NULL DEFAULT '',
		joined_epoch INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX groups_peer ON groups (peer, id);
	CREATE TABLE key_packages (
		ref BLOB PRIMARY KEY,
		bundle BLOB NOT NULL,
		last_resort INTEGER NOT NULL,
		created_at_ms INTEGER NOT NULL,
		used_at_ms INTEGER
	);
	CREATE TABLE held_mls (
		envelope_id BLOB PRIMARY KEY,
		group_id BLOB NOT NULL,
		sender TEXT NOT NULL,
		sender_device INTEGER NOT NULL,
		sender_key BLOB NOT NULL,
		payload BLOB NOT NULL,
		received_at_ms INTEGER NOT NULL,
		lane INTEGER NOT NULL
	);
	CREATE INDEX held_mls_group ON held_mls (group_id);
	CREATE TABLE outbox (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		payload BLOB NOT NULL,
		targets BLOB NOT NULL,
		created_at_ms INTEGER NOT NULL
	);
	CREATE TABLE fragments (
		hash BLOB NOT NULL,
		sender TEXT NOT NULL,
		sender_device INTEGER NOT NULL,
		sender_key BLOB NOT NULL,
		idx INTEGER NOT NULL,
		count INTEGER NOT NULL,
		data BLOB NOT NULL,
		received_at_ms INTEGER NOT NULL,
		lane INTEGER NOT NULL,
		PRIMARY KEY (hash, sender, sender_device, idx)
	);
	CREATE TABLE processed (
		envelope_id BLOB PRIMARY KEY,
		at_ms INTEGER NOT NULL
	);
	CREATE TABLE own_devices (
		device INTEGER PRIMARY KEY,
		sig_key BLOB NOT NULL
	);
	CREATE TABLE links (
		token BLOB PRIMARY KEY,
		secret BLOB NOT NULL,
		device INTEGER NOT NULL,
		expires_at_ms INTEGER NOT NULL,
		role INTEGER NOT NULL
	);`,

	// 3: the message an edit, delete, reply or reaction refers to is
	// found by an index, not a scan of every message.
	`CREATE INDEX messages_ref ON messages (group_id, msg_id);`,

	// 4: envelopes this device could not open because a domain's key could
	// not be had, until it gave up on them (spec/07-envelopes.md section
	// 7.16).
	`CREATE TABLE unopened (
		envelope_id BLOB PRIMARY KEY,
		domain TEXT NOT NULL,
		reason TEXT NOT NULL,
		first_seen_ms INTEGER NOT NULL,
		last_seen_ms INTEGER NOT NULL,
		tries INTEGER NOT NULL,
		given_up INTEGER NOT NULL
	);
	CREATE INDEX unopened_last_seen ON unopened (last_seen_ms);`,

	// 5: files shared by reference (spec/11-files.md): the reference a
	// file message carries, the files of the conversations with their
	// download state, and the uploads not yet sent.
	`ALTER TABLE messages ADD COLUMN file_ref BLOB;
	CREATE TABLE files (
		file_id BLOB PRIMARY KEY,
		blob_id BLOB NOT NULL,
		domain TEXT NOT NULL,
		file_key BLOB NOT NULL,
		blob_hash BLOB NOT NULL,
		size INTEGER NOT NULL,
		media_type TEXT NOT NULL,
		name TEXT NOT NULL,
		caption TEXT NOT NULL,
		sender TEXT NOT NULL,
		group_id BLOB NOT NULL,
		msg_id BLOB NOT NULL,
		sent_at_ms INTEGER NOT NULL,
		received_at_ms INTEGER NOT NULL,
		outgoing INTEGER NOT NULL,
		path TEXT NOT NULL DEFAULT '',
		download_out TEXT NOT NULL DEFAULT '',
		download_done INTEGER NOT NULL DEFAULT 0
	);
	CREATE INDEX files_received ON files (received_at_ms);
	CREATE TABLE uploads (
		id INTEGER PRIMARY KEY AUTOINCREMENT,
		path TEXT NOT NULL,
		size INTEGER NOT NULL,
		mtime_ns INTEGER NOT NULL,
		target TEXT NOT NULL,
		caption TEXT NOT NULL,
		media_type TEXT NOT NULL,
		name TEXT NOT NULL,
		file_key BLOB NOT NULL,
		domain TEXT NOT NULL,
		blob_id BLOB NOT NULL,
		blob_size INTEGER NOT NULL,
		blob_hash BLOB,
		stage INTEGER NOT NULL,
		created_at_ms INTEGER NOT NULL
	);
	CREATE INDEX uploads_source ON uploads (path, size, mtime_ns, target);`,

	// 6: the signal of a call message (spec/12-calls.md section 12.2).
	`ALTER TABLE messages ADD COLUMN call BLOB;`,

	// 7: the SFrame counters this device reserved per group and epoch
	// (spec/12-calls.md section 12.7), so that no call, rejoin or restart
	// uses a counter twice under one key.
	`CREATE TABLE sframe_counters (
		group_id BLOB NOT NULL,
		epoch INTEGER NOT NULL,
		next INTEGER NOT NULL,
		PRIMARY KEY (group_id, epoch)
	);`,
}

// errNewer is returned for a profile written by a later version.
var errNewer = errors.New("written by a newer xchat")

// migrate applies, in one transaction, the migrations the file lacks.
func (s *Store) migrate(ctx context.Context) error {
	return s.Update(ctx, func(tx *Tx) error {
		var v int
		if err := tx.get("schema version", `PRAGMA user_version`, nil, &v); err != nil {
			return err
		}
		if v > len(migrations) {
			return fmt.Errorf("format %d, %w (this one reads formats up to %d)", v, errNewer, len(migrations))
		}
		for i := v; i < len(migrations); i++ {
			if _, err := tx.exec(fmt.Sprintf("migration %d", i+1), migrations[i]); err != nil {
				return err
			}
		}
		if v == len(migrations) {
			return nil
		}
		_, err := tx.exec("schema version", fmt.Sprintf(`PRAGMA user_version = %d`, len(migrations)))
		return err
	})
}
