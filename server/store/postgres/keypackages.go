package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xchat-im/xchat/server/store"
)

// PublishKeyPackages adds one-time key packages to a device and optionally
// replaces its last-resort package. Concurrent calls for one device take
// turns on its row lock, so that they never exceed MaxOneTimeKeys together.
func (s *Store) PublishKeyPackages(ctx context.Context, mb store.Mailbox, oneTime [][]byte, lastResort []byte) (int, error) {
	kps := make([][]byte, len(oneTime))
	for i, kp := range oneTime {
		kps[i] = blob(kp)
	}
	var count int
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		found := false
		var n int64
		b := &pgx.Batch{}
		b.Queue(`BEGIN`)
		b.Queue(`SELECT 1 FROM devices WHERE address = $1 AND id = $2 FOR NO KEY UPDATE`,
			mb.Address, int64(mb.Device)).Exec(func(ct pgconn.CommandTag) error {
			found = ct.RowsAffected() == 1
			return nil
		})
		b.Queue(`SELECT count(*) FROM key_packages WHERE address = $1 AND device = $2`,
			mb.Address, int64(mb.Device)).QueryRow(func(r pgx.Row) error { return r.Scan(&n) })
		if err := send(ctx, c, b); err != nil {
			return err
		}
		if !found {
			return store.ErrUnknownDevice
		}
		if max := s.limits.MaxOneTimeKeys; max > 0 && len(kps) > 0 && int(n)+len(kps) > max {
			return store.ErrLimit
		}
		b = &pgx.Batch{}
		if len(kps) > 0 {
			// Identities in the order given: the oldest is claimed first.
			b.Queue(`INSERT INTO key_packages (address, device, data)
				SELECT $1, $2, u.data FROM unnest($3::bytea[]) WITH ORDINALITY AS u(data, ord) ORDER BY u.ord`,
				mb.Address, int64(mb.Device), kps)
		}
		if lastResort != nil {
			b.Queue(`INSERT INTO last_resort (address, device, data) VALUES ($1, $2, $3)
				ON CONFLICT (address, device) DO UPDATE SET data = excluded.data`,
				mb.Address, int64(mb.Device), lastResort)
		}
		b.Queue(`COMMIT`)
		if err := send(ctx, c, b); err != nil {
			return err
		}
		count = int(n) + len(kps)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: publish key packages: %w", err)
	}
	return count, nil
}

// ClaimKeyPackage removes and returns the device's oldest one-time key
// package that no concurrent claim holds, or returns its last-resort
// package. It is one statement: concurrent claims skip the package another
// one locked, so each package goes to exactly one caller.
func (s *Store) ClaimKeyPackage(ctx context.Context, mb store.Mailbox) (kp []byte, lastResort bool, err error) {
	err = s.with(ctx, func(c *pgxpool.Conn) error {
		rows, err := c.Query(ctx, `WITH kp AS (
				DELETE FROM key_packages WHERE id = (
					SELECT id FROM key_packages WHERE address = $1 AND device = $2
					ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED
				) RETURNING data
			)
			SELECT 0, data FROM kp
			UNION ALL SELECT 1, data FROM last_resort WHERE address = $1 AND device = $2
			UNION ALL SELECT 2, NULL::bytea FROM devices WHERE address = $1 AND id = $2`,
			mb.Address, int64(mb.Device))
		if err != nil {
			return err
		}
		best := int32(3)
		err = scanAll(rows, func(r pgx.Rows) error {
			var (
				kind int32
				data []byte
			)
			if err := r.Scan(&kind, &data); err != nil {
				return err
			}
			if kind < best {
				best, kp = kind, data
			}
			return nil
		})
		if err != nil {
			return err
		}
		switch best {
		case 0:
			return nil
		case 1:
			lastResort = true
			return nil
		case 2:
			return store.ErrNoKeyPackage
		default:
			return store.ErrUnknownDevice
		}
	})
	if err != nil {
		return nil, false, fmt.Errorf("postgres: claim key package: %w", err)
	}
	return blob(kp), lastResort, nil
}

// LastResortKeyPackage returns the device's last-resort package.
func (s *Store) LastResortKeyPackage(ctx context.Context, mb store.Mailbox) ([]byte, error) {
	var (
		found bool
		kp    []byte
	)
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		return c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM devices WHERE address = $1 AND id = $2),
				(SELECT data FROM last_resort WHERE address = $1 AND device = $2)`,
			mb.Address, int64(mb.Device)).Scan(&found, &kp)
	})
	switch {
	case err != nil:
		return nil, fmt.Errorf("postgres: last-resort key package: %w", err)
	case !found:
		return nil, fmt.Errorf("postgres: last-resort key package: %w", store.ErrUnknownDevice)
	case kp == nil:
		return nil, fmt.Errorf("postgres: last-resort key package: %w", store.ErrNoKeyPackage)
	}
	return blob(kp), nil
}
