package postgres

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xchat-im/xchat/server/store"
)

// The outbound queue, as in the SQLite backend: a row is due at now when
// next_try_ms <= now in milliseconds. A new row has next_try_ms 0, due at
// whatever clock a claimer reads; a claim moves next_try_ms to the end of
// its lease, RetryOutbound to the time it is given, both at least 1, so that
// 0 marks the rows never claimed. The never-claimed rows of a domain are one
// run of the outbound_due index (domain, next_try_ms, seq) already in seq
// order, so a claim reads the first limit of them, sorts only the due rows
// claimed before, and merges the two.
//
// A claim is one statement: it locks the rows it picks with FOR UPDATE SKIP
// LOCKED and moves their next_try_ms in the same statement. A concurrent
// claim, in this process or another, skips the rows locked, and once the
// claim committed, finds them no longer due: no row goes to two claimers
// while its lease runs.

// EnqueueOutbound stores envelopes in the outbound queue, in one statement.
// An envelope whose (To, ID) is already queued is left as it is. Seq,
// Attempts and NextTry of out are ignored.
func (s *Store) EnqueueOutbound(ctx context.Context, out []store.Outbound) error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: enqueue outbound: %w", store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: enqueue outbound: %w", err)
	}
	if len(out) == 0 {
		return nil
	}
	var r outboundRows
	for i := range out {
		o := out[i]
		o.Attempts, o.NextTry = 0, time.UnixMilli(0)
		r.add(&o)
	}
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, insertOutbound+` ON CONFLICT (to_address, to_device, envelope_id) DO NOTHING`, r.args()...)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: enqueue outbound: %w", err)
	}
	return nil
}

// insertOutbound queues envelopes given as arrays, in array order.
const insertOutbound = `INSERT INTO outbound (domain, to_address, to_device, envelope_id, token, sealed,
		from_address, from_device, queued_at_ms, attempts, next_try_ms)
	SELECT u.domain, u.to_address, u.to_device, u.id, u.token, u.sealed,
		u.from_address, u.from_device, u.queued, u.attempts, u.next_try
	FROM unnest($1::text[], $2::text[], $3::bigint[], $4::bytea[], $5::bytea[], $6::bytea[],
		$7::text[], $8::bigint[], $9::bigint[], $10::integer[], $11::bigint[])
		WITH ORDINALITY AS u(domain, to_address, to_device, id, token, sealed,
			from_address, from_device, queued, attempts, next_try, ord)
	ORDER BY u.ord`

// outboundRows are outbound envelopes as the array parameters of
// insertOutbound.
type outboundRows struct {
	domains, toAddrs, fromAddrs []string
	toDevs, fromDevs            []int64
	ids, tokens, sealed         [][]byte
	queued, nextTry             []int64
	attempts                    []int32
}

func (r *outboundRows) add(o *store.Outbound) {
	e := &o.Envelope
	r.domains = append(r.domains, o.Domain)
	r.toAddrs = append(r.toAddrs, e.To.Address)
	r.toDevs = append(r.toDevs, int64(e.To.Device))
	r.ids = append(r.ids, e.ID[:])
	r.tokens = append(r.tokens, o.Token) // nil is NULL, for the request lane
	r.sealed = append(r.sealed, blob(e.Sealed))
	r.fromAddrs = append(r.fromAddrs, o.From.Address)
	r.fromDevs = append(r.fromDevs, int64(o.From.Device))
	r.queued = append(r.queued, millis(e.ReceivedAt))
	r.attempts = append(r.attempts, int32(o.Attempts))
	r.nextTry = append(r.nextTry, millis(o.NextTry))
}

func (r *outboundRows) args() []any {
	return []any{r.domains, r.toAddrs, r.toDevs, r.ids, r.tokens, r.sealed,
		r.fromAddrs, r.fromDevs, r.queued, r.attempts, r.nextTry}
}

