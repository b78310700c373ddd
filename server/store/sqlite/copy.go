package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

var _ store.Exporter = (*Store)(nil)

// Export calls fn with every record of the store, from one consistent
// snapshot, in the order store.Exporter documents.
func (s *Store) Export(ctx context.Context, fn func(store.Record) error) error {
	return s.read(func(db *sql.DB) error {
		tx, err := db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
		if err != nil {
			return fmt.Errorf("sqlite: export: %w", err)
		}
		defer tx.Rollback()
		for _, step := range []func(context.Context, *sql.Tx, func(store.Record) error) error{
			exportAccounts, exportDevices, exportInvites, exportKeyPackages, exportMailbox, exportOutbound,
		} {
			if err := step(ctx, tx, fn); err != nil {
				return fmt.Errorf("sqlite: export: %w", err)
			}
		}
		return nil
	})
}

// each runs query and calls scan for every row.
func each(ctx context.Context, tx *sql.Tx, query string, scan func(*sql.Rows) error, args ...any) error {
	rows, err := tx.QueryContext(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := scan(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

func exportAccounts(ctx context.Context, tx *sql.Tx, fn func(store.Record) error) error {
	var accounts []*store.AccountRecord
	err := each(ctx, tx, `SELECT address, created_at_ms, request_lane_open, last_device FROM accounts ORDER BY address`, func(r *sql.Rows) error {
		var a store.AccountRecord
		var created, last int64
		var open int
		if err := r.Scan(&a.Address, &created, &open, &last); err != nil {
			return err
		}
		a.CreatedAt, a.Policy.RequestLaneOpen, a.LastDevice = time.UnixMilli(created), open != 0, uint32(last)
		accounts = append(accounts, &a)
		return nil
	})
	if err != nil {
		return err
	}
	for _, a := range accounts {
		err := each(ctx, tx, `SELECT verifier FROM policy_verifiers WHERE address = ? ORDER BY pos`, func(r *sql.Rows) error {
			var v []byte
			if err := r.Scan(&v); err != nil {
				return err
			}
			a.Policy.Verifiers = append(a.Policy.Verifiers, v)
			return nil
		}, a.Address)
		if err != nil {
			return err
		}
		if err := fn(store.Record{Account: a}); err != nil {
			return err
		}
	}
	return nil
}

func exportDevices(ctx context.Context, tx *sql.Tx, fn func(store.Record) error) error {
	return each(ctx, tx, `SELECT address, `+deviceColumns+` FROM devices ORDER BY address, id`, func(r *sql.Rows) error {
		var address string
		var id, kem, created int64
		var d store.Device
		if err := r.Scan(&address, &id, &d.SigKey, &kem, &d.HPKEKey, &created); err != nil {
			return err
		}
		d.Address, d.ID, d.KEM, d.CreatedAt = address, uint32(id), uint16(kem), time.UnixMilli(created)
		return fn(store.Record{Device: &d})
	})
}

func exportInvites(ctx context.Context, tx *sql.Tx, fn func(store.Record) error) error {
	return each(ctx, tx, `SELECT hash, expires_ms FROM invites ORDER BY hash`, func(r *sql.Rows) error {
		var inv store.InviteRecord
		var expires int64
		if err := r.Scan(&inv.Hash, &expires); err != nil {
			return err
		}
		inv.Expires = time.UnixMilli(expires)
		return fn(store.Record{Invite: &inv})
	})
}

func exportKeyPackages(ctx context.Context, tx *sql.Tx, fn func(store.Record) error) error {
	scan := func(lastResort bool) func(*sql.Rows) error {
		return func(r *sql.Rows) error {
			k := store.KeyPackageRecord{LastResort: lastResort}
			var device int64
			if err := r.Scan(&k.Mailbox.Address, &device, &k.Data); err != nil {
				return err
			}
			k.Mailbox.Device = uint32(device)
			return fn(store.Record{KeyPackage: &k})
		}
	}
	if err := each(ctx, tx, `SELECT address, device, data FROM key_packages ORDER BY id`, scan(false)); err != nil {
		return err
	}
	return each(ctx, tx, `SELECT address, device, data FROM last_resort ORDER BY address, device`, scan(true))
}

func exportMailbox(ctx context.Context, tx *sql.Tx, fn func(store.Record) error) error {
	return each(ctx, tx, `SELECT address, device, envelope_id, lane, received_at_ms, sealed, origin FROM mailbox ORDER BY seq`, func(r *sql.Rows) error {
		var e store.Envelope
		var device, lane, received int64
		var id []byte
		if err := r.Scan(&e.To.Address, &device, &id, &lane, &received, &e.Sealed, &e.Origin); err != nil {
			return err
		}
		copy(e.ID[:], id)
		e.To.Device, e.Lane, e.ReceivedAt = uint32(device), store.Lane(lane), time.UnixMilli(received)
		return fn(store.Record{Envelope: &e})
	})
}

func exportOutbound(ctx context.Context, tx *sql.Tx, fn func(store.Record) error) error {
	return each(ctx, tx, `SELECT domain, to_address, to_device, envelope_id, token, sealed, from_address, from_device,
		queued_at_ms, attempts, next_try_ms FROM outbound ORDER BY seq`, func(r *sql.Rows) error {
		var o store.Outbound
		var toDevice, fromDevice, queued, attempts, next int64
		var id []byte
		var token any // NULL (no token) and an empty token stay apart
		if err := r.Scan(&o.Domain, &o.Envelope.To.Address, &toDevice, &id, &token, &o.Envelope.Sealed,
			&o.From.Address, &fromDevice, &queued, &attempts, &next); err != nil {
			return err
		}
		switch t := token.(type) {
		case []byte:
			o.Token = append([]byte{}, t...)
		case string:
			o.Token = []byte(t)
		}
		copy(o.Envelope.ID[:], id)
		o.Envelope.To.Device, o.From.Device = uint32(toDevice), uint32(fromDevice)
		o.Envelope.ReceivedAt, o.Attempts, o.NextTry = time.UnixMilli(queued), int(attempts), time.UnixMilli(next)
		return fn(store.Record{Outbound: &o})
	})
}
