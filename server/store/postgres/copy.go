package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/xchat-im/xchat/server/store"
)

// Export calls fn with every record of the store, from one consistent
// snapshot, in the order store.Exporter documents: accounts (with their
// policies) by address, devices by address and ID, invites, one-time key
// packages in the order they were published, last-resort key packages,
// envelopes in Seq order and the outbound queue in Seq order.
func (s *Store) Export(ctx context.Context, fn func(store.Record) error) error {
	err := s.inTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		for _, step := range []func(context.Context, pgx.Tx, func(store.Record) error) error{
			exportAccounts, exportDevices, exportInvites, exportKeyPackages, exportMailbox, exportOutbound,
		} {
			if err := step(ctx, tx, fn); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: export: %w", err)
	}
	return nil
}

// each runs query and calls scan for every row.
func each(ctx context.Context, tx pgx.Tx, query string, scan func(pgx.Rows) error) error {
	rows, err := tx.Query(ctx, query)
	if err != nil {
		return err
	}
	return scanAll(rows, scan)
}

func exportAccounts(ctx context.Context, tx pgx.Tx, fn func(store.Record) error) error {
	return each(ctx, tx, `SELECT a.address, a.created_at_ms, a.request_lane_open, a.last_device,
			array_agg(v.verifier ORDER BY v.pos) FILTER (WHERE v.verifier IS NOT NULL)
		FROM accounts a LEFT JOIN policy_verifiers v ON v.address = a.address
		GROUP BY a.address ORDER BY a.address`, func(r pgx.Rows) error {
		var (
			a             store.AccountRecord
			created, last int64
		)
		if err := r.Scan(&a.Address, &created, &a.Policy.RequestLaneOpen, &last, &a.Policy.Verifiers); err != nil {
			return err
		}
		a.CreatedAt, a.LastDevice = fromMillis(created), uint32(last)
		return fn(store.Record{Account: &a})
	})
}

func exportDevices(ctx context.Context, tx pgx.Tx, fn func(store.Record) error) error {
	return each(ctx, tx, `SELECT address, `+deviceColumns+` FROM devices ORDER BY address, id`, func(r pgx.Rows) error {
		var (
			address     string
			id, created int64
			kem         int32
			d           store.Device
		)
		if err := r.Scan(&address, &id, &d.SigKey, &kem, &d.HPKEKey, &created); err != nil {
			return err
		}
		d.Address, d.ID, d.KEM, d.CreatedAt = address, uint32(id), uint16(kem), fromMillis(created)
		d.SigKey, d.HPKEKey = blob(d.SigKey), blob(d.HPKEKey)
		return fn(store.Record{Device: &d})
	})
}

func exportInvites(ctx context.Context, tx pgx.Tx, fn func(store.Record) error) error {
	return each(ctx, tx, `SELECT hash, expires_ms FROM invites ORDER BY hash`, func(r pgx.Rows) error {
		var (
			inv     store.InviteRecord
			expires int64
		)
		if err := r.Scan(&inv.Hash, &expires); err != nil {
			return err
		}
		inv.Hash, inv.Expires = blob(inv.Hash), fromMillis(expires)
		return fn(store.Record{Invite: &inv})
	})
}

func exportKeyPackages(ctx context.Context, tx pgx.Tx, fn func(store.Record) error) error {
	scan := func(lastResort bool) func(pgx.Rows) error {
		return func(r pgx.Rows) error {
			k := store.KeyPackageRecord{LastResort: lastResort}
			var device int64
			if err := r.Scan(&k.Mailbox.Address, &device, &k.Data); err != nil {
				return err
			}
			k.Mailbox.Device, k.Data = uint32(device), blob(k.Data)
			return fn(store.Record{KeyPackage: &k})
		}
	}
	if err := each(ctx, tx, `SELECT address, device, data FROM key_packages ORDER BY id`, scan(false)); err != nil {
		return err
	}
	return each(ctx, tx, `SELECT address, device, data FROM last_resort ORDER BY address, device`, scan(true))
}

func exportMailbox(ctx context.Context, tx pgx.Tx, fn func(store.Record) error) error {
	return each(ctx, tx, `SELECT address, device, envelope_id, lane, received_at_ms, sealed, origin FROM mailbox ORDER BY seq`, func(r pgx.Rows) error {
		var (
			e                store.Envelope
			device, received int64
			lane             int16
			id               []byte
		)
		if err := r.Scan(&e.To.Address, &device, &id, &lane, &received, &e.Sealed, &e.Origin); err != nil {
			return err
		}
		copy(e.ID[:], id)
		e.To.Device, e.Lane, e.ReceivedAt, e.Sealed = uint32(device), store.Lane(lane), fromMillis(received), blob(e.Sealed)
		return fn(store.Record{Envelope: &e})
	})
}

func exportOutbound(ctx context.Context, tx pgx.Tx, fn func(store.Record) error) error {
	return each(ctx, tx, `SELECT domain, to_address, to_device, envelope_id, token, sealed, from_address, from_device,
		queued_at_ms, attempts, next_try_ms FROM outbound ORDER BY seq`, func(r pgx.Rows) error {
		var (
			o                                  store.Outbound
			toDevice, fromDevice, queued, next int64
			attempts                           int32
			id                                 []byte
		)
		if err := r.Scan(&o.Domain, &o.Envelope.To.Address, &toDevice, &id, &o.Token, &o.Envelope.Sealed,
			&o.From.Address, &fromDevice, &queued, &attempts, &next); err != nil {
			return err
		}
		copy(o.Envelope.ID[:], id)
		o.Envelope.To.Device, o.From.Device = uint32(toDevice), uint32(fromDevice)
		o.Envelope.Sealed = blob(o.Envelope.Sealed)
		o.Envelope.ReceivedAt, o.Attempts, o.NextTry = fromMillis(queued), int(attempts), fromMillis(next)
		return fn(store.Record{Outbound: &o})
	})
}

