package profile

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"
)

// ErrNotFound is returned, wrapped, for a row the profile does not hold.
var ErrNotFound = errors.New("profile: not found")

// Store is an open profile file.
type Store struct {
	db   *sql.DB
	path string
}

// Tx is one transaction of a Store. Its methods are valid only inside the
// function given to Update or View.
type Tx struct {
	ctx context.Context
	tx  *sql.Tx
}

// Open opens the profile file at path, creating it with mode 0600 when
// missing, and applies the migrations it lacks.
func Open(ctx context.Context, path string) (*Store, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	// WAL with synchronous=FULL: a commit is on disk when it returns.
	// Write transactions begin IMMEDIATE, so that two processes never
	// interleave their writes (nor fail to upgrade a read lock).
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=synchronous(FULL)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	db.SetMaxOpenConns(1)
	s := &Store{db: db, path: path}
	if err := s.migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		if err := os.Chmod(path+suffix, 0o600); err != nil && !errors.Is(err, os.ErrNotExist) {
			db.Close()
			return nil, fmt.Errorf("profile: %w", err)
		}
	}
	return s, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.db.Close() }

// Update runs f in a write transaction, committed when f returns nil and
// rolled back otherwise. f's error is returned as is.
func (s *Store) Update(ctx context.Context, f func(tx *Tx) error) error {
	return s.run(ctx, nil, f)
}

// View runs f in a read transaction; f must not write.
func (s *Store) View(ctx context.Context, f func(tx *Tx) error) error {
	return s.run(ctx, &sql.TxOptions{ReadOnly: true}, f)
}

func (s *Store) run(ctx context.Context, opts *sql.TxOptions, f func(tx *Tx) error) error {
	tx, err := s.db.BeginTx(ctx, opts)
	if err != nil {
		return fmt.Errorf("profile: begin: %w", err)
	}
	if err := f(&Tx{ctx: ctx, tx: tx}); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("profile: commit: %w", err)
	}
	return nil
}

// exec runs one statement; what names it in the error.
func (t *Tx) exec(what, query string, args ...any) (sql.Result, error) {
	res, err := t.tx.ExecContext(t.ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("profile: %s: %w", what, err)
	}
	return res, nil
}

// get reads one row into dest; a missing row gives ErrNotFound.
func (t *Tx) get(what, query string, args []any, dest ...any) error {
	err := t.tx.QueryRowContext(t.ctx, query, args...).Scan(dest...)
	if errors.Is(err, sql.ErrNoRows) {
		return errNotFound(what)
	}
	if err != nil {
		return fmt.Errorf("profile: %s: %w", what, err)
	}
	return nil
}

// list reads every row of a query, calling scan for each.
func (t *Tx) list(what, query string, args []any, scan func(rows *sql.Rows) error) error {
	rows, err := t.tx.QueryContext(t.ctx, query, args...)
	if err != nil {
		return fmt.Errorf("profile: %s: %w", what, err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return fmt.Errorf("profile: %s: %w", what, err)
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("profile: %s: %w", what, err)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

func errNotFound(what string) error { return fmt.Errorf("profile: %s: %w", what, ErrNotFound) }
