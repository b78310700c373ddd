package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xchat-im/xchat/server/store"
)

// expireChunk is how many envelopes one Expire transaction deletes at most,
// so that a large expiry holds few locks at a time.
const expireChunk = 1000

// lockDevices locks the rows of the devices $1[i], $2[i] in (address, id)
// order, the order every transaction that locks several takes, and reads
// their mailbox counters.
const lockDevices = `SELECT address, id, mb_count, mb_bytes FROM devices
	WHERE (address, id) IN (SELECT * FROM unnest($1::text[], $2::bigint[]))
	ORDER BY address, id FOR NO KEY UPDATE`

// insertEnvelopes stores envelopes given as arrays, in array order (so that
// their Seqs follow it), skips those already waiting, adds what it stored to
// the counters of their mailboxes and notifies each mailbox once. The
// notifications are delivered when the transaction commits. Each mailbox
// numbers its envelopes from its own counter, devices.mb_seq (a duplicate
// leaves a gap).
const insertEnvelopes = `WITH ins AS (
		INSERT INTO mailbox (address, device, seq, envelope_id, lane, received_at_ms, size, sealed, origin)
		SELECT u.address, u.device, d.mb_seq + row_number() OVER (PARTITION BY u.address, u.device ORDER BY u.ord),
			u.id, u.lane, u.received, octet_length(u.sealed), u.sealed, u.origin
		FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::smallint[], $5::bigint[], $6::bytea[], $7::text[])
			WITH ORDINALITY AS u(address, device, id, lane, received, sealed, origin, ord)
			JOIN devices d ON d.address = u.address AND d.id = u.device
		ORDER BY u.ord
		ON CONFLICT (address, device, envelope_id) DO NOTHING
		RETURNING address, device, seq, size
	), sums AS (
		SELECT address, device, count(*) AS n, sum(size) AS bytes, max(seq) AS last FROM ins GROUP BY address, device
	), upd AS (
		UPDATE devices d SET mb_count = d.mb_count + s.n, mb_bytes = d.mb_bytes + s.bytes, mb_seq = s.last
		FROM sums s WHERE d.address = s.address AND d.id = s.device
		RETURNING d.address, d.id
	)
	SELECT pg_notify('xchat_mailbox', address || ' ' || id) FROM upd`

// box is what an Enqueue transaction knows about one mailbox.
type box struct {
	found        bool  // the device is registered (its row is locked)
	count, bytes int64 // envelopes and sealed bytes waiting
}

// entry names one envelope of one mailbox.
type entry struct {
	mb store.Mailbox
	id store.EnvelopeID
}

// envelopeRows are envelopes as the array parameters of insertEnvelopes.
type envelopeRows struct {
	addrs    []string
	devs     []int64
	ids      [][]byte
	lanes    []int16
	received []int64
	sealed   [][]byte
	origins  []string
}

func (r *envelopeRows) add(e *store.Envelope) {
	r.addrs = append(r.addrs, e.To.Address)
	r.devs = append(r.devs, int64(e.To.Device))
	r.ids = append(r.ids, e.ID[:])
	r.lanes = append(r.lanes, int16(e.Lane))
	r.received = append(r.received, millis(e.ReceivedAt))
	r.sealed = append(r.sealed, blob(e.Sealed))
	r.origins = append(r.origins, e.Origin)
}

// args returns the first six parameters of insertEnvelopes and
// enqueueFast; insertEnvelopes takes the origins as the seventh.
func (r *envelopeRows) args() []any {
	return []any{r.addrs, r.devs, r.ids, r.lanes, r.received, r.sealed}
}

