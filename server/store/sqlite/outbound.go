package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// The outbound queue. Every call that changes it, ClaimOutbound included, is
// a write operation of the single writer, so claims are serialised: a claim
// sees the leases of every claim before it, in the same transaction or an
// earlier one, and no row is handed to two claimers while its lease runs.
//
// A row is due at now when next_try_ms <= now in milliseconds. A new row has
// next_try_ms 0 (the Unix epoch), due at whatever clock a claimer reads: not
// from its ReceivedAt, which a claimer that read its clock a moment before,
// or whose clock is behind (another process), would see in the future. A
// claim moves next_try_ms to the end of its lease, RetryOutbound to the time
// it is given; both store at least 1, so that 0 marks the rows never claimed.
//
// That mark keeps claims cheap when a domain has a backlog of new rows. A
// claim takes the lowest Seqs among the due rows, and the outbound_due index
// (domain, next_try_ms, seq) lists the due rows of a domain ordered by
// next_try_ms first, so ordering them all by seq costs a sort of every due
// row. But the never-claimed rows are one run of that index already in seq
// order: the claim reads the first limit of them, sorts only the due rows
// that were claimed before (those whose lease ended or whose retry time
// came), and merges the two.

// EnqueueOutbound stores envelopes in the outbound queue, all in one
// transaction. An envelope whose (To, ID) is already queued is left as it
// is. Seq, Attempts and NextTry of out are ignored.
func (s *Store) EnqueueOutbound(ctx context.Context, out []store.Outbound) error {
	if s.isClosed() {
		return fmt.Errorf("sqlite: enqueue outbound: %w", store.ErrClosed)
	}
	if len(out) == 0 {
		return nil
	}
	size := 0
	for i := range out {
		size += len(out[i].Envelope.Sealed) + len(out[i].Token) + 128
	}
	err := s.write(ctx, size, func(w *wtx) error {
		for i := range out {
			o := &out[i]
			e := &o.Envelope
			var token any // NULL for a nil token
			if o.Token != nil {
				token = o.Token
			}
			if _, err := w.exec(`INSERT INTO outbound (domain, to_address, to_device, envelope_id, token, sealed,
					from_address, from_device, queued_at_ms, attempts, next_try_ms)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, 0)
				ON CONFLICT (to_address, to_device, envelope_id) DO NOTHING`,
				o.Domain, e.To.Address, int64(e.To.Device), e.ID[:], token, blob(e.Sealed),
				o.From.Address, int64(o.From.Device), millis(e.ReceivedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: enqueue outbound: %w", err)
	}
	return nil
}

// ClaimOutbound leases and returns up to limit envelopes for domain that are
// due at now: the limit lowest Seqs among them, in Seq order. The returned
// envelopes carry their leased state (NextTry the end of the lease, Attempts
// counting this claim). A limit below 1 claims none; a lease that is not
// positive is refused.
func (s *Store) ClaimOutbound(ctx context.Context, domain string, now time.Time, lease time.Duration, limit int) ([]store.Outbound, error) {
	if s.isClosed() {
		return nil, fmt.Errorf("sqlite: claim outbound: %w", store.ErrClosed)
	}
	if lease <= 0 {
		return nil, fmt.Errorf("sqlite: claim outbound: lease %v is not positive", lease)
	}
	if limit < 1 {
		return nil, nil
	}
	var out []store.Outbound
	err := s.write(ctx, 64, func(w *wtx) error {
		out = out[:0]
		rows, err := w.query(`UPDATE outbound SET next_try_ms = ?1, attempts = attempts + 1
			WHERE seq IN (
				SELECT seq FROM (
					SELECT seq FROM outbound WHERE domain = ?2 AND next_try_ms = 0 AND next_try_ms <= ?3
					ORDER BY seq LIMIT ?4
				)
				UNION ALL
				SELECT seq FROM (
					SELECT seq FROM outbound WHERE domain = ?2 AND next_try_ms > 0 AND next_try_ms <= ?3
					ORDER BY seq LIMIT ?4
				)
				ORDER BY seq LIMIT ?4
			) RETURNING seq, to_address, to_device, envelope_id, token, token IS NOT NULL, sealed,
				from_address, from_device, queued_at_ms, attempts, next_try_ms`,
			tryMillis(now.Add(lease)), domain, millis(now), limit)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			o := store.Outbound{Domain: domain}
			var (
				toDevice, fromDevice int64
				id                   []byte
				hasToken             bool
				queued, next         int64
			)
			if err := rows.Scan(&o.Seq, &o.Envelope.To.Address, &toDevice, &id, &o.Token, &hasToken,
				&o.Envelope.Sealed, &o.From.Address, &fromDevice, &queued, &o.Attempts, &next); err != nil {
				return err
			}
			if len(id) != len(o.Envelope.ID) {
				return fmt.Errorf("outbound envelope at seq %d has a %d-byte id", o.Seq, len(id))
			}
			copy(o.Envelope.ID[:], id)
			o.Envelope.To.Device = uint32(toDevice)
			o.From.Device = uint32(fromDevice)
			o.Envelope.ReceivedAt = fromMillis(queued)
			o.NextTry = fromMillis(next)
			if o.Envelope.Sealed == nil {
				o.Envelope.Sealed = []byte{}
			}
			switch {
			case !hasToken:
				o.Token = nil
			case o.Token == nil:
				o.Token = []byte{}
			}
			out = append(out, o)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: claim outbound: %w", err)
	}
	// RETURNING promises no order.
	slices.SortFunc(out, func(a, b store.Outbound) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// DeleteOutbound removes envelopes from the outbound queue; unknown Seqs are
// ignored.
func (s *Store) DeleteOutbound(ctx context.Context, seqs []int64) error {
	if s.isClosed() {
		return fmt.Errorf("sqlite: delete outbound: %w", store.ErrClosed)
	}
	if len(seqs) == 0 {
		return nil
	}
	err := s.write(ctx, 64+8*len(seqs), func(w *wtx) error {
		// Up to maxAckChunk rows per statement, padded to a power of two
		// with repeats (as Ack does), so that a few statements serve all.
		for rest := seqs; len(rest) > 0; {
			chunk := rest[:min(len(rest), maxAckChunk)]
			rest = rest[len(chunk):]
			n := 1
			for n < len(chunk) {
				n *= 2
			}
			args := make([]any, n)
			for i := range args {
				args[i] = chunk[min(i, len(chunk)-1)]
			}
			if _, err := w.exec(deleteOutboundStatements[n], args...); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete outbound: %w", err)
	}
	return nil
}

// deleteOutboundStatements holds the statements of DeleteOutbound by the
// number of Seqs they name: 1, 2, 4, ... maxAckChunk.
var deleteOutboundStatements = func() map[int]string {
	m := make(map[int]string)
	for n := 1; n <= maxAckChunk; n *= 2 {
		m[n] = `DELETE FROM outbound WHERE seq IN (?` + strings.Repeat(`, ?`, n-1) + `)`
	}
	return m
}()

// RetryOutbound makes queued envelopes due again at at (rounded up to the
// millisecond, and not before 1 ms after the Unix epoch); unknown Seqs are
// ignored. Attempts is left as it is.
func (s *Store) RetryOutbound(ctx context.Context, seqs []int64, at time.Time) error {
	if s.isClosed() {
		return fmt.Errorf("sqlite: retry outbound: %w", store.ErrClosed)
	}
	if len(seqs) == 0 {
		return nil
	}
	next := tryMillis(at)
	err := s.write(ctx, 64+8*len(seqs), func(w *wtx) error {
		for _, seq := range seqs {
			if _, err := w.exec(`UPDATE outbound SET next_try_ms = ? WHERE seq = ?`, next, seq); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: retry outbound: %w", err)
	}
	return nil
}

// OutboundDomains returns every domain with queued envelopes and the
// earliest NextTry among them, in domain (byte) order. It skips through the
// outbound_due index, one seek per domain, rather than reading every queued
// row.
func (s *Store) OutboundDomains(ctx context.Context) ([]store.OutboundDomain, error) {
	var out []store.OutboundDomain
	err := s.read(func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, `WITH RECURSIVE d(domain) AS (
				SELECT (SELECT domain FROM outbound ORDER BY domain LIMIT 1)
				UNION ALL
				SELECT (SELECT domain FROM outbound WHERE domain > d.domain ORDER BY domain LIMIT 1)
				FROM d WHERE d.domain IS NOT NULL
			)
			SELECT domain, (SELECT next_try_ms FROM outbound o WHERE o.domain = d.domain ORDER BY next_try_ms LIMIT 1)
			FROM d WHERE domain IS NOT NULL ORDER BY domain`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				d    store.OutboundDomain
				next int64
			)
			if err := rows.Scan(&d.Domain, &next); err != nil {
				return err
			}
			d.NextTry = fromMillis(next)
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: outbound domains: %w", err)
	}
	return out, nil
}

// tryMillis is t as a next_try_ms of a row that was claimed: integer
// milliseconds since the Unix epoch, rounded up so that the row is not due
// before t, and at least 1, since 0 marks the rows never claimed.
func tryMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return max(ms, 1)
}

// OutboundUsage returns the envelopes and sealed bytes queued by each
// submitting account for each domain.
func (s *Store) OutboundUsage(ctx context.Context) ([]store.OutboundUse, error) {
	var out []store.OutboundUse
	err := s.read(func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx, `SELECT from_address, domain, count(*), sum(length(sealed))
			FROM outbound GROUP BY from_address, domain`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var u store.OutboundUse
			if err := rows.Scan(&u.From, &u.Domain, &u.Envelopes, &u.Bytes); err != nil {
				return err
			}
			out = append(out, u)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: outbound usage: %w", err)
	}
	return out, nil
}
