package profile

import (
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// ErrStateChanged is returned by UpdateGroupState when another
// transaction saved the group since it was read; the caller starts again
// from the new state.
var ErrStateChanged = errors.New("profile: group state changed meanwhile")

// Group is one stored MLS group.
type Group struct {
	ID      []byte
	Kind    int    // wire.GroupKindGroup or wire.GroupKindDirect
	Name    string // group chats
	Peer    string // the other user of a direct chat
	State   []byte // the MLS state
	Version int64  // incremented at every save
	Active  bool   // false once this device left or was removed
	Created time.Time
	// Inviter names the device whose Welcome this device joined by
	// (empty for a group it created), and JoinedEpoch the epoch it joined.
	Inviter     string
	JoinedEpoch uint64
}

const groupColumns = `id, kind, name, peer, state, version, active, created_at_ms, inviter, joined_epoch`

func scanGroup(sc interface{ Scan(...any) error }) (*Group, error) {
	var g Group
	var active int
	var created int64
	if err := sc.Scan(&g.ID, &g.Kind, &g.Name, &g.Peer, &g.State, &g.Version, &active, &created, &g.Inviter, &g.JoinedEpoch); err != nil {
		return nil, err
	}
	g.Active, g.Created = active == 1, time.UnixMilli(created)
	return &g, nil
}

// Group returns a stored group.
func (t *Tx) Group(id []byte) (*Group, error) {
	return t.oneGroup(`SELECT `+groupColumns+` FROM groups WHERE id = ?`, id)
}

// DirectGroup returns the active direct group with peer that new messages
// use: the one with the lowest identifier (spec/09-mls.md section 9.5).
func (t *Tx) DirectGroup(peer string) (*Group, error) {
	return t.oneGroup(`SELECT `+groupColumns+` FROM groups WHERE peer = ? AND kind = ? AND active = 1 ORDER BY id LIMIT 1`,
		peer, wire.GroupKindDirect)
}

func (t *Tx) oneGroup(query string, args ...any) (*Group, error) {
	var g *Group
	err := t.list("group", query, args, func(rows *sql.Rows) (err error) {
		g, err = scanGroup(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	if g == nil {
		return nil, errNotFound("group")
	}
	return g, nil
}

// Groups returns every stored group, oldest first.
func (t *Tx) Groups() ([]*Group, error) {
	var out []*Group
	err := t.list("groups", `SELECT `+groupColumns+` FROM groups ORDER BY created_at_ms, id`, nil, func(rows *sql.Rows) error {
		g, err := scanGroup(rows)
		if err != nil {
			return err
		}
		out = append(out, g)
		return nil
	})
	return out, err
}

// PutGroup stores a group the device created or joined. A stored group
// with its identifier (one it left, or joined on the losing branch of a
// commit race) is replaced, keeping its creation time; its version moves
// on.
func (t *Tx) PutGroup(g *Group) error {
	_, err := t.exec("save group", `INSERT INTO groups (`+groupColumns+`) VALUES (?, ?, ?, ?, ?, 1, ?, ?, ?, ?)
		ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name, peer = excluded.peer,
			state = excluded.state, version = groups.version + 1, active = excluded.active,
			inviter = excluded.inviter, joined_epoch = excluded.joined_epoch`,
		g.ID, g.Kind, g.Name, g.Peer, g.State, boolInt(g.Active), time.Now().UnixMilli(), g.Inviter, g.JoinedEpoch)
	return err
}

// UpdateGroupState saves a group's new state if nobody saved another since
// g was read at g.Version; else it returns ErrStateChanged.
func (t *Tx) UpdateGroupState(g *Group, state []byte, active bool) error {
	res, err := t.exec("save group", `UPDATE groups SET state = ?, version = version + 1, active = ? WHERE id = ? AND version = ?`,
		state, boolInt(active), g.ID, g.Version)
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("profile: save group: %w", err)
	}
	if n != 1 {
		return ErrStateChanged
	}
	return nil
}

// SetGroupKind changes a group's kind and peer (a direct chat that became
// a group chat).
func (t *Tx) SetGroupKind(id []byte, kind int, peer string) error {
	_, err := t.exec("save group", `UPDATE groups SET kind = ?, peer = ? WHERE id = ?`, kind, peer, id)
	return err
}