// enqueueFast stores envelopes as insertEnvelopes does, in their array
// parameters, but only when every mailbox they go to has room for all of
// them (counting those already waiting too, as if new), and reports with
// ok whether it did. Envelopes to devices that are not registered are left
// out. $7 and $8 are the limits, not enforced when not positive.
const enqueueFast = `WITH u AS (
		SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[], $4::smallint[], $5::bigint[], $6::bytea[])
			WITH ORDINALITY AS u(address, device, id, lane, received, sealed, ord)
	), box AS (
		SELECT d.address, d.id, d.mb_count + count(*) AS n, d.mb_bytes + sum(octet_length(u.sealed)) AS bytes, d.mb_seq
		FROM u JOIN devices d ON d.address = u.address AND d.id = u.device
		GROUP BY d.address, d.id
	), fits AS (
		SELECT coalesce(bool_and(($7::bigint <= 0 OR n <= $7::bigint) AND ($8::bigint <= 0 OR bytes <= $8::bigint)), TRUE) AS ok FROM box
	), ins AS (
		INSERT INTO mailbox (address, device, seq, envelope_id, lane, received_at_ms, size, sealed)
		SELECT u.address, u.device, b.mb_seq + row_number() OVER (PARTITION BY u.address, u.device ORDER BY u.ord),
			u.id, u.lane, u.received, octet_length(u.sealed), u.sealed
		FROM u JOIN box b ON b.address = u.address AND b.id = u.device
		WHERE (SELECT ok FROM fits)
		ORDER BY u.ord
		ON CONFLICT (address, device, envelope_id) DO NOTHING
		RETURNING address, device, seq, size
	), sums AS (
		SELECT address, device, count(*) AS n, sum(size) AS bytes, max(seq) AS last FROM ins GROUP BY address, device
	), upd AS (
		UPDATE devices d SET mb_count = d.mb_count + s.n, mb_bytes = d.mb_bytes + s.bytes, mb_seq = s.last
		FROM sums s WHERE d.address = s.address AND d.id = s.device
		RETURNING d.address, d.id
	), notified AS (
		SELECT pg_notify('xchat_mailbox', address || ' ' || id) FROM upd
	)
	SELECT ok, (SELECT count(*) FROM notified) FROM fits`

// Enqueue stores envelopes durably, all in one transaction, and returns one
// result per envelope. The rows of the mailboxes' devices are locked first
// and stay locked until the commit, so that concurrent calls, in this
// process or others, see each other's counters.
//
// When the mailboxes have room for all the envelopes, that is one round
// trip: BEGIN, the locks, a conditional insert and COMMIT, pipelined. When
// one may fill up, the insert does nothing and a second transaction looks
// up which envelopes are already waiting (they take no room) before it
// decides, envelope by envelope, which to store.
func (s *Store) Enqueue(ctx context.Context, envs []store.Envelope) ([]error, error) {
	if s.closed.Load() {
		return nil, fmt.Errorf("postgres: enqueue: %w", store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("postgres: enqueue: %w", err)
	}
	if len(envs) == 0 {
		return []error{}, nil
	}
	e := &enqueueOp{s: s, envs: envs, boxes: make(map[store.Mailbox]*box), results: make([]error, len(envs))}
	for i := range envs {
		env := &envs[i]
		if e.boxes[env.To] == nil {
			e.boxes[env.To] = &box{}
			e.addrs = append(e.addrs, env.To.Address)
			e.devs = append(e.devs, int64(env.To.Device))
		}
	}
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		ok, err := e.fast(ctx, c)
		if err != nil || ok {
			return err
		}
		return e.slow(ctx, c)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: enqueue: %w", err)
	}
	return e.results, nil
}

// enqueueOp is one call of Enqueue.
type enqueueOp struct {
	s       *Store
	envs    []store.Envelope
	boxes   map[store.Mailbox]*box
	addrs   []string // of the mailboxes, each once
	devs    []int64
	results []error
}

// lock queues on b the query that locks the devices of the mailboxes and
// reads their counters.
func (e *enqueueOp) lock(b *pgx.Batch) {
	for _, x := range e.boxes {
		x.found, x.count, x.bytes = false, 0, 0
	}
	b.Queue(lockDevices, e.addrs, e.devs).Query(func(rows pgx.Rows) error {
		return scanAll(rows, func(r pgx.Rows) error {
			var (
				mb     store.Mailbox
				device int64
				b      box
			)
			if err := r.Scan(&mb.Address, &device, &b.count, &b.bytes); err != nil {
				return err
			}
			mb.Device = uint32(device)
			if x := e.boxes[mb]; x != nil {
				x.found, x.count, x.bytes = true, b.count, b.bytes
			}
			return nil
		})
	})
}

