package profile

import (
	"database/sql"
	"time"
)

// Fragment is one stored fragment of a payload too large for one envelope
// (spec/09-mls.md section 9.6).
type Fragment struct {
	Hash         []byte // of the whole payload
	Sender       string
	SenderDevice uint32
	SenderKey    []byte
	Index        uint64
	Count        uint64
	Data         []byte
	ReceivedAt   time.Time
	Lane         int
}

// AddFragment stores a fragment, unless one with its hash, sender and
// index is stored.
func (t *Tx) AddFragment(f *Fragment) error {
	_, err := t.exec("store fragment", `INSERT INTO fragments (hash, sender, sender_device, sender_key, idx, count, data, received_at_ms, lane)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
		f.Hash, f.Sender, f.SenderDevice, f.SenderKey, f.Index, f.Count, f.Data, f.ReceivedAt.UnixMilli(), f.Lane)
	return err
}

// TrimFragments keeps the newest fragments holding at most maxBytes of
// data in all, and deletes the others.
func (t *Tx) TrimFragments(maxBytes int) error {
	_, err := t.exec("trim fragments", `DELETE FROM fragments WHERE rowid IN (SELECT rowid FROM
		(SELECT rowid, sum(length(data)) OVER (ORDER BY rowid DESC) AS total FROM fragments) WHERE total > ?)`, maxBytes)
	return err
}

// Fragments returns the fragments of one sender's payload, by index.
func (t *Tx) Fragments(hash []byte, sender string, device uint32) ([]*Fragment, error) {
	var out []*Fragment
	err := t.list("fragments", `SELECT hash, sender, sender_device, sender_key, idx, count, data, received_at_ms, lane FROM fragments
		WHERE hash = ? AND sender = ? AND sender_device = ? ORDER BY idx`, []any{hash, sender, device}, func(rows *sql.Rows) error {
		var f Fragment
		var recv int64
		if err := rows.Scan(&f.Hash, &f.Sender, &f.SenderDevice, &f.SenderKey, &f.Index, &f.Count, &f.Data, &recv, &f.Lane); err != nil {
			return err
		}
		f.ReceivedAt = time.UnixMilli(recv)
		out = append(out, &f)
		return nil
	})
	return out, err
}

// DeleteFragments deletes the fragments of one sender's payload.
func (t *Tx) DeleteFragments(hash []byte, sender string, device uint32) error {
	_, err := t.exec("delete fragments", `DELETE FROM fragments WHERE hash = ? AND sender = ? AND sender_device = ?`, hash, sender, device)
	return err
}

// ExpireFragments deletes the fragments received before a time.
func (t *Tx) ExpireFragments(before time.Time) error {
	_, err := t.exec("expire fragments", `DELETE FROM fragments WHERE received_at_ms < ?`, before.UnixMilli())
	return err
}
