package postgres

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/xchat-im/xchat/server/store"
)

// Every function here locks the account row first (SELECT ... FOR UPDATE),
// so that the calls on one account take turns, in this process and others,
// and always lock the account before its link tokens and devices.

// lockAccount locks an account's row and returns its highest device
// identifier ever assigned and its number of devices, or pgx.ErrNoRows.
func lockAccount(ctx context.Context, tx pgx.Tx, address string) (last, count int64, err error) {
	err = tx.QueryRow(ctx, `SELECT last_device FROM accounts WHERE address = $1 FOR UPDATE`, address).Scan(&last)
	if err != nil {
		return 0, 0, err
	}
	err = tx.QueryRow(ctx, `SELECT count(*) FROM devices WHERE address = $1`, address).Scan(&count)
	return last, count, err
}

// CreateLink records the hash of a link token of an account.
func (s *Store) CreateLink(ctx context.Context, address string, hash []byte, now, expires time.Time) error {
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		var one int32
		err := tx.QueryRow(ctx, `SELECT 1 FROM accounts WHERE address = $1 FOR UPDATE`, address).Scan(&one)
		if isNoRows(err) {
			return store.ErrUnknownAccount
		}
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM link_tokens WHERE address = $1 AND expires_ms <= $2`,
			address, millis(now)); err != nil {
			return err
		}
		var n int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM link_tokens WHERE address = $1`, address).Scan(&n); err != nil {
			return err
		}
		if s.limits.MaxLinkTokens > 0 && n >= int64(s.limits.MaxLinkTokens) {
			return store.ErrLimit
		}
		_, err = tx.Exec(ctx, `INSERT INTO link_tokens (hash, address, expires_ms) VALUES ($1, $2, $3)`,
			blob(hash), address, millis(expires))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create link: %w", err)
	}
	return nil
}

// LinkDevice adds a device to an existing account, consuming a link token.
func (s *Store) LinkDevice(ctx context.Context, dev store.Device, hash []byte, now time.Time) (uint32, error) {
	var id uint32
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		last, count, err := lockAccount(ctx, tx, dev.Address)
		noAccount := isNoRows(err)
		if err != nil && !noAccount {
			return err
		}
		// Run for an unknown account too, so that it costs what a bad token
		// costs (spec/05-accounts.md section 5.11.2).
		ct, err := tx.Exec(ctx, `DELETE FROM link_tokens WHERE hash = $1 AND address = $2 AND expires_ms > $3`,
			blob(hash), dev.Address, millis(now))
		if err != nil {
			return err
		}
		if noAccount || ct.RowsAffected() == 0 {
			return store.ErrLinkInvalid
		}
		if s.limits.MaxDevices > 0 && count >= int64(s.limits.MaxDevices) || last >= math.MaxUint32 {
			return store.ErrLimit // the transaction rolls back: the token is kept
		}
		id = uint32(last + 1)
		b := &pgx.Batch{}
		b.Queue(`UPDATE accounts SET last_device = $1 WHERE address = $2`, int64(id), dev.Address)
		b.Queue(`DELETE FROM link_tokens WHERE address = $1 AND expires_ms <= $2`, dev.Address, millis(now))
		b.Queue(`INSERT INTO devices (address, id, sig_key, kem, hpke_key, created_at_ms)
			VALUES ($1, $2, $3, $4, $5, $6)`,
			dev.Address, int64(id), blob(dev.SigKey), int32(dev.KEM), blob(dev.HPKEKey), millis(dev.CreatedAt))
		return tx.SendBatch(ctx, b).Close()
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: link device: %w", err)
	}
	return id, nil
}

// DeleteExpiredLinks deletes every expired link token. It skips tokens
// that a transaction on their account holds, which deletes them itself if
// they expired, so that it never waits for one (nor deadlocks with it).
func (s *Store) DeleteExpiredLinks(ctx context.Context, now time.Time) (int, error) {
	var n int64
	err := s.with(ctx, func(c *pgxpool.Conn) error {
		ct, err := c.Exec(ctx, `DELETE FROM link_tokens WHERE hash IN
			(SELECT hash FROM link_tokens WHERE expires_ms <= $1 FOR UPDATE SKIP LOCKED)`, millis(now))
		n = ct.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: delete expired links: %w", err)
	}
	return int(n), nil
}

// RemoveDevice deletes a device; its mailbox and key packages go with it
// (foreign keys ON DELETE CASCADE).
func (s *Store) RemoveDevice(ctx context.Context, mb store.Mailbox) error {
	err := s.inTx(ctx, pgx.TxOptions{}, func(tx pgx.Tx) error {
		_, count, err := lockAccount(ctx, tx, mb.Address)
		if isNoRows(err) {
			return store.ErrUnknownDevice
		}
		if err != nil {
			return err
		}
		// The device row is locked before the cascade reaches its mailbox,
		// as Enqueue locks it, so that the two take turns.
		var one int32
		err = tx.QueryRow(ctx, `SELECT 1 FROM devices WHERE address = $1 AND id = $2 FOR UPDATE`,
			mb.Address, int64(mb.Device)).Scan(&one)
		if isNoRows(err) {
			return store.ErrUnknownDevice
		}
		if err != nil {
			return err
		}
		if count <= 1 {
			return store.ErrLastDevice
		}
		if _, err := tx.Exec(ctx, `DELETE FROM devices WHERE address = $1 AND id = $2`, mb.Address, int64(mb.Device)); err != nil {
			return err
		}
		// Every process closes its connections of the device (ListenRemovals).
		_, err = tx.Exec(ctx, `SELECT pg_notify($1, $2)`, removalChannel, fmt.Sprintf("%s %d", mb.Address, mb.Device))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: remove device: %w", err)
	}
	return nil
}
