package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/spec/wire"
)

// The blob store keeps the parts of a blob as rows of blob_parts in the
// database, one bytea of wire.BlobPartSize bytes (the last one shorter) a
// part, next to the metadata in blobs (schema version 6). Several xchatd
// processes sharing the database thus serve the same blobs, with no shared
// file system and no other service to run; storing them in an
// S3-compatible object store instead is future work.
//
//   - PutPart stores the part in its own transaction, committed (durable)
//     before it returns. It holds a FOR KEY SHARE lock on the blob's row,
//     which parts written at once share, and which FinishBlob (FOR UPDATE)
//     and deletion wait for: a complete blob's parts never change.
//   - blobs.prefix is a lower bound of the received prefix (in parts).
//     Each PutPart, after its commit, walks the parts from it to the first
//     missing one and moves it on; the last PutPart to commit sees every
//     part, so the bound is exact once no part is being written. BlobState
//     and FinishBlob walk from it too.
//   - ReadBlob reads, in one statement (one snapshot), the metadata and the
//     slices of the parts the range overlaps (substring on an uncompressed
//     out-of-line value reads only the TOAST chunks it needs), so that
//     neither memory nor I/O grows with the blob.
//   - DeleteExpiredBlobs deletes the metadata and, by the foreign key's
//     cascade, the parts in one statement: no blob is ever readable in part.
//     (It deletes a few blobs a statement: a 5 GiB blob is 10,240 rows.)
//   - CreateBlob takes a transaction-level advisory lock on the owner, so
//     that concurrent creates, in any process, check the limits in turn.

// partSize is wire.BlobPartSize as an int64.
const partSize = int64(wire.BlobPartSize)

// The SQL below writes wire.BlobPartSize out as 524288; this does not
// compile unless that is right.
const _ = uint(wire.BlobPartSize-524288) + uint(524288-wire.BlobPartSize)

// partsOf is the number of parts of the blob b, in SQL.
const partsOf = `((b.size + 524287) / 524288)`

// walk is the index of the first missing part of the blob b from
// b.prefix on (its number of parts when none is missing), in SQL.
const walk = `coalesce((SELECT g FROM generate_series(b.prefix, ` + partsOf + ` - 1) AS g
	WHERE NOT EXISTS (SELECT 1 FROM blob_parts p WHERE p.blob_id = b.id AND p.idx = g) LIMIT 1), ` + partsOf + `)`

// blobColumns are the columns scanBlob reads; the last is the received
// prefix in parts.
const blobColumns = `b.owner, b.size, b.created_at_ms, b.expires_ms, b.complete,
	CASE WHEN b.complete THEN ` + partsOf + ` ELSE ` + walk + ` END`

// scanBlob reads a row of blobColumns (or of a query that returns the
// prefix hint last instead of the walked prefix) into a blob with ID id.
// No row becomes store.ErrUnknownBlob.
func scanBlob(row pgx.Row, id store.BlobID) (b store.Blob, prefix int64, err error) {
	var created, expires int64
	if err := row.Scan(&b.Owner, &b.Size, &created, &expires, &b.Complete, &prefix); err != nil {
		if isNoRows(err) {
			return b, 0, store.ErrUnknownBlob
		}
		return b, 0, err
	}
	b.ID, b.CreatedAt, b.Expires = id, fromMillis(created), fromMillis(expires)
	b.Received = min(prefix*partSize, b.Size)
	return b, prefix, nil
}

// lockOwner serialises the transactions that check the limits of one owner
// and create a blob, in every process sharing the schema.
const lockOwner = `SELECT pg_advisory_xact_lock(hashtextextended('xchat blob owner ' || current_schema() || ' ' || $1, 0))`

// CreateBlob records a new unfinished blob, checking the owner's limits
// under the owner's lock.
func (s *Store) CreateBlob(ctx context.Context, b store.Blob, l store.BlobLimits) error {
	if b.Size <= 0 || b.Size > wire.MaxBlobSize {
		return fmt.Errorf("postgres: create blob: size %d: %w", b.Size, store.ErrBadRange)
	}
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, lockOwner, b.Owner); err != nil {
			return err
		}
		var bytes, unfinished int64
		err := tx.QueryRow(ctx, `SELECT coalesce(sum(size), 0)::bigint, count(*) FILTER (WHERE NOT complete)
			FROM blobs WHERE owner = $1 AND expires_ms > $2`, b.Owner, millis(b.CreatedAt)).Scan(&bytes, &unfinished)
		if err != nil {
			return err
		}
		if l.Quota > 0 && bytes+b.Size > l.Quota {
			return store.ErrQuota
		}
		if l.MaxUnfinished > 0 && unfinished >= int64(l.MaxUnfinished) {
			return store.ErrLimit
		}
		_, err = tx.Exec(ctx, `INSERT INTO blobs (id, owner, size, created_at_ms, expires_ms) VALUES ($1, $2, $3, $4, $5)`,
			b.ID[:], b.Owner, b.Size, millis(b.CreatedAt), millis(b.Expires))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create blob: %w", err)
	}
	return nil
}

