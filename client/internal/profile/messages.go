package profile

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// Message is a received message.
type Message struct {
	ID           [16]byte // the envelope that carried it
	Sender       string
	SenderDevice uint32
	Recipient    string
	Text         string
	SentAt       time.Time // sender's clock
	ReceivedAt   time.Time // the homeserver's clock
	RequestLane  bool
	Group        []byte
	MessageID    [32]byte
	Type         int // content type
	Ref          []byte
	File         *wire.FileRef    // a file message's reference
	Call         *wire.CallSignal // a call message's signal

	// Read only: the group's name and kind (a message from before
	// groups has kind wire.GroupKindDirect).
	GroupName string
	GroupKind int
}

// InsertMessage stores m, unshown; false when a message with its ID is
// stored already.
func (t *Tx) InsertMessage(m *Message) (bool, error) {
	var file, call []byte
	if m.File != nil {
		var err error
		if file, err = wire.Marshal(m.File); err != nil {
			return false, fmt.Errorf("profile: store message: file reference: %w", err)
		}
	}
	if m.Call != nil {
		var err error
		if call, err = wire.Marshal(m.Call); err != nil {
			return false, fmt.Errorf("profile: store message: call signal: %w", err)
		}
	}
	res, err := t.exec("store message", `INSERT INTO messages
		(id, sender, sender_device, recipient, text, sent_at_ms, received_at_ms, lane, stored_at_ms, group_id, msg_id, content_type, ref, shown, file_ref, call)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?) ON CONFLICT (id) DO NOTHING`,
		m.ID[:], m.Sender, m.SenderDevice, m.Recipient, m.Text, m.SentAt.UnixMilli(), m.ReceivedAt.UnixMilli(),
		boolInt(m.RequestLane), time.Now().UnixMilli(), m.Group, m.MessageID[:], m.Type, m.Ref, file, call)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("profile: store message: %w", err)
	}
	return n == 1, nil
}

// Messages returns the stored messages (only those not marked shown when
// unshownOnly) in the order they were stored.
func (t *Tx) Messages(unshownOnly bool) ([]Message, error) {
	q := `SELECT m.id, m.sender, m.sender_device, m.recipient, m.text, m.sent_at_ms, m.received_at_ms, m.lane,
		m.group_id, m.msg_id, m.content_type, m.ref, coalesce(g.name, ''), coalesce(g.kind, ?), m.file_ref, m.call
		FROM messages m LEFT JOIN groups g ON g.id = m.group_id`
	if unshownOnly {
		q += ` WHERE m.shown = 0`
	}
	var out []Message
	err := t.list("messages", q+` ORDER BY m.rowid`, []any{wire.GroupKindDirect}, func(rows *sql.Rows) error {
		var m Message
		var id, msgID, file, call []byte
		var sent, recv int64
		var lane int
		if err := rows.Scan(&id, &m.Sender, &m.SenderDevice, &m.Recipient, &m.Text, &sent, &recv, &lane,
			&m.Group, &msgID, &m.Type, &m.Ref, &m.GroupName, &m.GroupKind, &file, &call); err != nil {
			return err
		}
		if call != nil {
			m.Call = new(wire.CallSignal)
			if err := wire.Unmarshal(call, m.Call); err != nil {
				return fmt.Errorf("call signal: %w", err)
			}
		}
		if file != nil {
			m.File = new(wire.FileRef)
			if err := wire.Unmarshal(file, m.File); err != nil {
				return fmt.Errorf("file reference: %w", err)
			}
		}
		copy(m.ID[:], id)
		copy(m.MessageID[:], msgID)
		m.SentAt, m.ReceivedAt, m.RequestLane = time.UnixMilli(sent), time.UnixMilli(recv), lane == 1
		out = append(out, m)
		return nil
	})
	return out, err
}

// MarkShown records that a message was shown to the user.
func (t *Tx) MarkShown(id [16]byte) error {
	_, err := t.exec("mark shown", `UPDATE messages SET shown = 1 WHERE id = ?`, id[:])
	return err
}

// MessageSender returns the sender of the message of a group with the
// given message identifier (spec/10-content.md section 10.2).
func (t *Tx) MessageSender(group, messageID []byte) (string, error) {
	var sender string
	err := t.get("referenced message", `SELECT sender FROM messages WHERE group_id = ? AND msg_id = ? ORDER BY rowid LIMIT 1`,
		[]any{group, messageID}, &sender)
	return sender, err
}