// fast stores all the envelopes in one round trip if their mailboxes have
// room for all of them, and reports whether it did. It leaves relayed
// envelopes, whose origin it neither stores nor checks the share of, to
// slow.
func (e *enqueueOp) fast(ctx context.Context, c *pgxpool.Conn) (ok bool, err error) {
	for i := range e.envs {
		if e.envs[i].Origin != "" {
			return false, nil
		}
	}
	var rows envelopeRows
	for i := range e.envs {
		rows.add(&e.envs[i])
	}
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	e.lock(b)
	b.Queue(enqueueFast, append(rows.args(), int64(e.s.limits.MailboxMaxEnvelopes), e.s.limits.MailboxMaxBytes)...).
		QueryRow(func(r pgx.Row) error {
			var notified int64
			return r.Scan(&ok, &notified)
		})
	b.Queue(`COMMIT`) // commits nothing when not ok
	if err := send(ctx, c, b); err != nil || !ok {
		return false, err
	}
	for i := range e.envs {
		if !e.boxes[e.envs[i].To].found {
			e.results[i] = store.ErrUnknownDevice
		}
	}
	return true, nil
}

// slow stores the envelopes when a mailbox may fill up, in two round
// trips: it locks the devices and looks up which envelopes are already
// waiting, then decides envelope by envelope and stores those that fit.
func (e *enqueueOp) slow(ctx context.Context, c *pgxpool.Conn) error {
	var all envelopeRows
	for i := range e.envs {
		all.add(&e.envs[i])
	}
	waiting := make(map[entry]bool)
	b := &pgx.Batch{}
	b.Queue(`BEGIN`)
	e.lock(b)
	b.Queue(`SELECT address, device, envelope_id FROM mailbox
		WHERE (address, device, envelope_id) IN (SELECT * FROM unnest($1::text[], $2::bigint[], $3::bytea[]))`,
		all.addrs, all.devs, all.ids).Query(func(rows pgx.Rows) error {
		return scanAll(rows, func(r pgx.Rows) error {
			var (
				k      entry
				device int64
				id     []byte
			)
			if err := r.Scan(&k.mb.Address, &device, &id); err != nil {
				return err
			}
			k.mb.Device = uint32(device)
			copy(k.id[:], id)
			waiting[k] = true
			return nil
		})
	})
	origins := make(map[originKey]*usage)
	e.originUsage(b, origins)
	if err := send(ctx, c, b); err != nil {
		return err
	}

	var ins envelopeRows
	for i := range e.envs {
		env := &e.envs[i]
		x := e.boxes[env.To]
		if !x.found {
			e.results[i] = store.ErrUnknownDevice
			continue
		}
		k := entry{env.To, env.ID}
		if waiting[k] {
			continue // stored before, or earlier in this call
		}
		size := int64(len(env.Sealed))
		if e.s.full(x.count, x.bytes, size) {
			e.results[i] = store.ErrLimit
			continue
		}
		// One origin domain's relayed envelopes hold at most their share
		// (spec/07-envelopes.md section 7.13).
		o := origins[originKey{env.To, env.Origin}]
		if o != nil && e.s.originFull(o, size) {
			e.results[i] = store.ErrLimit
			continue
		}
		if o != nil {
			o.count++
			o.bytes += size
		}
		x.count++
		x.bytes += size
		waiting[k] = true
		ins.add(env)
	}
	b = &pgx.Batch{}
	if len(ins.ids) > 0 {
		b.Queue(insertEnvelopes, append(ins.args(), ins.origins)...)
	}
	b.Queue(`COMMIT`)
	return send(ctx, c, b)
}

// originKey names the envelopes of one origin domain in one mailbox.
type originKey struct {
	mb     store.Mailbox
	origin string
}

// usage is what some envelopes of a mailbox hold.
type usage struct{ count, bytes int64 }

