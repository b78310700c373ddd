package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// The blob store keeps each blob's data in a file of its own,
// blobs/<first two hex digits of the ID>/<the ID in 32 hex digits> next to
// the database file, and its metadata in the database (tables blobs and
// blob_parts, schema version 6):
//
//   - PutPart writes a part with pwrite at its offset in the file and syncs
//     the file (and, for a new file, its directory) before the writer
//     records the part in blob_parts: a part the database lists is durable.
//     A part written but not recorded (a crash between the two) is simply
//     not received, and the client sends it again.
//   - ReadBlob reads only what it is asked from the file of a blob whose
//     metadata says complete and unexpired.
//   - DeleteExpiredBlobs deletes the metadata first, in one transaction that
//     also lists the blobs in blob_deletions, and then the files, and then
//     the list: no blob is ever readable in part, and the files a crash
//     leaves are removed at the next Open (or DeleteExpiredBlobs).
//   - A part written to a blob deleted meanwhile is refused, and its file
//     removed (only a crash at that moment leaves the file behind).
//
// Writing parts of a blob runs concurrently (each writes its own range of
// the file, and the writer serialises the metadata); finishing the blob
// waits for the parts being written (blobLocks), so that the data of a
// complete blob never changes.

// blobDirName is the directory of the blob files, next to the database.
const blobDirName = "blobs"

// blobLockStripes is how many locks the blobs share (by their ID's first
// byte).
const blobLockStripes = 64

// blobColumns are the columns scanBlob reads, after the ID.
const blobColumns = `owner, size, created_at_ms, expires_ms, complete, prefix`

// partSize is wire.BlobPartSize as an int64.
const partSize = int64(wire.BlobPartSize)

// blobPath returns the name of the file of the blob id.
func (s *Store) blobPath(id store.BlobID) string {
	h := hex.EncodeToString(id[:])
	return filepath.Join(s.blobDir, h[:2], h)
}

// blobLock returns the lock of the blob id: PutPart holds it shared while it
// writes, FinishBlob exclusively.
func (s *Store) blobLock(id store.BlobID) *sync.RWMutex {
	return &s.blobLocks[int(id[0])%blobLockStripes]
}

// scanBlob reads a row of blobColumns into a blob with ID id.
// sql.ErrNoRows becomes store.ErrUnknownBlob.
func scanBlob(row scanner, id store.BlobID) (b store.Blob, prefix int64, err error) {
	var created, expires, complete int64
	if err := row.Scan(&b.Owner, &b.Size, &created, &expires, &complete, &prefix); err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return b, 0, store.ErrUnknownBlob
		}
		return b, 0, err
	}
	b.ID, b.CreatedAt, b.Expires, b.Complete = id, fromMillis(created), fromMillis(expires), complete != 0
	b.Received = min(prefix*partSize, b.Size)
	return b, prefix, nil
}

