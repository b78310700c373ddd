package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// expireChunk is how many envelopes one Expire transaction deletes at most,
// so that a large expiry does not hold up other writes.
const expireChunk = 1000

// box is what an Enqueue transaction knows about one mailbox.
type box struct {
	missing bool  // the device is not registered
	count   int   // envelopes waiting
	bytes   int64 // sealed bytes waiting
	seq     int64 // the last sequence number the mailbox assigned
	added   bool  // count and bytes changed
	// origins holds what each origin domain's relayed envelopes hold of
	// the mailbox, read when the call first needs it.
	origins map[string]*usage
}

// usage is what some envelopes of a mailbox hold.
type usage struct {
	count int
	bytes int64
}

// originUsage returns what the envelopes relayed from origin hold of
// mailbox mb, read once per Enqueue.
func originUsage(w *wtx, b *box, mb store.Mailbox, origin string) (*usage, error) {
	if u := b.origins[origin]; u != nil {
		return u, nil
	}
	u := &usage{}
	err := w.queryRow(`SELECT count(*), coalesce(sum(size), 0) FROM mailbox
		WHERE address = ? AND device = ? AND origin = ? AND origin <> ''`,
		mb.Address, int64(mb.Device), origin).Scan(&u.count, &u.bytes)
	if err != nil {
		return nil, err
	}
	if b.origins == nil {
		b.origins = make(map[string]*usage)
	}
	b.origins[origin] = u
	return u, nil
}