// PutPart stores the part in a transaction of its own, then moves the
// blob's prefix on.
func (s *Store) PutPart(ctx context.Context, owner string, id store.BlobID, index int64, data []byte, now time.Time) (store.Blob, error) {
	var (
		b     store.Blob
		hint  int64
		wrote bool
	)
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var err error
		b, hint, err = scanBlob(tx.QueryRow(ctx, `SELECT owner, size, created_at_ms, expires_ms, complete, prefix
			FROM blobs WHERE id = $1 FOR KEY SHARE`, id[:]), id)
		if err != nil {
			return err
		}
		if b.Owner != owner || !b.LiveAt(now) {
			return store.ErrUnknownBlob
		}
		if b.Complete {
			b.Received = b.Size
			return nil
		}
		if !b.FitsPart(index, data) {
			return fmt.Errorf("part %d of %d bytes into a blob of %d: %w", index, len(data), b.Size, store.ErrBadRange)
		}
		_, err = tx.Exec(ctx, `INSERT INTO blob_parts (blob_id, idx, data) VALUES ($1, $2, $3)
			ON CONFLICT (blob_id, idx) DO UPDATE SET data = excluded.data`, id[:], index, data)
		wrote = true
		return err
	})
	if err != nil {
		return store.Blob{}, fmt.Errorf("postgres: put part: %w", err)
	}
	if !wrote {
		return b, nil
	}
	err = s.with(ctx, func(c *pgxpool.Conn) error {
		var prefix int64
		err := c.QueryRow(ctx, `SELECT `+walk+` FROM blobs b WHERE b.id = $1`, id[:]).Scan(&prefix)
		if isNoRows(err) {
			return store.ErrUnknownBlob // deleted since
		}
		if err != nil {
			return err
		}
		b.Received = min(prefix*partSize, b.Size)
		if prefix > hint {
			_, err = c.Exec(ctx, `UPDATE blobs SET prefix = greatest(prefix, $2) WHERE id = $1`, id[:], prefix)
		}
		return err
	})
	if err != nil {
		return store.Blob{}, fmt.Errorf("postgres: put part: %w", err)
	}
	return b, nil
}

// BlobState reads the metadata of a live blob of owner.
func (s *Store) BlobState(ctx context.Context, owner string, id store.BlobID, now time.Time) (store.Blob, error) {
	var b store.Blob
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		var err error
		b, _, err = scanBlob(c.QueryRow(ctx, `SELECT `+blobColumns+` FROM blobs b WHERE b.id = $1`, id[:]), id)
		if err == nil && (b.Owner != owner || !b.LiveAt(now)) {
			err = store.ErrUnknownBlob
		}
		return err
	})
	if err != nil {
		return store.Blob{}, fmt.Errorf("postgres: blob state: %w", err)
	}
	return b, nil
}

// FinishBlob marks a fully received blob complete, once no part of it is
// being written.
func (s *Store) FinishBlob(ctx context.Context, owner string, id store.BlobID, now, expires time.Time) (store.Blob, error) {
	var b store.Blob
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		// Waits for the parts being written; the next statement sees them.
		if _, err := tx.Exec(ctx, `SELECT 1 FROM blobs WHERE id = $1 FOR UPDATE`, id[:]); err != nil {
			return err
		}
		var (
			prefix int64
			err    error
		)
		b, prefix, err = scanBlob(tx.QueryRow(ctx, `SELECT `+blobColumns+` FROM blobs b WHERE b.id = $1`, id[:]), id)
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
		_, err = tx.Exec(ctx, `UPDATE blobs SET complete = TRUE, prefix = $2, expires_ms = $3 WHERE id = $1`,
			id[:], prefix, millis(expires))
		return err
	})
	if err != nil {
		return store.Blob{}, fmt.Errorf("postgres: finish blob: %w", err)
	}
	return b, nil
}

// readBlob reads the size of the complete blob $1 live at $4 and the
// slices of its parts that overlap the bytes $2 to $3 (exclusive), in
// order: the blob's row alone (idx NULL) when none does. The offsets are
// bigint; the CASE keeps greatest and least, which skip NULLs, from
// computing an out-of-range slice length on that lone row.
const readBlob = `SELECT b.size, p.idx,
		CASE WHEN p.idx IS NOT NULL THEN
		substring(p.data FROM (greatest($2::bigint, p.idx * 524288) - p.idx * 524288 + 1)::integer
			FOR (least($3::bigint, b.size, (p.idx + 1) * 524288) - greatest($2::bigint, p.idx * 524288))::integer) END
	FROM blobs b LEFT JOIN blob_parts p ON p.blob_id = b.id AND $2::bigint >= 0 AND $2::bigint < b.size
		AND p.idx >= $2::bigint / 524288 AND p.idx <= (least($3::bigint, b.size) - 1) / 524288
	WHERE b.id = $1 AND b.complete AND b.expires_ms > $4
	ORDER BY p.idx`

