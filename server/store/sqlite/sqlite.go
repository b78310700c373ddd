// Package sqlite is the embedded SQLite backend of [store.Store].
//
// One goroutine owns the only write connection and commits every write
// operation queued while the previous commit ran in one durable transaction
// (group commit); reads use a separate pool of read-only connections that
// run concurrently with it.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/xchat-im/xchat/server/store"
)

var _ store.Store = (*Store)(nil)

const (
	// maxBatchOps and maxBatchBytes bound how much queued work one
	// transaction takes on.
	maxBatchOps   = 512
	maxBatchBytes = 16 << 20
	// queueLen is how many write operations may wait for the writer.
	queueLen = 2 * maxBatchOps
	// readConns is the size of the read connection pool.
	readConns = 4
	// busyTimeoutMS bounds how long a connection waits for a lock that
	// another process (or a checkpoint) holds.
	busyTimeoutMS = 10000
)

// Store is a [store.Store] kept in one SQLite database file.
type Store struct {
	path   string
	limits store.Limits
	log    *slog.Logger

	// blobDir holds the files of the blob store (blobs.go); blobLocks order
	// writing a blob's parts before finishing it.
	blobDir   string
	blobLocks [blobLockStripes]sync.RWMutex

	wdb   *sql.DB   // holds exactly one connection: wconn
	wconn *sql.Conn // the write connection
	w     *wtx      // wconn's statements, owned by the writer goroutine
	rdb   *sql.DB   // read-only pool
	// rstmts holds the hot read queries prepared on rdb (query string to
	// *sql.Stmt), so that they are parsed once per pool connection rather
	// than at every call.
	rstmts sync.Map

	// mu guards closed. Readers and queuers hold it shared for the duration
	// of their use of the databases or the queue, so Close (exclusive) never
	// closes what is in use and never closes ops under a sender.
	mu         sync.RWMutex
	closed     bool
	ops        chan *writeOp
	writerDone chan struct{}
	closeOnce  sync.Once
	closeErr   error
	// purgeStop ends the purger goroutine (purge.go), which closes
	// purgeDone.
	purgeStop, purgeDone chan struct{}

	txs     atomic.Int64 // transactions the writer began
	opsDone atomic.Int64 // write operations the writer ran
}

