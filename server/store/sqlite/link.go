package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// CreateLink records the hash of a link token of an account.
func (s *Store) CreateLink(ctx context.Context, address string, hash []byte, now, expires time.Time) error {
	err := s.write(ctx, len(address)+len(hash)+64, func(w *wtx) error {
		if _, err := w.exec(`DELETE FROM link_tokens WHERE address = ? AND expires_ms <= ?`,
			address, millis(now)); err != nil {
			return err
		}
		var n int64
		err := w.queryRow(`SELECT (SELECT count(*) FROM link_tokens WHERE address = a.address)
			FROM accounts a WHERE a.address = ?`, address).Scan(&n)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrUnknownAccount
		}
		if err != nil {
			return err
		}
		if s.limits.MaxLinkTokens > 0 && n >= int64(s.limits.MaxLinkTokens) {
			return store.ErrLimit
		}
		_, err = w.exec(`INSERT INTO link_tokens (hash, address, expires_ms) VALUES (?, ?, ?)`,
			blob(hash), address, millis(expires))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create link: %w", err)
	}
	return nil
}

// LinkDevice adds a device to an existing account, consuming a link token.
func (s *Store) LinkDevice(ctx context.Context, dev store.Device, hash []byte, now time.Time) (uint32, error) {
	var id uint32
	size := len(dev.Address) + len(dev.SigKey) + len(dev.HPKEKey) + 128
	err := s.write(ctx, size, func(w *wtx) error {
		n, err := w.exec(`DELETE FROM link_tokens WHERE hash = ? AND address = ? AND expires_ms > ?`,
			blob(hash), dev.Address, millis(now))
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrLinkInvalid
		}
		var count, last int64
		err = w.queryRow(`SELECT (SELECT count(*) FROM devices WHERE address = a.address), a.last_device
			FROM accounts a WHERE a.address = ?`, dev.Address).Scan(&count, &last)
		if err != nil {
			return err // the token's account exists (foreign key)
		}
		if s.limits.MaxDevices > 0 && count >= int64(s.limits.MaxDevices) || last >= math.MaxUint32 {
			return store.ErrLimit
		}
		id = uint32(last + 1)
		if _, err := w.exec(`UPDATE accounts SET last_device = ? WHERE address = ?`, int64(id), dev.Address); err != nil {
			return err
		}
		if _, err := w.exec(`DELETE FROM link_tokens WHERE address = ? AND expires_ms <= ?`,
			dev.Address, millis(now)); err != nil {
			return err
		}
		_, err = w.exec(`INSERT INTO devices (address, id, sig_key, kem, hpke_key, created_at_ms)
			VALUES (?, ?, ?, ?, ?, ?)`,
			dev.Address, int64(id), blob(dev.SigKey), int64(dev.KEM), blob(dev.HPKEKey), millis(dev.CreatedAt))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: link device: %w", err)
	}
	return id, nil
}

// DeleteExpiredLinks deletes every expired link token.
func (s *Store) DeleteExpiredLinks(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.write(ctx, 64, func(w *wtx) error {
		var err error
		n, err = w.exec(`DELETE FROM link_tokens WHERE expires_ms <= ?`, millis(now))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete expired links: %w", err)
	}
	return int(n), nil
}

// RemoveDevice deletes a device; its mailbox and key packages go with it
// (foreign keys ON DELETE CASCADE).
func (s *Store) RemoveDevice(ctx context.Context, mb store.Mailbox) error {
	err := s.write(ctx, len(mb.Address)+64, func(w *wtx) error {
		var count, found int64
		err := w.queryRow(`SELECT count(*), coalesce(sum(id = ?), 0) FROM devices WHERE address = ?`,
			int64(mb.Device), mb.Address).Scan(&count, &found)
		if err != nil {
			return err
		}
		if found == 0 {
			return store.ErrUnknownDevice
		}
		if count == 1 {
			return store.ErrLastDevice
		}
		_, err = w.exec(`DELETE FROM devices WHERE address = ? AND id = ?`, mb.Address, int64(mb.Device))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: remove device: %w", err)
	}
	return nil
}
