// Package postgres is the PostgreSQL backend of [store.Store], for
// homeservers that run several processes on one database.
//
// # Connection URL
//
// [Open] and [Migrate] take a libpq-style URL or key/value string as
// parsed by pgx (github.com/jackc/pgx/v5/pgxpool): the pool settings
// pool_max_conns, pool_min_conns, pool_max_conn_lifetime and so on are read
// from it. Every other query parameter that pgx does not know is sent to the
// server as a run-time parameter of each connection, so that
//
//	postgres://xchat@db.example/xchat?sslmode=verify-full&search_path=xchat
//
// keeps the homeserver's tables in the schema xchat: both Migrate and Open
// use the first existing schema of the search_path, as PostgreSQL does for
// unqualified names. Without search_path the server's default applies
// (normally the schema public). The schema itself is not created: create it
// first when it is not public.
//
// # Schema
//
// [Migrate] creates and upgrades the tables (xchatd migrate); [Open] only
// checks that the schema version is the one this package writes. Times are
// integer milliseconds since the Unix epoch, as in the SQLite backend. Each
// device row carries its mailbox's counters (mb_count, mb_bytes), which
// every statement that adds or removes envelopes updates in the same
// transaction, with the device row locked: the rows of all devices a
// transaction changes are locked first, in (address, id) order, so that
// concurrent writers, in this process or others, neither exceed a mailbox's
// limits nor deadlock. The same lock orders the envelopes of a mailbox:
// they get their Seq from the mailbox's own counter (devices.mb_seq) while
// the lock is held, so that they become visible in Seq order and a reader
// paging with Pending never skips one.
//
// # Blobs
//
// The blob store (blobs.go) keeps the parts of each blob as bytea rows of
// the table blob_parts, so that every process sharing the database serves
// every blob without a shared file system or another service to run; an
// S3-compatible object store is future work.
//
// # Notifications
//
// Every Enqueue that stores envelopes sends a notification on the channel
// xchat_mailbox, in its transaction, with the payload "address device" of
// each mailbox it stored into; [Store.Listen] passes them on. The channel is
// per database, not per schema: homeservers that share a database in
// different schemas see each other's notifications, which costs some
// wake-ups and nothing else (notifications are hints).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xchat-im/xchat/server/store"
)

var (
	_ store.Store           = (*Store)(nil)
	_ store.Notifier        = (*Store)(nil)
	_ store.RemovalNotifier = (*Store)(nil)
	_ store.Exporter        = (*Store)(nil)
	_ store.Importer        = (*Store)(nil)
)

// Store is a [store.Store] kept in a PostgreSQL database. Several Stores,
// in one process or several, may share the database.
type Store struct {
	pool   *pgxpool.Pool
	limits store.Limits
	log    *slog.Logger

	closed    atomic.Bool
	stop      context.Context // ends when Close is called, ending Listen
	stopFn    context.CancelFunc
	mu        sync.Mutex     // guards adding to listeners against Close
	listeners sync.WaitGroup // the calls of Listen in progress
	closeOnce sync.Once
	purgeDone chan struct{} // closed when the purger (purge.go) ended
}

// Open connects to the PostgreSQL database at url (see the package
// documentation for the URL) and checks that its schema was migrated to the
// version this package writes: [Migrate] must have run before. Limits that
// are zero or negative are not enforced. A nil log discards.
func Open(ctx context.Context, url string, limits store.Limits, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	schema, err := checkSchema(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{pool: pool, limits: limits, log: log}
	s.stop, s.stopFn = context.WithCancel(context.Background())
	s.purgeDone = make(chan struct{})
	go s.purger(s.purgeDone)
	cc := cfg.ConnConfig
	log.Info("postgres store opened", "host", cc.Host, "port", cc.Port, "database", cc.Database,
		"schema", schema, "schema_version", schemaVersion, "max_conns", cfg.MaxConns)
	return s, nil
}

// Close waits for the calls in progress, ends every Listen and closes the
// connections. Later calls return store.ErrClosed; Close itself may be
// called again and returns nil.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.mu.Lock()
		s.closed.Store(true)
		s.mu.Unlock()
		s.stopFn()
		s.listeners.Wait()
		<-s.purgeDone
		s.pool.Close()
		s.log.Info("postgres store closed")
	})
	return nil
}

// acquire takes a connection from the pool, unless the store is closed or
// ctx ended. The caller gives it back with release.
func (s *Store) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	if s.closed.Load() {
		return nil, store.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		if s.closed.Load() {
			return nil, store.ErrClosed
		}
		return nil, err
	}
	return c, nil
}

// release gives c back to the pool, first rolling back the transaction that
// a failure left open on it, if any. (The pool would destroy a connection
// left in a transaction; rolling back keeps it.)
func release(c *pgxpool.Conn) {
	pc := c.Conn().PgConn()
	if !pc.IsClosed() && pc.TxStatus() != 'I' {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = pc.Exec(ctx, "ROLLBACK").Close()
		cancel()
	}
	c.Release()
}

// with runs fn on a connection of the pool.
func (s *Store) with(ctx context.Context, fn func(c *pgxpool.Conn) error) error {
	c, err := s.acquire(ctx)
	if err != nil {
		return err
	}
	defer release(c)
	return fn(c)
}

// inTx runs fn in a transaction, committed when fn returns nil and rolled
// back otherwise.
func (s *Store) inTx(ctx context.Context, opts pgx.TxOptions, fn func(tx pgx.Tx) error) error {
	return s.with(ctx, func(c *pgxpool.Conn) error {
		return pgx.BeginTxFunc(ctx, c, opts, fn)
	})
}

// send sends b on c and reads every result, calling the functions queued
// with its queries, and returns the first error.
func send(ctx context.Context, c *pgxpool.Conn, b *pgx.Batch) error {
	return c.SendBatch(ctx, b).Close()
}

// affected is the number of rows a statement changed, for a batch query's
// Exec callback.
func affected(n *int64) func(pgconn.CommandTag) error {
	return func(ct pgconn.CommandTag) error {
		*n = ct.RowsAffected()
		return nil
	}
}

// scanAll calls scan for every row.
func scanAll(rows pgx.Rows, scan func(pgx.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// isNoRows reports whether err says that a query returned no row.
func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// millis is t as integer milliseconds since the Unix epoch.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis is the inverse of millis.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms) }

// blob turns nil into an empty byte string for NOT NULL columns.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