// Open opens, or creates with mode 0600, the database file at path. Limits
// that are zero or negative are not enforced. A nil log discards.
//
// The directory blobs next to the database file holds the files of the
// blob store (blobs.go). Open removes the files of blobs deleted before a
// crash.
func Open(ctx context.Context, path string, limits store.Limits, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	if err := createFile(abs, log); err != nil {
		return nil, err
	}

	base := (&url.URL{Scheme: "file", Path: abs}).String()
	wdb, err := sql.Open("sqlite", base+"?_txlock=immediate"+
		fmt.Sprintf("&_pragma=busy_timeout(%d)", busyTimeoutMS)+
		"&_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=foreign_keys(1)"+
		// Deleted rows are overwritten with zeros, not only unlinked
		// (purge.go).
		"&_pragma=secure_delete(1)"+
		// Savepoint journals in memory: every operation runs in one.
		"&_pragma=temp_store(MEMORY)")
	if err != nil {
		return nil, fmt.Errorf("sqlite: open: %w", err)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	s := &Store{path: abs, limits: limits, log: log, wdb: wdb, blobDir: filepath.Join(filepath.Dir(abs), blobDirName)}
	fail := func(err error) (*Store, error) {
		if s.wconn != nil {
			_ = s.wconn.Close()
		}
		_ = wdb.Close()
		if s.rdb != nil {
			_ = s.rdb.Close()
		}
		return nil, err
	}

	s.wconn, err = wdb.Conn(ctx)
	if err != nil {
		return fail(fmt.Errorf("sqlite: open %s: %w", abs, err))
	}
	if err := checkDurable(ctx, s.wconn); err != nil {
		return fail(err)
	}
	from, err := migrate(ctx, s.wconn)
	if err != nil {
		return fail(err)
	}
	if from != 0 && from != schemaVersion {
		log.Info("sqlite schema upgraded", "path", abs, "from", from, "to", schemaVersion)
	}
	s.w = &wtx{ctx: context.Background(), conn: s.wconn, stmts: make(map[string]*sql.Stmt)}

	s.rdb, err = sql.Open("sqlite", base+
		fmt.Sprintf("?_pragma=busy_timeout(%d)", busyTimeoutMS)+
		"&_query_only=1")
	if err != nil {
		return fail(fmt.Errorf("sqlite: open: %w", err))
	}
	s.rdb.SetMaxOpenConns(readConns)
	s.rdb.SetMaxIdleConns(readConns)
	if err := s.rdb.PingContext(ctx); err != nil {
		return fail(fmt.Errorf("sqlite: open %s for reading: %w", abs, err))
	}

	s.ops = make(chan *writeOp, queueLen)
	s.writerDone = make(chan struct{})
	go s.writer()
	s.purgeStop, s.purgeDone = make(chan struct{}), make(chan struct{})
	go s.purger(s.purgeStop, s.purgeDone)
	if err := s.removeBlobFiles(ctx); err != nil {
		// The next DeleteExpiredBlobs tries again.
		log.Warn("sqlite: cannot remove the files of deleted blobs", "err", err)
	}
	log.Info("sqlite store opened", "path", abs, "schema_version", schemaVersion)
	return s, nil
}

// createFile creates the database file with mode 0600 unless it exists, so
// that SQLite (which gives the -wal and -shm files the database file's mode)
// never creates anything more permissive.
func createFile(path string, log *slog.Logger) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	switch {
	case err == nil:
		if err := f.Close(); err != nil {
			return fmt.Errorf("sqlite: create %s: %w", path, err)
		}
		// Make the new directory entry durable too.
		if err := syncDir(filepath.Dir(path)); err != nil {
			log.Warn("sqlite: cannot sync the database directory", "path", path, "err", err)
		}
		log.Info("sqlite database file created", "path", path)
		return nil
	case errors.Is(err, fs.ErrExist):
		fi, err := os.Stat(path)
		if err != nil {
			return fmt.Errorf("sqlite: open: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			log.Warn("sqlite database file is accessible to other users", "path", path, "mode", fi.Mode().Perm().String())
		}
		return nil
	default:
		return fmt.Errorf("sqlite: create %s: %w", path, err)
	}
}

// syncDir flushes a directory's entries to stable storage.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

// checkDurable verifies that the write connection runs in WAL mode with
// synchronous=FULL, which the durability promise of store.Store relies on.
func checkDurable(ctx context.Context, conn *sql.Conn) error {
	var mode string
	if err := conn.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return fmt.Errorf("sqlite: open: journal mode: %w", err)
	}
	if mode != "wal" {
		return fmt.Errorf("sqlite: open: journal mode is %q, not wal", mode)
	}
	var level int
	if err := conn.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&level); err != nil {
		return fmt.Errorf("sqlite: open: synchronous: %w", err)
	}
	if level < 2 {
		return fmt.Errorf("sqlite: open: synchronous is %d, not FULL", level)
	}
	return nil
}

// Close stops accepting work, commits the write operations already queued
// and closes the database. Later calls return store.ErrClosed; Close itself
// may be called again and then returns what the first call returned.
func (s *Store) Close() error {
	s.mu.Lock()
	if !s.closed {
		s.closed = true
		close(s.ops)
	}
	s.mu.Unlock()
	s.closeOnce.Do(func() {
		close(s.purgeStop)
		<-s.purgeDone
		<-s.writerDone
		var errs []error
		s.rstmts.Range(func(_, st any) bool {
			errs = append(errs, st.(*sql.Stmt).Close())
			return true
		})
		// The write connection closes last, so that it checkpoints the WAL
		// into the database file.
		s.closeErr = errors.Join(append(errs, s.rdb.Close(), s.wconn.Close(), s.wdb.Close())...)
		if s.closeErr != nil {
			s.closeErr = fmt.Errorf("sqlite: close: %w", s.closeErr)
		}
		s.log.Info("sqlite store closed", "path", s.path,
			"transactions", s.txs.Load(), "write_ops", s.opsDone.Load())
	})
	return s.closeErr
}