// originUsage queues on b the query that reads what the origin domains of
// the relayed envelopes of the call hold of their mailboxes into origins
// (after the devices are locked, so that it is exact), when the store
// limits origins.
func (e *enqueueOp) originUsage(b *pgx.Batch, origins map[originKey]*usage) {
	if e.s.limits.OriginMaxEnvelopes <= 0 && e.s.limits.OriginMaxBytes <= 0 {
		return
	}
	var addrs, names []string
	var devs []int64
	for i := range e.envs {
		env := &e.envs[i]
		k := originKey{env.To, env.Origin}
		if env.Origin == "" || origins[k] != nil {
			continue
		}
		origins[k] = &usage{}
		addrs, devs, names = append(addrs, env.To.Address), append(devs, int64(env.To.Device)), append(names, env.Origin)
	}
	if len(names) == 0 {
		return
	}
	b.Queue(`SELECT m.address, m.device, m.origin, count(*), sum(m.size) FROM mailbox m
		WHERE (m.address, m.device, m.origin) IN (SELECT * FROM unnest($1::text[], $2::bigint[], $3::text[]))
			AND m.origin <> ''
		GROUP BY m.address, m.device, m.origin`, addrs, devs, names).Query(func(rows pgx.Rows) error {
		return scanAll(rows, func(r pgx.Rows) error {
			var k originKey
			var device int64
			var u usage
			if err := r.Scan(&k.mb.Address, &device, &k.origin, &u.count, &u.bytes); err != nil {
				return err
			}
			k.mb.Device = uint32(device)
			if o := origins[k]; o != nil {
				*o = u
			}
			return nil
		})
	})
}

// originFull reports whether an origin domain whose envelopes hold u of a
// mailbox has its share of it, for one more envelope of size bytes.
func (s *Store) originFull(u *usage, size int64) bool {
	return (s.limits.OriginMaxEnvelopes > 0 && u.count+1 > int64(s.limits.OriginMaxEnvelopes)) ||
		(s.limits.OriginMaxBytes > 0 && u.bytes+size > s.limits.OriginMaxBytes)
}

// full reports whether a mailbox holding count envelopes of bytes sealed
// bytes is too full to take one more of size bytes.
func (s *Store) full(count, bytes, size int64) bool {
	return (s.limits.MailboxMaxEnvelopes > 0 && count+1 > int64(s.limits.MailboxMaxEnvelopes)) ||
		(s.limits.MailboxMaxBytes > 0 && bytes+size > s.limits.MailboxMaxBytes)
}

// Pending returns up to limit envelopes waiting in a mailbox after the given
// sequence number, in sequence order. A limit below 1 returns none.
func (s *Store) Pending(ctx context.Context, mb store.Mailbox, after int64, limit int) ([]store.Stored, error) {
	var out []store.Stored
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		if limit < 1 {
			return nil
		}
		rows, err := c.Query(ctx, `SELECT seq, envelope_id, lane, received_at_ms, sealed, origin
			FROM mailbox WHERE address = $1 AND device = $2 AND seq > $3 ORDER BY seq LIMIT $4`,
			mb.Address, int64(mb.Device), after, int64(limit))
		if err != nil {
			return err
		}
		return scanAll(rows, func(r pgx.Rows) error {
			var (
				st   store.Stored
				id   []byte
				lane int16
				at   int64
			)
			if err := r.Scan(&st.Seq, &id, &lane, &at, &st.Sealed, &st.Origin); err != nil {
				return err
			}
			if len(id) != len(st.ID) {
				return fmt.Errorf("envelope at seq %d has a %d-byte id", st.Seq, len(id))
			}
			copy(st.ID[:], id)
			st.To = mb
			st.Lane = store.Lane(lane)
			st.ReceivedAt = fromMillis(at)
			st.Sealed = blob(st.Sealed)
			out = append(out, st)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: pending: %w", err)
	}
	return out, nil
}

// Ack deletes envelopes from a mailbox; unknown IDs are ignored. It takes
// one round trip: the device row is locked first, as Enqueue does, then the
// envelopes deleted and the counters updated, in one implicit transaction.
func (s *Store) Ack(ctx context.Context, mb store.Mailbox, ids []store.EnvelopeID) error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: ack: %w", store.ErrClosed)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("postgres: ack: %w", err)
	}
	if len(ids) == 0 {
		return nil
	}
	raw := make([][]byte, len(ids))
	for i := range ids {
		raw[i] = ids[i][:]
	}
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		b := &pgx.Batch{}
		b.Queue(`SELECT 1 FROM devices WHERE address = $1 AND id = $2 FOR NO KEY UPDATE`, mb.Address, int64(mb.Device))
		b.Queue(`WITH d AS (
				DELETE FROM mailbox WHERE address = $1 AND device = $2 AND envelope_id = ANY($3::bytea[])
				RETURNING size
			), s AS (SELECT count(*) AS n, coalesce(sum(size), 0) AS bytes FROM d)
			UPDATE devices v SET mb_count = v.mb_count - s.n, mb_bytes = v.mb_bytes - s.bytes
			FROM s WHERE v.address = $1 AND v.id = $2 AND s.n > 0`,
			mb.Address, int64(mb.Device), raw)
		return send(ctx, c, b)
	})
	if err != nil {
		return fmt.Errorf("postgres: ack: %w", err)
	}
	return nil
}