// Enqueue stores envelopes durably, all in one transaction, and returns one
// result per envelope.
func (s *Store) Enqueue(ctx context.Context, envs []store.Envelope) ([]error, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("sqlite: enqueue: %w", store.ErrClosed)
	}
	if len(envs) == 0 {
		return []error{}, nil
	}
	size := 0
	for i := range envs {
		size += len(envs[i].Sealed) + 64
	}
	results := make([]error, len(envs))
	err := s.write(ctx, size, func(w *wtx) error {
		boxes := make(map[store.Mailbox]*box)
		for i := range envs {
			e := &envs[i]
			b := boxes[e.To]
			if b == nil {
				b = &box{}
				err := w.queryRow(`SELECT mb_count, mb_bytes, mb_seq FROM devices WHERE address = ? AND id = ?`,
					e.To.Address, int64(e.To.Device)).Scan(&b.count, &b.bytes, &b.seq)
				if errors.Is(err, sql.ErrNoRows) {
					b.missing = true
				} else if err != nil {
					return err
				}
				boxes[e.To] = b
			}
			var err error
			results[i], err = s.enqueueOne(w, b, e)
			if err != nil {
				return err
			}
		}
		for mb, b := range boxes {
			if b.added {
				if _, err := w.exec(`UPDATE devices SET mb_count = ?, mb_bytes = ?, mb_seq = ? WHERE address = ? AND id = ?`,
					b.count, b.bytes, b.seq, mb.Address, int64(mb.Device)); err != nil {
					return err
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: enqueue: %w", err)
	}
	return results, nil
}

// enqueueOne stores one envelope in mailbox b and returns its result, or an
// error that fails the whole Enqueue.
func (s *Store) enqueueOne(w *wtx, b *box, e *store.Envelope) (result, err error) {
	if b.missing {
		return store.ErrUnknownDevice, nil
	}
	size := int64(len(e.Sealed))
	full := (s.limits.MailboxMaxEnvelopes > 0 && b.count+1 > s.limits.MailboxMaxEnvelopes) ||
		(s.limits.MailboxMaxBytes > 0 && b.bytes+size > s.limits.MailboxMaxBytes)
	// One origin domain's relayed envelopes hold at most their share
	// (spec/07-envelopes.md section 7.13).
	var origin *usage
	if e.Origin != "" && !full && (s.limits.OriginMaxEnvelopes > 0 || s.limits.OriginMaxBytes > 0) {
		if origin, err = originUsage(w, b, e.To, e.Origin); err != nil {
			return nil, err
		}
		full = (s.limits.OriginMaxEnvelopes > 0 && origin.count+1 > s.limits.OriginMaxEnvelopes) ||
			(s.limits.OriginMaxBytes > 0 && origin.bytes+size > s.limits.OriginMaxBytes)
	}
	if full {
		// An envelope already waiting is stored, however full its mailbox.
		var one int
		err := w.queryRow(`SELECT 1 FROM mailbox WHERE address = ? AND device = ? AND envelope_id = ?`,
			e.To.Address, int64(e.To.Device), e.ID[:]).Scan(&one)
		switch {
		case err == nil:
			return nil, nil
		case errors.Is(err, sql.ErrNoRows):
			return store.ErrLimit, nil
		default:
			return nil, err
		}
	}
	// seq is the mailbox's own counter's next. (The row's id, which SQLite
	// assigns, only addresses the row: random ids, which would scatter the
	// rows of one send in the table, made Enqueue two to three times
	// slower, and the overflow pages of the sealed bytes would still be
	// allocated in the order of arrival; spec/16-security.md section 16.11
	// says what the file layout keeps.)
	n, err := w.exec(`INSERT INTO mailbox (address, device, seq, envelope_id, lane, received_at_ms, size, sealed, origin)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (address, device, envelope_id) DO NOTHING`,
		e.To.Address, int64(e.To.Device), b.seq+1, e.ID[:], int64(e.Lane), millis(e.ReceivedAt), size, blob(e.Sealed), e.Origin)
	if err != nil {
		return nil, err
	}
	if n == 1 { // not a duplicate
		b.seq++
		b.count++
		b.bytes += size
		b.added = true
		if origin != nil {
			origin.count++
			origin.bytes += size
		}
	}
	return nil, nil
}

// Pending returns up to limit envelopes waiting in a mailbox after the given
// sequence number, in sequence order. A limit below 1 returns none.
func (s *Store) Pending(ctx context.Context, mb store.Mailbox, after int64, limit int) ([]store.Stored, error) {
	var out []store.Stored
	err := s.read(func(db *sql.DB) error {
		if limit < 1 {
			return nil
		}
		st, err := s.readStmt(ctx, db, `SELECT seq, envelope_id, lane, received_at_ms, sealed, origin
			FROM mailbox WHERE address = ? AND device = ? AND seq > ? ORDER BY seq LIMIT ?`)
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, mb.Address, int64(mb.Device), after, limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				st       store.Stored
				id       []byte
				lane, at int64
			)
			if err := rows.Scan(&st.Seq, &id, &lane, &at, &st.Sealed, &st.Origin); err != nil {
				return err
			}
			if len(id) != len(st.ID) {
				return fmt.Errorf("envelope at seq %d has a %d-byte id", st.Seq, len(id))
			}
			copy(st.ID[:], id)
			st.To = mb
			st.Lane = store.Lane(lane)
			st.ReceivedAt = fromMillis(at)
			if st.Sealed == nil {
				st.Sealed = []byte{}
			}
			out = append(out, st)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: pending: %w", err)
	}
	return out, nil
}

// CommitsInSeqOrder reports that envelopes become visible in sequence
// order: one writer assigns sequence numbers inside the transactions it
// commits one after the other, so no envelope can later appear below one a
// reader has seen. Pushers use it to read only what is new.
func (s *Store) CommitsInSeqOrder() bool { return true }

// Ack deletes envelopes from a mailbox; unknown IDs are ignored.
func (s *Store) Ack(ctx context.Context, mb store.Mailbox, ids []store.EnvelopeID) error {
	if s.isClosed() {
		return fmt.Errorf("sqlite: ack: %w", store.ErrClosed)
	}
	if len(ids) == 0 {
		return nil
	}
	err := s.write(ctx, 64+16*len(ids), func(w *wtx) error {
		var count, bytes int64
		for rest := ids; len(rest) > 0; {
			chunk := rest[:min(len(rest), maxAckChunk)]
			rest = rest[len(chunk):]
			c, b, err := ackChunk(w, mb, chunk)
			if err != nil {
				return err
			}
			count += c
			bytes += b
		}
		return removed(w, mb, count, bytes)
	})
	if err != nil {
		return fmt.Errorf("sqlite: ack: %w", err)
	}
	return nil
}

// maxAckChunk is the most envelope ids one DELETE statement of Ack names.
const maxAckChunk = 64

// ackStatements holds the DELETE statements of ackChunk, by the number of
// ids they name: 1, 2, 4, ... maxAckChunk.
var ackStatements = func() map[int]string {
	m := make(map[int]string)
	for n := 1; n <= maxAckChunk; n *= 2 {
		m[n] = `DELETE FROM mailbox WHERE address = ? AND device = ? AND envelope_id IN (?` +
			strings.Repeat(`, ?`, n-1) + `) RETURNING size`
	}
	return m
}()

// ackChunk deletes up to maxAckChunk envelopes of a mailbox in one
// statement and returns how many it deleted and their sealed bytes. The ids
// are padded to a power of two with repeats of the last, so that a few
// prepared statements serve every count; a repeated id changes nothing.
func ackChunk(w *wtx, mb store.Mailbox, ids []store.EnvelopeID) (count, bytes int64, err error) {
	n := 1
	for n < len(ids) {
		n *= 2
	}
	args := make([]any, 0, 2+n)
	args = append(args, mb.Address, int64(mb.Device))
	for i := range n {
		id := &ids[min(i, len(ids)-1)]
		args = append(args, id[:])
	}
	rows, err := w.query(ackStatements[n], args...)
	if err != nil {
		return 0, 0, err
	}
	defer rows.Close()
	for rows.Next() {
		var size int64
		if err := rows.Scan(&size); err != nil {
			return 0, 0, err
		}
		count++
		bytes += size
	}
	return count, bytes, rows.Err()
}

// Expire deletes every envelope received before the given time and returns
// how many. It deletes in several transactions of at most expireChunk
// envelopes; when it fails, the count says how many were deleted before.
func (s *Store) Expire(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		var n int64
		err := s.write(ctx, 64, func(w *wtx) error {
			n = 0
			type sum struct{ count, bytes int64 }
			sums := make(map[store.Mailbox]*sum)
			rows, err := w.query(`DELETE FROM mailbox WHERE id IN (
					SELECT id FROM mailbox WHERE received_at_ms < ? ORDER BY received_at_ms LIMIT ?
				) RETURNING address, device, size`,
				millis(before), expireChunk)
			if err != nil {
				return err
			}
			defer rows.Close()
			for rows.Next() {
				var (
					mb     store.Mailbox
					device int64
					size   int64
				)
				if err := rows.Scan(&mb.Address, &device, &size); err != nil {
					return err
				}
				mb.Device = uint32(device)
				su := sums[mb]
				if su == nil {
					su = &sum{}
					sums[mb] = su
				}
				su.count++
				su.bytes += size
				n++
			}
			if err := rows.Err(); err != nil {
				return err
			}
			for mb, su := range sums {
				if err := removed(w, mb, su.count, su.bytes); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("sqlite: expire: %w", err)
		}
		total += int(n)
		if n < expireChunk {
			break
		}
	}
	if total > 0 {
		s.log.Info("sqlite: expired envelopes", "count", total)
	}
	return total, nil
}

// removed updates a mailbox's counters after count envelopes of bytes sealed
// bytes in total were deleted from it.
func removed(w *wtx, mb store.Mailbox, count, bytes int64) error {
	if count == 0 {
		return nil
	}
	_, err := w.exec(`UPDATE devices SET mb_count = mb_count - ?, mb_bytes = mb_bytes - ?
		WHERE address = ? AND id = ?`, count, bytes, mb.Address, int64(mb.Device))
	return err
}