// read runs fn against the read pool unless the store is closed.
func (s *Store) read(fn func(db *sql.DB) error) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	return fn(s.rdb)
}

// readStmt returns query prepared on the read pool db, preparing it at the
// first use. Call it inside read.
func (s *Store) readStmt(ctx context.Context, db *sql.DB, query string) (*sql.Stmt, error) {
	if st, ok := s.rstmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.rstmts.LoadOrStore(query, st); loaded {
		_ = st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// isClosed reports whether Close has been called.
func (s *Store) isClosed() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.closed
}

// Operation states: a queued operation is either claimed by the writer
// (running) or by its caller giving up (cancelled), never both.
const (
	opQueued int32 = iota
	opRunning
	opCancelled
)

// writeOp is one write operation waiting for the writer.
type writeOp struct {
	fn    func(w *wtx) error // runs inside its own savepoint
	alone bool               // fn runs by itself, outside any transaction
	size  int                // approximate bytes written, for batching
	state atomic.Int32
	done  chan error // receives fn's error, or the commit's
}

// write queues fn for the writer and waits until its transaction has
// committed. fn's writes are durable when write returns nil, and were not
// made when it returns an error. If ctx ends before the writer took the
// operation, it is dropped and ctx's error returned; once the writer took
// it, write waits for its commit.
func (s *Store) write(ctx context.Context, size int, fn func(w *wtx) error) error {
	return s.submit(ctx, &writeOp{fn: fn, size: size, done: make(chan error, 1)})
}

// submit queues op for the writer and waits for its outcome, as write.
func (s *Store) submit(ctx context.Context, op *writeOp) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := s.enqueueOp(ctx, op); err != nil {
		return err
	}
	select {
	case err := <-op.done:
		return err
	case <-ctx.Done():
		if op.state.CompareAndSwap(opQueued, opCancelled) {
			return ctx.Err()
		}
		return <-op.done
	}
}

