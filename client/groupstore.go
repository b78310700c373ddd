package client

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// groupSchema holds the MLS state of a profile (spec/09-mls.md).
const groupSchema = `
CREATE TABLE IF NOT EXISTS groups (
	id BLOB PRIMARY KEY,
	kind INTEGER NOT NULL,
	name TEXT NOT NULL,
	peer TEXT NOT NULL,
	state BLOB NOT NULL,
	version INTEGER NOT NULL,
	active INTEGER NOT NULL,
	created_at_ms INTEGER NOT NULL,
	inviter TEXT NOT NULL DEFAULT '',
	joined_epoch INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS groups_peer ON groups (peer, id);
CREATE TABLE IF NOT EXISTS key_packages (
	ref BLOB PRIMARY KEY,
	bundle BLOB NOT NULL,
	last_resort INTEGER NOT NULL,
	created_at_ms INTEGER NOT NULL,
	used_at_ms INTEGER
);
CREATE TABLE IF NOT EXISTS held_mls (
	envelope_id BLOB PRIMARY KEY,
	group_id BLOB NOT NULL,
	sender TEXT NOT NULL,
	sender_device INTEGER NOT NULL,
	sender_key BLOB NOT NULL,
	payload BLOB NOT NULL,
	received_at_ms INTEGER NOT NULL,
	lane INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS held_mls_group ON held_mls (group_id);
CREATE TABLE IF NOT EXISTS outbox (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	payload BLOB NOT NULL,
	targets BLOB NOT NULL,
	created_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fragments (
	hash BLOB NOT NULL,
	sender TEXT NOT NULL,
	sender_device INTEGER NOT NULL,
	sender_key BLOB NOT NULL,
	idx INTEGER NOT NULL,
	count INTEGER NOT NULL,
	data BLOB NOT NULL,
	received_at_ms INTEGER NOT NULL,
	lane INTEGER NOT NULL,
	PRIMARY KEY (hash, sender, sender_device, idx)
);
CREATE TABLE IF NOT EXISTS processed (
	envelope_id BLOB PRIMARY KEY,
	at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS own_devices (
	device INTEGER PRIMARY KEY,
	sig_key BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS links (
	token BLOB PRIMARY KEY,
	secret BLOB NOT NULL,
	device INTEGER NOT NULL,
	expires_at_ms INTEGER NOT NULL,
	role INTEGER NOT NULL
);
`

// Limits on what a profile keeps for others (spec/09-mls.md section 9.6,
// spec/07-envelopes.md section 7.16).
const (
	maxHeldPerGroup  = 256
	maxHeldUnknown   = 1024 // held for groups this device does not hold
	heldFor          = 7 * 24 * time.Hour
	processedFor     = 31 * 24 * time.Hour
	maxFragmentBytes = 64 << 20
)

// markProcessed records, in the transaction that stores what an envelope
// brought, that it was processed, so that a redelivery (the
// acknowledgement was lost) is acknowledged without processing it again.
func markProcessed(ctx context.Context, tx *sql.Tx, envelopeID []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO processed (envelope_id, at_ms) VALUES (?, ?) ON CONFLICT (envelope_id) DO NOTHING`,
		envelopeID, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// processed reports whether an envelope was processed already.
func (p *Profile) processed(ctx context.Context, envelopeID []byte) (bool, error) {
	var n int
	if err := p.db.QueryRowContext(ctx, `SELECT count(*) FROM processed WHERE envelope_id = ?`, envelopeID).Scan(&n); err != nil {
		return false, fmt.Errorf("profile: %w", err)
	}
	return n > 0, nil
}

// forgetProcessed drops the record of envelopes processed long ago.
func (p *Profile) forgetProcessed(ctx context.Context) error {
	_, err := p.db.ExecContext(ctx, `DELETE FROM processed WHERE at_ms < ?`, time.Now().Add(-processedFor).UnixMilli())
	return err
}

// errStateChanged reports that another process changed a group's state
// between loading and saving it; the caller starts again from the new
// state.
var errStateChanged = errors.New("profile: group state changed meanwhile")

// groupRow is one stored group.
type groupRow struct {
	ID      []byte
	Kind    int
	Name    string
	Peer    string // the other user of a direct chat
	State   []byte
	Version int64
	Active  bool
	Created time.Time
	// Inviter names the device whose Welcome this device joined by
	// (empty for a group it created), and JoinedEpoch the epoch it joined.
	Inviter     string
	JoinedEpoch uint64
}

func scanGroup(sc interface{ Scan(...any) error }) (*groupRow, error) {
	var g groupRow
	var active int
	var created int64
	if err := sc.Scan(&g.ID, &g.Kind, &g.Name, &g.Peer, &g.State, &g.Version, &active, &created, &g.Inviter, &g.JoinedEpoch); err != nil {
		return nil, err
	}
	g.Active, g.Created = active == 1, time.UnixMilli(created)
	return &g, nil
}

const groupColumns = `id, kind, name, peer, state, version, active, created_at_ms, inviter, joined_epoch`

// group returns a stored group, or nil when there is none.
func (p *Profile) group(ctx context.Context, id []byte) (*groupRow, error) {
	g, err := scanGroup(p.db.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM groups WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return g, nil
}

// directGroup returns the active direct group with peer that new messages
// use: the one with the lowest identifier (spec/09-mls.md section 9.5).
func (p *Profile) directGroup(ctx context.Context, peer string) (*groupRow, error) {
	g, err := scanGroup(p.db.QueryRowContext(ctx, `SELECT `+groupColumns+` FROM groups
		WHERE peer = ? AND kind = 1 AND active = 1 ORDER BY id LIMIT 1`, peer))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	return g, nil
}

// groups returns every stored group, oldest first.
func (p *Profile) groups(ctx context.Context) ([]*groupRow, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT `+groupColumns+` FROM groups ORDER BY created_at_ms, id`)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	defer rows.Close()
	var out []*groupRow
	for rows.Next() {
		g, err := scanGroup(rows)
		if err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		out = append(out, g)
	}
	return out, rows.Err()
}

