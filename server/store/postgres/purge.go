package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xchat-im/xchat/server/store"
)

var _ store.Purger = (*Store)(nil)

// PurgeInterval is how often an open store purges by itself. Every process
// sharing the database does, so the tables are vacuumed at least this
// often.
const PurgeInterval = 5 * time.Minute

// purgeTables are the tables whose deleted rows held what spec section
// 16.11 says is gone once deleted: envelopes and notices with their
// mailbox (mailbox), the submitting device of relayed envelopes
// (outbound), delivery-token verifiers (policy_verifiers), link tokens,
// invites, claimed key packages and the owners of deleted blobs (blobs).
// Their TOAST tables are vacuumed with them. (The parts of deleted blobs,
// opaque ciphertext, are left to autovacuum.)
const purgeTables = `mailbox, outbound, policy_verifiers, link_tokens, invites, key_packages, last_resort, blobs`

// PostgreSQL deletes a row by marking its tuple dead; the tuple, with its
// data, stays in the heap page (and its index entries in the indexes) until
// a vacuum removes it. Purge runs VACUUM on the tables that held deleted
// metadata, with INDEX_CLEANUP ON so that the index entries go too (without
// it, PostgreSQL may skip the indexes when few pages changed, and index
// entries name the mailbox and the envelope identifier). A vacuum cannot
// remove a tuple that a snapshot still open anywhere in the cluster may
// see. The bytes of a removed tuple stay in the page's free space until a
// new row reuses it, and in PostgreSQL's write-ahead log, archives and
// backups: that is the operator's part (spec section 16.11).

// Purge vacuums the tables that held deleted metadata, so that no deleted
// row keeps a tuple or an index entry.
func (s *Store) Purge(ctx context.Context) error {
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		// VACUUM skips, with a mere warning, the tables the role may not
		// vacuum: say so as an error.
		var denied []string
		rows, err := c.Query(ctx, `SELECT c.relname::text FROM pg_class c
			WHERE c.oid = ANY(string_to_array($1, ', ')::regclass[])
			AND NOT (pg_has_role(c.relowner, 'USAGE')
				OR (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
				OR pg_has_role((SELECT datdba FROM pg_database WHERE datname = current_database()), 'USAGE'))
			ORDER BY 1`, purgeTables)
		if err != nil {
			return err
		}
		if err := scanAll(rows, func(r pgx.Rows) error {
			var t string
			denied = append(denied, t)
			return r.Scan(&denied[len(denied)-1])
		}); err != nil {
			return err
		}
		if len(denied) > 0 {
			return fmt.Errorf("the role %s may not vacuum %v: connect as the tables' owner (the role that ran xchatd migrate)", c.Conn().Config().User, denied)
		}
		_, err = c.Exec(ctx, `VACUUM (INDEX_CLEANUP ON) `+purgeTables)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: purge: %w", err)
	}
	return nil
}

// purger purges every PurgeInterval until the store is closed, then closes
// done.
func (s *Store) purger(done chan<- struct{}) {
	defer close(done)
	t := time.NewTicker(PurgeInterval)
	defer t.Stop()
	for {
		select {
		case <-s.stop.Done():
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(s.stop, PurgeInterval)
		if err := s.Purge(ctx); err != nil && !errors.Is(err, store.ErrClosed) && s.stop.Err() == nil {
			s.log.Warn("postgres: purge", "err", err)
		}
		cancel()
	}
}