// Expire deletes every envelope received before the given time and returns
// how many. It deletes in several transactions of at most expireChunk
// envelopes; when it fails, the count says how many were deleted before.
func (s *Store) Expire(ctx context.Context, before time.Time) (int, error) {
	total := 0
	for {
		n, more, err := s.expireChunk(ctx, millis(before))
		total += n
		if err != nil {
			return total, fmt.Errorf("postgres: expire: %w", err)
		}
		if !more {
			break
		}
	}
	if total > 0 {
		s.log.Info("postgres: expired envelopes", "count", total)
	}
	return total, nil
}

// expireChunk deletes up to expireChunk envelopes received before the given
// time and reports whether there may be more.
func (s *Store) expireChunk(ctx context.Context, before int64) (n int, more bool, err error) {
	err = s.with(ctx, func(c *pgxpool.Conn) error {
		var (
			seqs, rowDevs []int64 // of the envelopes
			rowAddrs      []string
			addrs         []string // of their mailboxes, each once
			devs          []int64
			seen          = make(map[store.Mailbox]bool)
		)
		rows, err := c.Query(ctx, `SELECT seq, address, device FROM mailbox
			WHERE received_at_ms < $1 ORDER BY received_at_ms LIMIT $2`, before, expireChunk)
		if err != nil {
			return err
		}
		err = scanAll(rows, func(r pgx.Rows) error {
			var (
				seq, device int64
				address     string
			)
			if err := r.Scan(&seq, &address, &device); err != nil {
				return err
			}
			seqs, rowAddrs, rowDevs = append(seqs, seq), append(rowAddrs, address), append(rowDevs, device)
			mb := store.Mailbox{Address: address, Device: uint32(device)}
			if !seen[mb] {
				seen[mb] = true
				addrs = append(addrs, address)
				devs = append(devs, device)
			}
			return nil
		})
		if err != nil || len(seqs) == 0 {
			return err
		}
		more = len(seqs) == expireChunk
		// One implicit transaction: lock the devices, then delete what is
		// still there and update the counters.
		var deleted int64
		b := &pgx.Batch{}
		b.Queue(lockDevices, addrs, devs)
		b.Queue(`WITH d AS (
				DELETE FROM mailbox WHERE (address, device, seq) IN (SELECT * FROM unnest($3::text[], $4::bigint[], $1::bigint[]))
					AND received_at_ms < $2
				RETURNING address, device, size
			), s AS (
				SELECT address, device, count(*) AS n, sum(size) AS bytes FROM d GROUP BY address, device
			), u AS (
				UPDATE devices v SET mb_count = v.mb_count - s.n, mb_bytes = v.mb_bytes - s.bytes
				FROM s WHERE v.address = s.address AND v.id = s.device
			)
			SELECT count(*) FROM d`, seqs, before, rowAddrs, rowDevs).QueryRow(func(r pgx.Row) error { return r.Scan(&deleted) })
		if err := send(ctx, c, b); err != nil {
			return err
		}
		n = int(deleted)
		return nil
	})
	return n, more, err
}