// ClaimOutbound leases and returns up to limit envelopes for domain that are
// due at now: the limit lowest Seqs among those no concurrent claim holds,
// in Seq order. The returned envelopes carry their leased state (NextTry the
// end of the lease, Attempts counting this claim). A limit below 1 claims
// none; a lease that is not positive is refused.
func (s *Store) ClaimOutbound(ctx context.Context, domain string, now time.Time, lease time.Duration, limit int) ([]store.Outbound, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("postgres: claim outbound: %w", store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("postgres: claim outbound: %w", err)
	}
	if lease <= 0 {
		return nil, fmt.Errorf("postgres: claim outbound: lease %v is not positive", lease)
	}
	if limit < 1 {
		return nil, nil
	}
	var out []store.Outbound
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `WITH fresh AS (
				SELECT seq FROM outbound WHERE domain = $2 AND next_try_ms = 0 AND next_try_ms <= $3
				ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED
			), again AS (
				SELECT seq FROM outbound WHERE domain = $2 AND next_try_ms > 0 AND next_try_ms <= $3
				ORDER BY seq LIMIT $4 FOR UPDATE SKIP LOCKED
			), pick AS (
				SELECT seq FROM fresh UNION ALL SELECT seq FROM again ORDER BY seq LIMIT $4
			)
			UPDATE outbound o SET next_try_ms = $1, attempts = o.attempts + 1 FROM pick
			WHERE o.seq = pick.seq
			RETURNING o.seq, o.to_address, o.to_device, o.envelope_id, o.token, o.sealed,
				o.from_address, o.from_device, o.queued_at_ms, o.attempts, o.next_try_ms`,
			tryMillis(now.Add(lease)), domain, millis(now), int64(limit))
		if err != nil {
			return err
		}
		return scanAll(rows, func(r pgx.Rows) error {
			o := store.Outbound{Domain: domain}
			var (
				toDevice, fromDevice int64
				id                   []byte
				queued, next         int64
				attempts             int32
			)
			if err := r.Scan(&o.Seq, &o.Envelope.To.Address, &toDevice, &id, &o.Token, &o.Envelope.Sealed,
				&o.From.Address, &fromDevice, &queued, &attempts, &next); err != nil {
				return err
			}
			if len(id) != len(o.Envelope.ID) {
				return fmt.Errorf("outbound envelope at seq %d has a %d-byte id", o.Seq, len(id))
			}
			copy(o.Envelope.ID[:], id)
			o.Envelope.To.Device = uint32(toDevice)
			o.From.Device = uint32(fromDevice)
			o.Envelope.ReceivedAt = fromMillis(queued)
			o.Envelope.Sealed = blob(o.Envelope.Sealed)
			o.Attempts = int(attempts)
			o.NextTry = fromMillis(next)
			out = append(out, o)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: claim outbound: %w", err)
	}
	// RETURNING promises no order.
	slices.SortFunc(out, func(a, b store.Outbound) int { return cmp.Compare(a.Seq, b.Seq) })
	return out, nil
}

// DeleteOutbound removes envelopes from the outbound queue; unknown Seqs are
// ignored.
func (s *Store) DeleteOutbound(ctx context.Context, seqs []int64) error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: delete outbound: %w", store.ErrClosed)
	}
	if len(seqs) == 0 {
		return nil
	}
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `DELETE FROM outbound WHERE seq = ANY($1::bigint[])`, seqs)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: delete outbound: %w", err)
	}
	return nil
}

// RetryOutbound makes queued envelopes due again at at (rounded up to the
// millisecond, and not before 1 ms after the Unix epoch); unknown Seqs are
// ignored. Attempts is left as it is.
func (s *Store) RetryOutbound(ctx context.Context, seqs []int64, at time.Time) error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: retry outbound: %w", store.ErrClosed)
	}
	if len(seqs) == 0 {
		return nil
	}
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `UPDATE outbound SET next_try_ms = $1 WHERE seq = ANY($2::bigint[])`, tryMillis(at), seqs)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: retry outbound: %w", err)
	}
	return nil
}

// OutboundDomains returns every domain with queued envelopes and the
// earliest NextTry among them, in domain (byte) order. It skips through the
// outbound_due index, one seek per domain, rather than reading every queued
// row.
func (s *Store) OutboundDomains(ctx context.Context) ([]store.OutboundDomain, error) {
	var out []store.OutboundDomain
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `WITH RECURSIVE d(domain) AS (
				SELECT (SELECT domain FROM outbound ORDER BY domain LIMIT 1)
				UNION ALL
				SELECT (SELECT o.domain FROM outbound o WHERE o.domain > d.domain ORDER BY o.domain LIMIT 1)
				FROM d WHERE d.domain IS NOT NULL
			)
			SELECT domain, (SELECT o.next_try_ms FROM outbound o WHERE o.domain = d.domain ORDER BY o.next_try_ms LIMIT 1)
			FROM d WHERE domain IS NOT NULL ORDER BY domain`)
		if err != nil {
			return err
		}
		return scanAll(rows, func(r pgx.Rows) error {
			var (
				d    store.OutboundDomain
				next *int64 // NULL when the domain's last row went meanwhile
			)
			if err := r.Scan(&d.Domain, &next); err != nil {
				return err
			}
			if next != nil {
				d.NextTry = fromMillis(*next)
				out = append(out, d)
			}
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: outbound domains: %w", err)
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
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `SELECT from_address, domain, count(*), sum(octet_length(sealed))::bigint
			FROM outbound GROUP BY from_address, domain`)
		if err != nil {
			return err
		}
		return scanAll(rows, func(r pgx.Rows) error {
			var u store.OutboundUse
			if err := r.Scan(&u.From, &u.Domain, &u.Envelopes, &u.Bytes); err != nil {
				return err
			}
			out = append(out, u)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: outbound usage: %w", err)
	}
	return out, nil
}