// ReadBlob reads the range of a complete, live blob from the parts it
// overlaps, in one statement.
func (s *Store) ReadBlob(ctx context.Context, id store.BlobID, off int64, p []byte, now time.Time) (int, int64, error) {
	var (
		size  int64 = -1
		n     int
		idx   *int64
		slice []byte
	)
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, readBlob, id[:], off, off+int64(len(p)), millis(now))
		if err != nil {
			return err
		}
		_, err = pgx.ForEachRow(rows, []any{&size, &idx, &slice}, func() error {
			if idx == nil {
				return nil
			}
			if at := max(off, *idx*partSize) - off; at != int64(n) || n+len(slice) > len(p) {
				return fmt.Errorf("part %d of the blob: slice of %d bytes at %d, after %d bytes", *idx, len(slice), at, n)
			}
			n += copy(p[n:], slice)
			return nil
		})
		return err
	})
	switch {
	case err != nil:
	case size < 0:
		err = store.ErrUnknownBlob
	case off < 0 || off >= size:
		err = fmt.Errorf("offset %d in a blob of %d bytes: %w", off, size, store.ErrBadRange)
	case int64(n) != min(int64(len(p)), size-off):
		err = fmt.Errorf("read %d bytes at %d, want %d: parts missing", n, off, min(int64(len(p)), size-off))
	}
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: read blob: %w", err)
	}
	return n, size, nil
}

// deleteBlobsChunk is how many blobs one statement of DeleteExpiredBlobs
// deletes at most: each may have thousands of part rows.
const deleteBlobsChunk = 8

// DeleteExpiredBlobs deletes up to limit expired blobs, their parts with
// them, deleteBlobsChunk blobs a statement (a transaction); rows that other
// transactions hold are left for the next call.
func (s *Store) DeleteExpiredBlobs(ctx context.Context, now time.Time, limit int) (int, error) {
	deleted := 0
	for deleted < limit {
		chunk := min(limit-deleted, deleteBlobsChunk)
		var n int64
		err := s.with(ctx, func(c *pgxpool.Conn) error {
			ct, err := c.Exec(ctx, `DELETE FROM blobs WHERE id IN (SELECT id FROM blobs
				WHERE expires_ms <= $1 ORDER BY expires_ms LIMIT $2 FOR UPDATE SKIP LOCKED)`, millis(now), chunk)
			n = ct.RowsAffected()
			return err
		})
		if err != nil {
			return deleted, fmt.Errorf("postgres: delete expired blobs: %w", err)
		}
		deleted += int(n)
		if int(n) < chunk {
			break
		}
	}
	return deleted, nil
}

// BlobUsage sums the owner's live blobs.
func (s *Store) BlobUsage(ctx context.Context, owner string, now time.Time) (bytes int64, blobs int, err error) {
	err = s.with(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT coalesce(sum(size), 0)::bigint, count(*) FROM blobs WHERE owner = $1 AND expires_ms > $2`,
			owner, millis(now)).Scan(&bytes, &blobs)
	})
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: blob usage: %w", err)
	}
	return bytes, blobs, nil
}

var _ store.BlobLister = (*Store)(nil)

// CompleteBlobs lists complete live blobs in ID order, for copying them.
func (s *Store) CompleteBlobs(ctx context.Context, after store.BlobID, limit int, now time.Time) ([]store.Blob, error) {
	var out []store.Blob
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `SELECT b.id, `+blobColumns+` FROM blobs b
			WHERE b.id > $1 AND b.complete AND b.expires_ms > $2 ORDER BY b.id LIMIT $3`, after[:], millis(now), limit)
		if err != nil {
			return err
		}
		return scanAll(rows, func(r pgx.Rows) error {
			var id []byte
			b, _, err := scanBlob(withID{r, &id}, store.BlobID{})
			if err != nil {
				return err
			}
			if len(id) != len(b.ID) {
				return fmt.Errorf("blob ID of %d bytes", len(id))
			}
			b.ID = store.BlobID(id)
			out = append(out, b)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list blobs: %w", err)
	}
	return out, nil
}

// withID is a row that holds a blob ID before what it is scanned for.
type withID struct {
	row pgx.Row
	id  *[]byte
}

func (r withID) Scan(dest ...any) error { return r.row.Scan(append([]any{r.id}, dest...)...) }
