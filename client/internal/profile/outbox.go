package profile

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// OutItem is one payload waiting in the outbox for its target devices.
type OutItem struct {
	ID      int64
	Payload []byte
	Targets []wire.Mailbox
	Queued  time.Time // when it entered the outbox
}

// QueueOut adds a payload for the target devices to the outbox and returns
// its identifier.
func (t *Tx) QueueOut(payload []byte, targets []wire.Mailbox) (int64, error) {
	b, err := wire.Marshal(targets)
	if err != nil {
		return 0, fmt.Errorf("profile: outbox targets: %w", err)
	}
	res, err := t.exec("queue out", `INSERT INTO outbox (payload, targets, created_at_ms) VALUES (?, ?, ?)`, payload, b, time.Now().UnixMilli())
	if err != nil {
		return 0, err
	}
	id, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("profile: queue out: %w", err)
	}
	return id, nil
}

// Outbox returns what waits to be sent, oldest first.
func (t *Tx) Outbox() ([]OutItem, error) {
	var out []OutItem
	err := t.list("outbox", `SELECT id, payload, targets, created_at_ms FROM outbox ORDER BY id`, nil, func(rows *sql.Rows) error {
		var it OutItem
		var b []byte
		var ms int64
		if err := rows.Scan(&it.ID, &it.Payload, &b, &ms); err != nil {
			return err
		}
		it.Queued = time.UnixMilli(ms)
		if err := wire.Unmarshal(b, &it.Targets); err != nil {
			return fmt.Errorf("targets: %w", err)
		}
		out = append(out, it)
		return nil
	})
	return out, err
}

// DeleteOut removes a payload from the outbox.
func (t *Tx) DeleteOut(id int64) error {
	_, err := t.exec("outbox", `DELETE FROM outbox WHERE id = ?`, id)
	return err
}

// SetOutTargets narrows a payload waiting in the outbox to the target
// devices it still has to reach.
func (t *Tx) SetOutTargets(id int64, targets []wire.Mailbox) error {
	b, err := wire.Marshal(targets)
	if err != nil {
		return fmt.Errorf("profile: outbox targets: %w", err)
	}
	res, err := t.exec("outbox targets", `UPDATE outbox SET targets = ? WHERE id = ?`, b, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errNotFound("outbox item")
	}
	return nil
}
