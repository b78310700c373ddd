package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xchat-im/xchat/server/store"
)

// CreateInvite records the hash of a single-use invite token. Recording a
// hash again replaces its expiry.
func (s *Store) CreateInvite(ctx context.Context, hash []byte, expires time.Time) error {
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		_, err := c.Exec(ctx, `INSERT INTO invites (hash, expires_ms) VALUES ($1, $2)
			ON CONFLICT (hash) DO UPDATE SET expires_ms = excluded.expires_ms`,
			blob(hash), millis(expires))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create invite: %w", err)
	}
	return nil
}

// CreateAccount creates an account with its first device, consuming an
// invite when inviteHash is not nil. The invite is checked before the
// address, so that a caller without a valid invite learns nothing about
// which addresses are taken.
func (s *Store) CreateAccount(ctx context.Context, dev store.Device, inviteHash []byte) error {
	if dev.ID != 1 {
		return fmt.Errorf("postgres: create account: first device has id %d, want 1", dev.ID)
	}
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		if inviteHash != nil {
			ct, err := tx.Exec(ctx, `DELETE FROM invites WHERE hash = $1 AND expires_ms > $2`,
				blob(inviteHash), millis(time.Now()))
			if err != nil {
				return err
			}
			if ct.RowsAffected() == 0 {
				return store.ErrInviteInvalid
			}
		}
		ct, err := tx.Exec(ctx, `INSERT INTO accounts (address, created_at_ms) VALUES ($1, $2)
			ON CONFLICT (address) DO NOTHING`, dev.Address, millis(dev.CreatedAt))
		if err != nil {
			return err
		}
		if ct.RowsAffected() == 0 {
			return store.ErrAccountExists
		}
		_, err = tx.Exec(ctx, `INSERT INTO devices (address, id, sig_key, kem, hpke_key, created_at_ms)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			dev.Address, int64(dev.ID), blob(dev.SigKey), int32(dev.KEM), blob(dev.HPKEKey), millis(dev.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create account: %w", err)
	}
	return nil
}

// deviceColumns are the columns scanDevice reads, in order.
const deviceColumns = `id, sig_key, kem, hpke_key, created_at_ms`

// scanDevice reads one device of address.
func scanDevice(row pgx.Row, address string) (store.Device, error) {
	var (
		id, created int64
		kem         int32
		d           store.Device
	)
	if err := row.Scan(&id, &d.SigKey, &kem, &d.HPKEKey, &created); err != nil {
		return store.Device{}, err
	}
	d.Address = address
	d.ID = uint32(id)
	d.KEM = uint16(kem)
	d.CreatedAt = fromMillis(created)
	d.SigKey, d.HPKEKey = blob(d.SigKey), blob(d.HPKEKey)
	return d, nil
}

// Device returns one registered device.
func (s *Store) Device(ctx context.Context, mb store.Mailbox) (store.Device, error) {
	var d store.Device
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		var err error
		d, err = scanDevice(c.QueryRow(ctx,
			`SELECT `+deviceColumns+` FROM devices WHERE address = $1 AND id = $2`,
			mb.Address, int64(mb.Device)), mb.Address)
		if isNoRows(err) {
			return store.ErrUnknownDevice
		}
		return err
	})
	if err != nil {
		return store.Device{}, fmt.Errorf("postgres: device: %w", err)
	}
	return d, nil
}

// Devices returns an account's devices in ID order.
func (s *Store) Devices(ctx context.Context, address string) ([]store.Device, error) {
	var devs []store.Device
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `SELECT `+deviceColumns+` FROM devices WHERE address = $1 ORDER BY id`, address)
		if err != nil {
			return err
		}
		err = scanAll(rows, func(r pgx.Rows) error {
			d, err := scanDevice(r, address)
			devs = append(devs, d)
			return err
		})
		if err != nil || len(devs) > 0 {
			return err
		}
		var one int32
		err = c.QueryRow(ctx, `SELECT 1 FROM accounts WHERE address = $1`, address).Scan(&one)
		if isNoRows(err) {
			return store.ErrUnknownAccount
		}
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: devices: %w", err)
	}
	return devs, nil
}

// Policy returns an account's delivery policy.
func (s *Store) Policy(ctx context.Context, address string) (store.Policy, error) {
	var p store.Policy
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		// One statement, one snapshot.
		rows, err := c.Query(ctx, `SELECT a.request_lane_open, v.verifier
			FROM accounts a LEFT JOIN policy_verifiers v ON v.address = a.address
			WHERE a.address = $1 ORDER BY v.pos`, address)
		if err != nil {
			return err
		}
		found := false
		err = scanAll(rows, func(r pgx.Rows) error {
			var v []byte
			if err := r.Scan(&p.RequestLaneOpen, &v); err != nil {
				return err
			}
			found = true
			if v != nil {
				p.Verifiers = append(p.Verifiers, v)
			}
			return nil
		})
		if err == nil && !found {
			return store.ErrUnknownAccount
		}
		return err
	})
	if err != nil {
		return store.Policy{}, fmt.Errorf("postgres: policy: %w", err)
	}
	return p, nil
}

// SetPolicy replaces an account's delivery policy, or returns
// store.ErrUnknownAccount.
func (s *Store) SetPolicy(ctx context.Context, address string, p store.Policy) error {
	verifiers := make([][]byte, len(p.Verifiers))
	for i, v := range p.Verifiers {
		verifiers[i] = blob(v)
	}
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		// One round trip, one implicit transaction: the UPDATE locks the
		// account row, so that concurrent calls take turns.
		var n int64
		b := &pgx.Batch{}
		b.Queue(`UPDATE accounts SET request_lane_open = $1 WHERE address = $2`,
			p.RequestLaneOpen, address).Exec(affected(&n))
		b.Queue(`DELETE FROM policy_verifiers WHERE address = $1`, address)
		b.Queue(`INSERT INTO policy_verifiers (address, pos, verifier)
			SELECT $1, u.ord - 1, u.v FROM unnest($2::bytea[]) WITH ORDINALITY AS u(v, ord)
			WHERE EXISTS (SELECT 1 FROM accounts WHERE address = $1)`, address, verifiers)
		if err := send(ctx, c, b); err != nil {
			return err
		}
		if n == 0 {
			return store.ErrUnknownAccount
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("postgres: set policy: %w", err)
	}
	return nil
}