// enqueueOp hands op to the writer.
func (s *Store) enqueueOp(ctx context.Context, op *writeOp) error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	select {
	case s.ops <- op:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// writer commits queued operations until ops is closed and drained. It
// takes whatever queued up while the previous transaction committed, so
// batching costs no latency when the store is idle.
func (s *Store) writer() {
	defer close(s.writerDone)
	defer s.w.close()
	batch := make([]*writeOp, 0, maxBatchOps)
	var next *writeOp // an operation taken from ops but not run yet
	for {
		op := next
		next = nil
		if op == nil {
			var ok bool
			if op, ok = <-s.ops; !ok {
				return
			}
		}
		if op.alone {
			s.runAlone(op)
			continue
		}
		batch = append(batch[:0], op)
		size := op.size
	drain:
		for len(batch) < maxBatchOps && size < maxBatchBytes {
			select {
			case op, ok := <-s.ops:
				if !ok {
					break drain
				}
				if op.alone {
					next = op
					break drain
				}
				batch = append(batch, op)
				size += op.size
			default:
				break drain
			}
		}
		s.commit(batch)
		clear(batch)
	}
}

// runAlone runs an operation that must not run inside a transaction.
func (s *Store) runAlone(op *writeOp) {
	if !op.state.CompareAndSwap(opQueued, opRunning) {
		return
	}
	s.opsDone.Add(1)
	op.done <- op.fn(s.w)
}

// commit runs batch in one transaction, each operation in its own savepoint,
// and tells every operation its outcome once the transaction committed.
func (s *Store) commit(batch []*writeOp) {
	run := batch[:0:0]
	for _, op := range batch {
		if op.state.CompareAndSwap(opQueued, opRunning) {
			run = append(run, op)
		}
	}
	if len(run) == 0 {
		return
	}
	s.txs.Add(1)
	s.opsDone.Add(int64(len(run)))
	fail := func(err error) {
		s.log.Error("sqlite: write transaction failed", "ops", len(run), "err", err)
		for _, op := range run {
			op.done <- err
		}
	}
	w := s.w
	if _, err := w.exec(`BEGIN IMMEDIATE`); err != nil {
		w.rollback()
		fail(fmt.Errorf("sqlite: begin: %w", err))
		return
	}
	errs := make([]error, len(run))
	for i, op := range run {
		if err := w.savepoint(op.fn, &errs[i]); err != nil {
			// The transaction cannot go on (SQLite may already have rolled
			// it back after an I/O error): every operation's writes are
			// lost, those that ran before included.
			w.rollback()
			fail(err)
			return
		}
	}
	if _, err := w.exec(`COMMIT`); err != nil {
		w.rollback()
		fail(fmt.Errorf("sqlite: commit: %w", err))
		return
	}
	for i, op := range run {
		op.done <- errs[i]
	}
}

// wtx is the write connection with the statements prepared on it. The
// writer begins and ends transactions on it with plain statements, so that
// prepared statements outlive each transaction.
type wtx struct {
	// ctx is the context of every statement. It is never cancelled:
	// interrupting a statement can roll back the whole transaction, and
	// with it other callers' operations.
	ctx   context.Context
	conn  *sql.Conn
	stmts map[string]*sql.Stmt
}

// rollback ends the current transaction, if any, without committing it.
func (w *wtx) rollback() {
	_, _ = w.exec(`ROLLBACK`) // fails when SQLite already rolled back
}

// close releases the prepared statements.
func (w *wtx) close() {
	for q, st := range w.stmts {
		_ = st.Close()
		delete(w.stmts, q)
	}
}

func (w *wtx) stmt(query string) (*sql.Stmt, error) {
	if st, ok := w.stmts[query]; ok {
		return st, nil
	}
	st, err := w.conn.PrepareContext(w.ctx, query)
	if err != nil {
		return nil, err
	}
	w.stmts[query] = st
	return st, nil
}

// exec runs a statement and returns how many rows it changed.
func (w *wtx) exec(query string, args ...any) (int64, error) {
	st, err := w.stmt(query)
	if err != nil {
		return 0, err
	}
	res, err := st.ExecContext(w.ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// savepoint runs fn in a savepoint, rolled back when fn fails. It stores
// fn's error in opErr and returns an error only when the transaction itself
// failed.
func (w *wtx) savepoint(fn func(w *wtx) error, opErr *error) error {
	if _, err := w.exec(`SAVEPOINT op`); err != nil {
		return fmt.Errorf("sqlite: savepoint: %w", err)
	}
	if *opErr = fn(w); *opErr != nil {
		// ROLLBACK TO fails when SQLite already rolled back the whole
		// transaction.
		if _, err := w.exec(`ROLLBACK TO op`); err != nil {
			return fmt.Errorf("sqlite: rollback to savepoint: %w (after %w)", err, *opErr)
		}
	}
	if _, err := w.exec(`RELEASE op`); err != nil {
		return fmt.Errorf("sqlite: release savepoint: %w", err)
	}
	return nil
}

// query runs a query.
func (w *wtx) query(query string, args ...any) (*sql.Rows, error) {
	st, err := w.stmt(query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(w.ctx, args...)
}

// queryRow runs a query that returns at most one row.
func (w *wtx) queryRow(query string, args ...any) scanner {
	st, err := w.stmt(query)
	if err != nil {
		return errRow{err}
	}
	return st.QueryRowContext(w.ctx, args...)
}

// scanner is a row to scan.
type scanner interface{ Scan(dest ...any) error }

// errRow is a row that failed before it was read.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

// millis is t as integer milliseconds since the Unix epoch.
func millis(t time.Time) int64 { return t.UnixMilli() }

// fromMillis is the inverse of millis.
func fromMillis(ms int64) time.Time { return time.UnixMilli(ms) }

// blob turns nil into an empty blob for NOT NULL columns.
func blob(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
