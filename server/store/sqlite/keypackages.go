package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/xchat-im/xchat/server/store"
)

// PublishKeyPackages adds one-time key packages to a device and optionally
// replaces its last-resort package. It returns store.ErrUnknownDevice for a
// device that is not registered.
func (s *Store) PublishKeyPackages(ctx context.Context, mb store.Mailbox, oneTime [][]byte, lastResort []byte) (int, error) {
	size := len(lastResort) + 64
	for _, kp := range oneTime {
		size += len(kp) + 16
	}
	var count int
	err := s.write(ctx, size, func(w *wtx) error {
		if err := deviceExists(w, mb); err != nil {
			return err
		}
		var n int
		if err := w.queryRow(`SELECT count(*) FROM key_packages WHERE address = ? AND device = ?`,
			mb.Address, int64(mb.Device)).Scan(&n); err != nil {
			return err
		}
		if max := s.limits.MaxOneTimeKeys; max > 0 && len(oneTime) > 0 && n+len(oneTime) > max {
			return store.ErrLimit
		}
		for _, kp := range oneTime {
			if _, err := w.exec(`INSERT INTO key_packages (address, device, data) VALUES (?, ?, ?)`,
				mb.Address, int64(mb.Device), blob(kp)); err != nil {
				return err
			}
		}
		if lastResort != nil {
			if _, err := w.exec(`INSERT INTO last_resort (address, device, data) VALUES (?, ?, ?)
				ON CONFLICT (address, device) DO UPDATE SET data = excluded.data`,
				mb.Address, int64(mb.Device), lastResort); err != nil {
				return err
			}
		}
		count = n + len(oneTime)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: publish key packages: %w", err)
	}
	return count, nil
}

// ClaimKeyPackage removes and returns the device's oldest one-time key
// package, or returns its last-resort package. It returns
// store.ErrUnknownDevice for a device that is not registered.
func (s *Store) ClaimKeyPackage(ctx context.Context, mb store.Mailbox) (kp []byte, lastResort bool, err error) {
	err = s.write(ctx, 64, func(w *wtx) error {
		err := w.queryRow(`DELETE FROM key_packages WHERE id = (
				SELECT id FROM key_packages WHERE address = ? AND device = ? ORDER BY id LIMIT 1
			) RETURNING data`, mb.Address, int64(mb.Device)).Scan(&kp)
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		err = w.queryRow(`SELECT data FROM last_resort WHERE address = ? AND device = ?`,
			mb.Address, int64(mb.Device)).Scan(&kp)
		if err == nil {
			lastResort = true
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		if err := deviceExists(w, mb); err != nil {
			return err
		}
		return store.ErrNoKeyPackage
	})
	if err != nil {
		return nil, false, fmt.Errorf("sqlite: claim key package: %w", err)
	}
	if kp == nil {
		kp = []byte{}
	}
	return kp, lastResort, nil
}

// LastResortKeyPackage returns the device's last-resort package.
func (s *Store) LastResortKeyPackage(ctx context.Context, mb store.Mailbox) ([]byte, error) {
	var kp []byte
	err := s.read(func(db *sql.DB) error {
		var found int
		err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM devices WHERE address = ?1 AND id = ?2),
				(SELECT data FROM last_resort WHERE address = ?1 AND device = ?2)`,
			mb.Address, int64(mb.Device)).Scan(&found, &kp)
		switch {
		case err != nil:
			return err
		case found == 0:
			return store.ErrUnknownDevice
		case kp == nil:
			return store.ErrNoKeyPackage
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: last-resort key package: %w", err)
	}
	return kp, nil
}

// deviceExists returns store.ErrUnknownDevice unless the device is
// registered.
func deviceExists(w *wtx, mb store.Mailbox) error {
	var one int
	err := w.queryRow(`SELECT 1 FROM devices WHERE address = ? AND id = ?`,
		mb.Address, int64(mb.Device)).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrUnknownDevice
	}
	return err
}