// Import stores records copied from another store, all in one transaction,
// with COPY. It is meant for an empty store and fails on records that are
// already there. Each kind of record is stored in the order given, kinds in
// the order of their dependencies, so that one call may hold accounts and
// their devices alike. Envelopes and outbound envelopes keep their IDs,
// lanes, times, tokens, senders, attempts and due times; they get new Seqs,
// in the order given, and the mailbox counters count the envelopes.
func (s *Store) Import(ctx context.Context, recs []store.Record) error {
	if s.closed.Load() {
		return fmt.Errorf("postgres: import: %w", store.ErrClosed)
	}
	var (
		accounts, verifiers, devices, invites, oneTime, lastResort, envelopes [][]any
		out                                                                   outboundRows
		deviceAddrs                                                           []string
		deviceIDs                                                             []int64
	)
	type sum struct{ n, bytes int64 }
	sums := make(map[store.Mailbox]*sum)
	var boxes []store.Mailbox
	for i, r := range recs {
		switch {
		case r.Account != nil:
			a := r.Account
			accounts = append(accounts, []any{a.Address, millis(a.CreatedAt), a.Policy.RequestLaneOpen, int64(max(a.LastDevice, 1))})
			for pos, v := range a.Policy.Verifiers {
				verifiers = append(verifiers, []any{a.Address, int32(pos), blob(v)})
			}
		case r.Device != nil:
			d := r.Device
			devices = append(devices, []any{d.Address, int64(d.ID), blob(d.SigKey), int32(d.KEM), blob(d.HPKEKey), millis(d.CreatedAt)})
			deviceAddrs, deviceIDs = append(deviceAddrs, d.Address), append(deviceIDs, int64(d.ID))
		case r.Invite != nil:
			invites = append(invites, []any{blob(r.Invite.Hash), millis(r.Invite.Expires)})
		case r.KeyPackage != nil:
			k := r.KeyPackage
			row := []any{k.Mailbox.Address, int64(k.Mailbox.Device), blob(k.Data)}
			if k.LastResort {
				lastResort = append(lastResort, row)
			} else {
				oneTime = append(oneTime, row)
			}
		case r.Envelope != nil:
			e := r.Envelope
			envelopes = append(envelopes, []any{e.To.Address, int64(e.To.Device), e.ID[:], int16(e.Lane),
				millis(e.ReceivedAt), int32(len(e.Sealed)), blob(e.Sealed), e.Origin})
			su := sums[e.To]
			if su == nil {
				su = &sum{}
				sums[e.To] = su
				boxes = append(boxes, e.To)
			}
			su.n++
			su.bytes += int64(len(e.Sealed))
		case r.Outbound != nil:
			out.add(r.Outbound)
		default:
			return fmt.Errorf("postgres: import: record %d is empty", i)
		}
	}
	steps := []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"accounts", []string{"address", "created_at_ms", "request_lane_open", "last_device"}, accounts},
		{"policy_verifiers", []string{"address", "pos", "verifier"}, verifiers},
		{"devices", []string{"address", "id", "sig_key", "kem", "hpke_key", "created_at_ms"}, devices},
		{"invites", []string{"hash", "expires_ms"}, invites},
		{"key_packages", []string{"address", "device", "data"}, oneTime},
		{"last_resort", []string{"address", "device", "data"}, lastResort},
		{"mailbox", []string{"address", "device", "envelope_id", "lane", "received_at_ms", "size", "sealed", "origin"}, envelopes},
	}
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		for _, st := range steps {
			if len(st.rows) == 0 {
				continue
			}
			if _, err := tx.CopyFrom(ctx, pgx.Identifier{st.table}, st.cols, pgx.CopyFromRows(st.rows)); err != nil {
				return fmt.Errorf("%s: %w", st.table, err)
			}
		}
		if len(deviceIDs) > 0 {
			// An account record without LastDevice (0) gets the highest
			// identifier of its devices.
			if _, err := tx.Exec(ctx, `UPDATE accounts a SET last_device = u.id
				FROM (SELECT address, max(id) AS id FROM unnest($1::text[], $2::bigint[]) AS d(address, id) GROUP BY address) u
				WHERE a.address = u.address AND a.last_device < u.id`, deviceAddrs, deviceIDs); err != nil {
				return fmt.Errorf("device identifiers: %w", err)
			}
		}
		if len(boxes) > 0 {
			addrs, devs := make([]string, len(boxes)), make([]int64, len(boxes))
			counts, bytes := make([]int64, len(boxes)), make([]int64, len(boxes))
			for i, mb := range boxes {
				addrs[i], devs[i] = mb.Address, int64(mb.Device)
				counts[i], bytes[i] = sums[mb].n, sums[mb].bytes
			}
			if _, err := tx.Exec(ctx, `UPDATE devices d SET mb_count = d.mb_count + u.n, mb_bytes = d.mb_bytes + u.bytes
				FROM unnest($1::text[], $2::bigint[], $3::bigint[], $4::bigint[]) AS u(address, device, n, bytes)
				WHERE d.address = u.address AND d.id = u.device`, addrs, devs, counts, bytes); err != nil {
				return fmt.Errorf("mailbox counters: %w", err)
			}
		}
		if len(out.ids) > 0 {
			if _, err := tx.Exec(ctx, insertOutbound, out.args()...); err != nil {
				return fmt.Errorf("outbound: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: import: %w", err)
	}
	return nil
}