// insertGroup stores a group the device created or joined; a group it
// left, or joined on the losing branch of a commit race, is replaced (it
// was added again).
func insertGroup(ctx context.Context, tx *sql.Tx, g *groupRow) error {
	active := 0
	if g.Active {
		active = 1
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO groups (`+groupColumns+`) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, peer = excluded.peer,
			state = excluded.state, version = groups.version + 1, active = excluded.active,
			inviter = excluded.inviter, joined_epoch = excluded.joined_epoch`,
		g.ID, g.Kind, g.Name, g.Peer, g.State, active, time.Now().UnixMilli(), g.Inviter, g.JoinedEpoch)
	if err != nil {
		return fmt.Errorf("profile: save group: %w", err)
	}
	return nil
}

// updateGroup saves a group's new state if nobody saved another since it
// was loaded at g.Version, else errStateChanged.
func updateGroup(ctx context.Context, tx *sql.Tx, g *groupRow, state []byte, active bool) error {
	a := 0
	if active {
		a = 1
	}
	res, err := tx.ExecContext(ctx, `UPDATE groups SET state = ?, version = version + 1, active = ? WHERE id = ? AND version = ?`,
		state, a, g.ID, g.Version)
	if err != nil {
		return fmt.Errorf("profile: save group: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("profile: save group: %w", err)
	} else if n != 1 {
		return errStateChanged
	}
	return nil
}

// inTx runs f in one transaction (the profile opens them IMMEDIATE, so
// two processes never interleave their writes).
func (p *Profile) inTx(ctx context.Context, f func(tx *sql.Tx) error) error {
	tx, err := p.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// heldMessage is an MLS message kept until its group or epoch is known.
type heldMessage struct {
	EnvelopeID []byte
	GroupID    []byte
	Sender     sender
	Payload    []byte
	ReceivedAt time.Time
	Lane       int
}

// sender is the verified sender of an envelope.
type sender struct {
	Address string
	Device  uint32
	SigKey  []byte
}

// holdMessage keeps m for later. A group holds at most maxHeldPerGroup
// messages and the groups this device does not hold maxHeldUnknown in all;
// the oldest are dropped to make room.
func holdMessage(ctx context.Context, tx *sql.Tx, m *heldMessage) error {
	if err := markProcessed(ctx, tx, m.EnvelopeID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO held_mls (envelope_id, group_id, sender, sender_device, sender_key, payload, received_at_ms, lane)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (envelope_id) DO NOTHING`,
		m.EnvelopeID, m.GroupID, m.Sender.Address, m.Sender.Device, m.Sender.SigKey, m.Payload, m.ReceivedAt.UnixMilli(), m.Lane)
	if err != nil {
		return fmt.Errorf("profile: hold message: %w", err)
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM held_mls WHERE group_id = ? AND rowid NOT IN
		(SELECT rowid FROM held_mls WHERE group_id = ? ORDER BY rowid DESC LIMIT ?)`, m.GroupID, m.GroupID, maxHeldPerGroup)
	if err != nil {
		return fmt.Errorf("profile: hold message: %w", err)
	}
	_, err = tx.ExecContext(ctx, `DELETE FROM held_mls WHERE rowid IN (SELECT h.rowid FROM held_mls h
		WHERE NOT EXISTS (SELECT 1 FROM groups g WHERE g.id = h.group_id) ORDER BY h.rowid DESC LIMIT -1 OFFSET ?)`, maxHeldUnknown)
	if err != nil {
		return fmt.Errorf("profile: hold message: %w", err)
	}
	return nil
}

// expireHeld drops held messages and fragments kept too long, and held
// messages of groups this device left.
func (p *Profile) expireHeld(ctx context.Context) error {
	old := time.Now().Add(-heldFor).UnixMilli()
	if _, err := p.db.ExecContext(ctx, `DELETE FROM held_mls WHERE received_at_ms < ? OR group_id IN (SELECT id FROM groups WHERE active = 0)`, old); err != nil {
		return err
	}
	_, err := p.db.ExecContext(ctx, `DELETE FROM fragments WHERE received_at_ms < ?`, old)
	return err
}

// heldMessages returns the messages held for a group, oldest first, after
// dropping those held too long.
func (p *Profile) heldMessages(ctx context.Context, group []byte) ([]*heldMessage, error) {
	if err := p.expireHeld(ctx); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	rows, err := p.db.QueryContext(ctx, `SELECT envelope_id, group_id, sender, sender_device, sender_key, payload, received_at_ms, lane
		FROM held_mls WHERE group_id = ? ORDER BY rowid`, group)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	defer rows.Close()
	var out []*heldMessage
	for rows.Next() {
		var m heldMessage
		var recv int64
		if err := rows.Scan(&m.EnvelopeID, &m.GroupID, &m.Sender.Address, &m.Sender.Device, &m.Sender.SigKey, &m.Payload, &recv, &m.Lane); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		m.ReceivedAt = time.UnixMilli(recv)
		out = append(out, &m)
	}
	return out, rows.Err()
}

func unholdMessage(ctx context.Context, tx *sql.Tx, envelopeID []byte) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM held_mls WHERE envelope_id = ?`, envelopeID); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// trustOwnDevice records a device of the profile's own account as trusted
// (spec/09-mls.md section 9.5).
func trustOwnDevice(ctx context.Context, tx *sql.Tx, device uint32, sigKey []byte) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO own_devices (device, sig_key) VALUES (?, ?)
		ON CONFLICT (device) DO UPDATE SET sig_key = excluded.sig_key`, device, sigKey)
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// ownDevices returns the trusted devices of the own account (this one
// excluded unless recorded) with their signature keys.
func (p *Profile) ownDevices(ctx context.Context) (map[uint32][]byte, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT device, sig_key FROM own_devices`)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	defer rows.Close()
	out := map[uint32][]byte{}
	for rows.Next() {
		var d uint32
		var k []byte
		if err := rows.Scan(&d, &k); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		out[d] = k
	}
	return out, rows.Err()
}

