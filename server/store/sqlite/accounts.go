package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// CreateInvite records the hash of a single-use invite token. Recording a
// hash again replaces its expiry.
func (s *Store) CreateInvite(ctx context.Context, hash []byte, expires time.Time) error {
	err := s.write(ctx, len(hash), func(w *wtx) error {
		_, err := w.exec(`INSERT INTO invites (hash, expires_ms) VALUES (?, ?)
			ON CONFLICT (hash) DO UPDATE SET expires_ms = excluded.expires_ms`,
			blob(hash), millis(expires))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create invite: %w", err)
	}
	return nil
}

// CreateAccount creates an account with its first device, consuming an
// invite when inviteHash is not nil. The invite is checked before the
// address, so that a caller without a valid invite learns nothing about
// which addresses are taken.
func (s *Store) CreateAccount(ctx context.Context, dev store.Device, inviteHash []byte) error {
	if dev.ID != 1 {
		return fmt.Errorf("sqlite: create account: first device has id %d, want 1", dev.ID)
	}
	size := len(dev.Address) + len(dev.SigKey) + len(dev.HPKEKey) + 64
	err := s.write(ctx, size, func(w *wtx) error {
		if inviteHash != nil {
			n, err := w.exec(`DELETE FROM invites WHERE hash = ? AND expires_ms > ?`,
				blob(inviteHash), millis(time.Now()))
			if err != nil {
				return err
			}
			if n == 0 {
				return store.ErrInviteInvalid
			}
		}
		n, err := w.exec(`INSERT INTO accounts (address, created_at_ms) VALUES (?, ?)
			ON CONFLICT (address) DO NOTHING`, dev.Address, millis(dev.CreatedAt))
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrAccountExists
		}
		_, err = w.exec(`INSERT INTO devices (address, id, sig_key, kem, hpke_key, created_at_ms)
			VALUES (?, ?, ?, ?, ?, ?)`,
			dev.Address, int64(dev.ID), blob(dev.SigKey), int64(dev.KEM), blob(dev.HPKEKey), millis(dev.CreatedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create account: %w", err)
	}
	return nil
}

// deviceColumns are the columns scanDevice reads, in order.
const deviceColumns = `id, sig_key, kem, hpke_key, created_at_ms`

// scanDevice reads one device of address.
func scanDevice(row scanner, address string) (store.Device, error) {
	var (
		id, kem, created int64
		d                store.Device
	)
	if err := row.Scan(&id, &d.SigKey, &kem, &d.HPKEKey, &created); err != nil {
		return store.Device{}, err
	}
	d.Address = address
	d.ID = uint32(id)
	d.KEM = uint16(kem)
	d.CreatedAt = fromMillis(created)
	return d, nil
}

// Device returns one registered device.
func (s *Store) Device(ctx context.Context, mb store.Mailbox) (store.Device, error) {
	var d store.Device
	err := s.read(func(db *sql.DB) error {
		st, err := s.readStmt(ctx, db, `SELECT `+deviceColumns+` FROM devices WHERE address = ? AND id = ?`)
		if err != nil {
			return err
		}
		d, err = scanDevice(st.QueryRowContext(ctx, mb.Address, int64(mb.Device)), mb.Address)
		if errors.Is(err, sql.ErrNoRows) {
			return store.ErrUnknownDevice
		}
		return err
	})
	if err != nil {
		return store.Device{}, fmt.Errorf("sqlite: device: %w", err)
	}
	return d, nil
}

// Devices returns an account's devices in ID order.
func (s *Store) Devices(ctx context.Context, address string) ([]store.Device, error) {
	var devs []store.Device
	err := s.read(func(db *sql.DB) error {
		rows, err := db.QueryContext(ctx,
			`SELECT `+deviceColumns+` FROM devices WHERE address = ? ORDER BY id`, address)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			d, err := scanDevice(rows, address)
			if err != nil {
				return err
			}
			devs = append(devs, d)
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if len(devs) == 0 {
			return accountExists(ctx, db, address)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: devices: %w", err)
	}
	return devs, nil
}

// accountExists returns store.ErrUnknownAccount unless the account exists.
func accountExists(ctx context.Context, db *sql.DB, address string) error {
	var one int
	err := db.QueryRowContext(ctx, `SELECT 1 FROM accounts WHERE address = ?`, address).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrUnknownAccount
	}
	return err
}

// Policy returns an account's delivery policy.
func (s *Store) Policy(ctx context.Context, address string) (store.Policy, error) {
	var p store.Policy
	err := s.read(func(db *sql.DB) error {
		// One statement: one snapshot for the account and its verifiers.
		st, err := s.readStmt(ctx, db, `SELECT a.request_lane_open, v.pos, v.verifier
			FROM accounts a LEFT JOIN policy_verifiers v ON v.address = a.address
			WHERE a.address = ? ORDER BY v.pos`)
		if err != nil {
			return err
		}
		rows, err := st.QueryContext(ctx, address)
		if err != nil {
			return err
		}
		defer rows.Close()
		found := false
		for rows.Next() {
			var (
				open int64
				pos  sql.NullInt64 // NULL: the account has no verifier
				v    []byte
			)
			if err := rows.Scan(&open, &pos, &v); err != nil {
				return err
			}
			found = true
			p.RequestLaneOpen = open != 0
			if pos.Valid {
				p.Verifiers = append(p.Verifiers, v)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		if !found {
			return store.ErrUnknownAccount
		}
		return nil
	})
	if err != nil {
		return store.Policy{}, fmt.Errorf("sqlite: policy: %w", err)
	}
	return p, nil
}

// policiesStatements holds the statements of Policies by the number of
// addresses they name: 1, 2, 4, ... maxAckChunk.
var policiesStatements = func() map[int]string {
	m := make(map[int]string)
	for n := 1; n <= maxAckChunk; n *= 2 {
		m[n] = `SELECT a.address, a.request_lane_open, v.pos, v.verifier
			FROM accounts a LEFT JOIN policy_verifiers v ON v.address = a.address
			WHERE a.address IN (?` + strings.Repeat(`, ?`, n-1) + `) ORDER BY a.address, v.pos`
	}
	return m
}()

// Policies returns the delivery policies of several accounts, as Policy
// does for one, with one statement per 64 addresses; accounts that do not
// exist are left out of the map. The server uses it to admit a send
// request's envelopes for many recipients.
func (s *Store) Policies(ctx context.Context, addresses []string) (map[string]store.Policy, error) {
	out := make(map[string]store.Policy, len(addresses))
	err := s.read(func(db *sql.DB) error {
		for rest := addresses; len(rest) > 0; {
			chunk := rest[:min(len(rest), maxAckChunk)]
			rest = rest[len(chunk):]
			n := 1
			for n < len(chunk) {
				n *= 2
			}
			args := make([]any, n)
			for i := range args {
				args[i] = chunk[min(i, len(chunk)-1)] // a repeat changes nothing
			}
			st, err := s.readStmt(ctx, db, policiesStatements[n])
			if err != nil {
				return err
			}
			if err := scanPolicies(ctx, st, args, out); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: policies: %w", err)
	}
	return out, nil
}

func scanPolicies(ctx context.Context, st *sql.Stmt, args []any, out map[string]store.Policy) error {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var (
			address string
			open    int64
			pos     sql.NullInt64 // NULL: the account has no verifier
			v       []byte
		)
		if err := rows.Scan(&address, &open, &pos, &v); err != nil {
			return err
		}
		p := out[address]
		p.RequestLaneOpen = open != 0
		if pos.Valid {
			p.Verifiers = append(p.Verifiers, v)
		}
		out[address] = p
	}
	return rows.Err()
}

// SetPolicy replaces an account's delivery policy, or returns
// store.ErrUnknownAccount.
func (s *Store) SetPolicy(ctx context.Context, address string, p store.Policy) error {
	size := 64
	for _, v := range p.Verifiers {
		size += len(v) + 16
	}
	err := s.write(ctx, size, func(w *wtx) error {
		n, err := w.exec(`UPDATE accounts SET request_lane_open = ? WHERE address = ?`,
			p.RequestLaneOpen, address)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrUnknownAccount
		}
		if _, err := w.exec(`DELETE FROM policy_verifiers WHERE address = ?`, address); err != nil {
			return err
		}
		for i, v := range p.Verifiers {
			if _, err := w.exec(`INSERT INTO policy_verifiers (address, pos, verifier) VALUES (?, ?, ?)`,
				address, i, blob(v)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: set policy: %w", err)
	}
	return nil
}
