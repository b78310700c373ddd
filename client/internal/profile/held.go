package profile

import (
	"database/sql"
	"time"
)

// HeldMessage is an MLS message kept until its group or epoch is known.
type HeldMessage struct {
	EnvelopeID   []byte
	GroupID      []byte
	Sender       string
	SenderDevice uint32
	SenderKey    []byte // the sender's signature key
	Payload      []byte
	ReceivedAt   time.Time
	Lane         int
}

// Hold keeps m. A group holds at most maxPerGroup messages, and the groups
// the profile does not hold maxUnknown in all: the oldest are dropped to
// make room.
func (t *Tx) Hold(m *HeldMessage, maxPerGroup, maxUnknown int) error {
	_, err := t.exec("hold message", `INSERT INTO held_mls (envelope_id, group_id, sender, sender_device, sender_key, payload, received_at_ms, lane)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (envelope_id) DO NOTHING`,
		m.EnvelopeID, m.GroupID, m.Sender, m.SenderDevice, m.SenderKey, m.Payload, m.ReceivedAt.UnixMilli(), m.Lane)
	if err != nil {
		return err
	}
	_, err = t.exec("hold message", `DELETE FROM held_mls WHERE group_id = ? AND rowid NOT IN
		(SELECT rowid FROM held_mls WHERE group_id = ? ORDER BY rowid DESC LIMIT ?)`, m.GroupID, m.GroupID, maxPerGroup)
	if err != nil {
		return err
	}
	_, err = t.exec("hold message", `DELETE FROM held_mls WHERE rowid IN (SELECT h.rowid FROM held_mls h
		WHERE NOT EXISTS (SELECT 1 FROM groups g WHERE g.id = h.group_id) ORDER BY h.rowid DESC LIMIT -1 OFFSET ?)`, maxUnknown)
	return err
}

// HeldMessages returns the messages held for a group, oldest first.
func (t *Tx) HeldMessages(group []byte) ([]*HeldMessage, error) {
	var out []*HeldMessage
	err := t.list("held messages", `SELECT envelope_id, group_id, sender, sender_device, sender_key, payload, received_at_ms, lane
		FROM held_mls WHERE group_id = ? ORDER BY rowid`, []any{group}, func(rows *sql.Rows) error {
		var m HeldMessage
		var recv int64
		if err := rows.Scan(&m.EnvelopeID, &m.GroupID, &m.Sender, &m.SenderDevice, &m.SenderKey, &m.Payload, &recv, &m.Lane); err != nil {
			return err
		}
		m.ReceivedAt = time.UnixMilli(recv)
		out = append(out, &m)
		return nil
	})
	return out, err
}

// IsHeld reports whether the message of an envelope is held.
func (t *Tx) IsHeld(envelopeID []byte) (bool, error) {
	var n int
	err := t.get("held messages", `SELECT count(*) FROM held_mls WHERE envelope_id = ?`, []any{envelopeID}, &n)
	return n > 0, err
}

// Unhold deletes a held message.
func (t *Tx) Unhold(envelopeID []byte) error {
	_, err := t.exec("unhold message", `DELETE FROM held_mls WHERE envelope_id = ?`, envelopeID)
	return err
}

// ExpireHeld deletes the messages held since before a time, and those of
// groups this device left.
func (t *Tx) ExpireHeld(before time.Time) error {
	_, err := t.exec("expire held messages", `DELETE FROM held_mls WHERE received_at_ms < ? OR group_id IN (SELECT id FROM groups WHERE active = 0)`,
		before.UnixMilli())
	return err
}