func untrustOwnDevice(ctx context.Context, tx *sql.Tx, device uint32) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM own_devices WHERE device = ?`, device); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// queueOut adds a payload for the target devices to the outbox, in the
// transaction that saves the group state it belongs to, so that what a
// device committed to is sent even after a crash or a failed send.
func queueOut(ctx context.Context, tx *sql.Tx, payload []byte, targets []wire.Mailbox) (int64, error) {
	t, err := wire.Marshal(targets)
	if err != nil {
		return 0, err
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO outbox (payload, targets, created_at_ms) VALUES (?, ?, ?)`, payload, t, time.Now().UnixMilli())
	if err != nil {
		return 0, fmt.Errorf("profile: outbox: %w", err)
	}
	return res.LastInsertId()
}

// outItem is one payload waiting in the outbox.
type outItem struct {
	ID      int64
	Payload []byte
	Targets []wire.Mailbox
}

// outbox returns what waits to be sent, oldest first.
func (p *Profile) outbox(ctx context.Context) ([]outItem, error) {
	rows, err := p.db.QueryContext(ctx, `SELECT id, payload, targets FROM outbox ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	defer rows.Close()
	var out []outItem
	for rows.Next() {
		var it outItem
		var t []byte
		if err := rows.Scan(&it.ID, &it.Payload, &t); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		if err := wire.Unmarshal(t, &it.Targets); err != nil {
			return nil, fmt.Errorf("profile: outbox targets: %w", err)
		}
		out = append(out, it)
	}
	return out, rows.Err()
}

func (p *Profile) sent(ctx context.Context, id int64) error {
	_, err := p.db.ExecContext(ctx, `DELETE FROM outbox WHERE id = ?`, id)
	return err
}