// CreateBlob records a new unfinished blob, checking the owner's limits in
// the same transaction.
func (s *Store) CreateBlob(ctx context.Context, b store.Blob, l store.BlobLimits) error {
	if b.Size <= 0 || b.Size > wire.MaxBlobSize {
		return fmt.Errorf("sqlite: create blob: size %d: %w", b.Size, store.ErrBadRange)
	}
	err := s.write(ctx, len(b.Owner)+64, func(w *wtx) error {
		var bytes, unfinished int64
		err := w.queryRow(`SELECT coalesce(sum(size), 0), coalesce(sum(complete = 0), 0)
			FROM blobs WHERE owner = ? AND expires_ms > ?`, b.Owner, millis(b.CreatedAt)).Scan(&bytes, &unfinished)
		if err != nil {
			return err
		}
		if l.Quota > 0 && bytes+b.Size > l.Quota {
			return store.ErrQuota
		}
		if l.MaxUnfinished > 0 && unfinished >= int64(l.MaxUnfinished) {
			return store.ErrLimit
		}
		// An ID whose file waits for removal (blob_deletions) is taken
		// too.
		n, err := w.exec(`INSERT INTO blobs (id, owner, size, created_at_ms, expires_ms)
			SELECT ?1, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM blob_deletions WHERE id = ?1)`,
			b.ID[:], b.Owner, b.Size, millis(b.CreatedAt), millis(b.Expires))
		if err == nil && n == 0 {
			err = errors.New("blob ID taken")
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create blob: %w", err)
	}
	return nil
}

// blob reads the metadata of the blob id from the read pool.
func (s *Store) blob(ctx context.Context, id store.BlobID) (b store.Blob, err error) {
	err = s.read(func(db *sql.DB) error {
		st, err := s.readStmt(ctx, db, `SELECT `+blobColumns+` FROM blobs WHERE id = ?`)
		if err != nil {
			return err
		}
		b, _, err = scanBlob(st.QueryRowContext(ctx, id[:]), id)
		return err
	})
	return b, err
}

// ownBlob reads the metadata of the blob id of owner that is live at now.
func (s *Store) ownBlob(ctx context.Context, owner string, id store.BlobID, now time.Time) (store.Blob, error) {
	b, err := s.blob(ctx, id)
	if err == nil && (b.Owner != owner || !b.LiveAt(now)) {
		err = store.ErrUnknownBlob
	}
	return b, err
}

// PutPart writes and syncs the part to the blob's file, then records it.
func (s *Store) PutPart(ctx context.Context, owner string, id store.BlobID, index int64, data []byte, now time.Time) (store.Blob, error) {
	lk := s.blobLock(id)
	lk.RLock()
	defer lk.RUnlock()
	b, err := s.ownBlob(ctx, owner, id, now)
	if err != nil {
		return store.Blob{}, fmt.Errorf("sqlite: put part: %w", err)
	}
	if b.Complete {
		return b, nil
	}
	if !b.FitsPart(index, data) {
		return store.Blob{}, fmt.Errorf("sqlite: put part %d of %d bytes into a blob of %d: %w", index, len(data), b.Size, store.ErrBadRange)
	}
	if err := s.writePart(id, index*partSize, data); err != nil {
		return store.Blob{}, fmt.Errorf("sqlite: put part: %w", pathless(err))
	}
	gone := false
	err = s.write(ctx, 64, func(w *wtx) error {
		var (
			prefix int64
			err    error
		)
		b, prefix, err = scanBlob(w.queryRow(`SELECT `+blobColumns+` FROM blobs WHERE id = ?`, id[:]), id)
		if errors.Is(err, store.ErrUnknownBlob) {
			gone = true
		}
		if err != nil {
			return err
		}
		if b.Owner != owner || !b.LiveAt(now) {
			return store.ErrUnknownBlob
		}
		if b.Complete || index < prefix {
			return nil
		}
		if _, err := w.exec(`INSERT OR IGNORE INTO blob_parts (blob_id, idx) VALUES (?, ?)`, id[:], index); err != nil {
			return err
		}
		if index != prefix {
			return nil
		}
		// The prefix grows over this part and the ones already there after
		// it.
		rows, err := w.query(`SELECT idx FROM blob_parts WHERE blob_id = ? AND idx >= ? ORDER BY idx`, id[:], prefix)
		if err != nil {
			return err
		}
		for rows.Next() {
			var i int64
			if err := rows.Scan(&i); err != nil {
				rows.Close()
				return err
			}
			if i != prefix {
				break
			}
			prefix++
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return err
		}
		b.Received = min(prefix*partSize, b.Size)
		_, err = w.exec(`UPDATE blobs SET prefix = ? WHERE id = ?`, prefix, id[:])
		return err
	})
	if gone {
		// The blob was deleted while the part was written, perhaps after
		// its file was: remove what the write left.
		if err := os.Remove(s.blobPath(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			s.log.Warn("sqlite: cannot remove the file of a deleted blob", "err", err)
		}
	}
	if err != nil {
		return store.Blob{}, fmt.Errorf("sqlite: put part: %w", err)
	}
	return b, nil
}

// writePart writes data at off in the file of the blob id, creating it if
// needed, and syncs it.
func (s *Store) writePart(id store.BlobID, off int64, data []byte) error {
	path := s.blobPath(id)
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if errors.Is(err, fs.ErrNotExist) {
		f, err = s.createBlobFile(path)
	}
	if err != nil {
		return err
	}
	_, err = f.WriteAt(data, off)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// createBlobFile creates the file at path, and its directories, and makes
// their names durable.
func (s *Store) createBlobFile(path string) (*os.File, error) {
	dir := filepath.Dir(path)
	for _, d := range []string{s.blobDir, dir} {
		err := os.Mkdir(d, 0o700)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := syncDir(filepath.Dir(d)); err != nil {
			return nil, err
		}
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syncDir(dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// BlobState returns the metadata of a live blob of owner.
func (s *Store) BlobState(ctx context.Context, owner string, id store.BlobID, now time.Time) (store.Blob, error) {
	b, err := s.ownBlob(ctx, owner, id, now)
	if err != nil {
		return store.Blob{}, fmt.Errorf("sqlite: blob state: %w", err)
	}
	return b, nil
}

// FinishBlob marks a fully received blob complete, once no part of it is
// being written.
func (s *Store) FinishBlob(ctx context.Context, owner string, id store.BlobID, now, expires time.Time) (store.Blob, error) {
	// A finished blob is answered from a read, without the blob's lock or
	// a write: repeated finishes must not queue behind (or ahead of) the
	// uploads of others.
	if b, err := s.ownBlob(ctx, owner, id, now); err != nil {
		return store.Blob{}, fmt.Errorf("sqlite: finish blob: %w", err)
	} else if b.Complete {
		return b, nil
	}
	lk := s.blobLock(id)
	lk.Lock()
	defer lk.Unlock()
	var b store.Blob
	err := s.write(ctx, 64, func(w *wtx) error {
		var (
			prefix int64
			err    error
		)
		b, prefix, err = scanBlob(w.queryRow(`SELECT `+blobColumns+` FROM blobs WHERE id = ?`, id[:]), id)
		if err != nil {
			return err
		}
		if b.Owner != owner || !b.LiveAt(now) {
			return store.ErrUnknownBlob
		}
		if b.Complete {
			return nil
		}
		if prefix < b.Parts() {
			return store.ErrBlobIncomplete
		}
		b.Complete, b.Expires = true, fromMillis(millis(expires))
		_, err = w.exec(`UPDATE blobs SET complete = 1, expires_ms = ? WHERE id = ?`, millis(expires), id[:])
		return err
	})
	if err != nil {
		return store.Blob{}, fmt.Errorf("sqlite: finish blob: %w", err)
	}
	return b, nil
}

// ReadBlob reads from the file of a complete, live blob.
func (s *Store) ReadBlob(ctx context.Context, id store.BlobID, off int64, p []byte, now time.Time) (int, int64, error) {
	b, err := s.blob(ctx, id)
	if err == nil && (!b.Complete || !b.LiveAt(now)) {
		err = store.ErrUnknownBlob
	}
	if err == nil && (off < 0 || off >= b.Size) {
		err = fmt.Errorf("offset %d in a blob of %d bytes: %w", off, b.Size, store.ErrBadRange)
	}
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: read blob: %w", err)
	}
	n := int(min(int64(len(p)), b.Size-off))
	f, err := os.Open(s.blobPath(id))
	if errors.Is(err, fs.ErrNotExist) {
		// Deleted since the metadata was read.
		err = store.ErrUnknownBlob
	}
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: read blob: %w", pathless(err))
	}
	defer f.Close()
	got, err := f.ReadAt(p[:n], off)
	if got == n {
		return n, b.Size, nil
	}
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return 0, 0, fmt.Errorf("sqlite: read blob: the blob's file: %w", pathless(err))
}

// pathless returns err without the file path of a *fs.PathError: a blob's
// path holds its identifier, which lets whoever knows it read the blob,
// and errors reach the server's log.
func pathless(err error) error {
	if pe, ok := errors.AsType[*fs.PathError](err); ok {
		return fmt.Errorf("%s of a blob file: %w", pe.Op, pe.Err)
	}
	return err
}

// deleteBlobsChunk is how many blobs one write operation of
// DeleteExpiredBlobs deletes at most: each may have thousands of part rows,
// and the writer is everyone's.
const deleteBlobsChunk = 16

// DeleteExpiredBlobs deletes the metadata of up to limit expired blobs,
// deleteBlobsChunk blobs a write operation that also lists them in
// blob_deletions, and then their files.
func (s *Store) DeleteExpiredBlobs(ctx context.Context, now time.Time, limit int) (int, error) {
	deleted := 0
	for deleted < limit {
		chunk := min(limit-deleted, deleteBlobsChunk)
		var n int64
		err := s.write(ctx, 64, func(w *wtx) error {
			var err error
			if n, err = w.exec(`INSERT OR IGNORE INTO blob_deletions (id)
				SELECT id FROM blobs WHERE expires_ms <= ? ORDER BY expires_ms LIMIT ?`, millis(now), chunk); err != nil {
				return err
			}
			_, err = w.exec(`DELETE FROM blobs WHERE id IN (SELECT id FROM blob_deletions)`)
			return err
		})
		if err != nil {
			return deleted, fmt.Errorf("sqlite: delete expired blobs: %w", err)
		}
		deleted += int(n)
		if int(n) < chunk {
			break
		}
	}
	if err := s.removeBlobFiles(ctx); err != nil {
		return deleted, fmt.Errorf("sqlite: delete expired blobs: %w", err)
	}
	return deleted, nil
}

// removeBlobFiles removes the files of the blobs listed in blob_deletions,
// and then the list. DeleteExpiredBlobs calls it after deleting blobs, and
// Open for the files a crash left.
func (s *Store) removeBlobFiles(ctx context.Context) error {
	var ids [][]byte
	err := s.read(func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, `SELECT id FROM blob_deletions`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id []byte
			if err := rows.Scan(&id); err != nil {
				return err
			}
			ids = append(ids, id)
		}
		return rows.Err()
	})
	if err != nil || len(ids) == 0 {
		return err
	}
	// A file that cannot be removed stays listed, and is tried again by
	// the next sweep; it does not hold the others back.
	var failed error
	ids = slices.DeleteFunc(ids, func(id []byte) bool {
		if len(id) != len(store.BlobID{}) {
			return false
		}
		if err := os.Remove(s.blobPath(store.BlobID(id))); err != nil && !errors.Is(err, fs.ErrNotExist) {
			failed = pathless(err)
			return true
		}
		return false
	})
	if len(ids) == 0 {
		return failed
	}
	err = s.write(ctx, 64*len(ids), func(w *wtx) error {
		for _, id := range ids {
			if _, err := w.exec(`DELETE FROM blob_deletions WHERE id = ?`, id); err != nil {
				return err
			}
		}
		return nil
	})
	return errors.Join(err, failed)
}

// BlobUsage sums the owner's live blobs.
func (s *Store) BlobUsage(ctx context.Context, owner string, now time.Time) (bytes int64, blobs int, err error) {
	err = s.read(func(db *sql.DB) error {
		st, err := s.readStmt(ctx, db, `SELECT coalesce(sum(size), 0), count(*) FROM blobs WHERE owner = ? AND expires_ms > ?`)
		if err != nil {
			return err
		}
		return st.QueryRowContext(ctx, owner, millis(now)).Scan(&bytes, &blobs)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("sqlite: blob usage: %w", err)
	}
	return bytes, blobs, nil
}

var _ store.BlobLister = (*Store)(nil)

// CompleteBlobs lists complete live blobs in ID order, for copying them.
func (s *Store) CompleteBlobs(ctx context.Context, after store.BlobID, limit int, now time.Time) ([]store.Blob, error) {
	var out []store.Blob
	err := s.read(func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, `SELECT id, `+blobColumns+` FROM blobs
			WHERE id > ? AND complete AND expires_ms > ? ORDER BY id LIMIT ?`, after[:], millis(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id []byte
			b, _, err := scanBlob(withID{rows, &id}, store.BlobID{})
			if err != nil {
				return err
			}
			if len(id) != len(b.ID) {
				return fmt.Errorf("blob ID of %d bytes", len(id))
			}
			b.ID = store.BlobID(id)
			out = append(out, b)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: list blobs: %w", err)
	}
	return out, nil
}

// withID is a row that holds a blob ID before what it is scanned for.
type withID struct {
	row scanner
	id  *[]byte
}

func (r withID) Scan(dest ...any) error { return r.row.Scan(append([]any{r.id}, dest...)...) }
