package profile

import (
	"database/sql"
	"time"
)

// Unopened is the record of an envelope that could not be opened because
// the key of a domain could not be had.
type Unopened struct {
	EnvelopeID []byte
	Domain     string // the domain whose key was missing; empty when unknown
	Reason     string
	FirstSeen  time.Time
	LastSeen   time.Time
	Tries      int  // receive runs that failed to open it
	GivenUp    bool // acknowledged without being opened
}

// NoteUnopened records one more failed try to open an envelope and returns
// its record as it is now.
func (t *Tx) NoteUnopened(envelopeID []byte, domain, reason string, now time.Time) (*Unopened, error) {
	ms := now.UnixMilli()
	_, err := t.exec("note unopened envelope", `INSERT INTO unopened (envelope_id, domain, reason, first_seen_ms, last_seen_ms, tries, given_up)
		VALUES (?, ?, ?, ?, ?, 1, 0)
		ON CONFLICT (envelope_id) DO UPDATE SET domain = excluded.domain, reason = excluded.reason,
			last_seen_ms = excluded.last_seen_ms, tries = tries + 1`,
		envelopeID, domain, reason, ms, ms)
	if err != nil {
		return nil, err
	}
	var u *Unopened
	err = t.list("unopened envelopes", `SELECT envelope_id, domain, reason, first_seen_ms, last_seen_ms, tries, given_up
		FROM unopened WHERE envelope_id = ?`, []any{envelopeID}, func(rows *sql.Rows) error {
		var err error
		u, err = scanUnopened(rows)
		return err
	})
	if err == nil && u == nil {
		err = errNotFound("unopened envelopes")
	}
	return u, err
}

// GiveUpUnopened marks the record of an envelope given up: it is
// acknowledged without being opened.
func (t *Tx) GiveUpUnopened(envelopeID []byte) error {
	_, err := t.exec("give up unopened envelope", `UPDATE unopened SET given_up = 1 WHERE envelope_id = ?`, envelopeID)
	return err
}

// DeleteUnopened deletes the record of an envelope (it opened after all).
func (t *Tx) DeleteUnopened(envelopeID []byte) error {
	_, err := t.exec("delete unopened envelope", `DELETE FROM unopened WHERE envelope_id = ?`, envelopeID)
	return err
}

// UnopenedList returns the records, the most recently seen first.
func (t *Tx) UnopenedList() ([]*Unopened, error) {
	var out []*Unopened
	err := t.list("unopened envelopes", `SELECT envelope_id, domain, reason, first_seen_ms, last_seen_ms, tries, given_up
		FROM unopened ORDER BY last_seen_ms DESC, envelope_id`, nil, func(rows *sql.Rows) error {
		u, err := scanUnopened(rows)
		if err == nil {
			out = append(out, u)
		}
		return err
	})
	return out, err
}

// PendingUnopened returns the identifiers of the envelopes not given up.
func (t *Tx) PendingUnopened() ([][]byte, error) {
	var out [][]byte
	err := t.list("unopened envelopes", `SELECT envelope_id FROM unopened WHERE given_up = 0`, nil, func(rows *sql.Rows) error {
		var id []byte
		err := rows.Scan(&id)
		out = append(out, id)
		return err
	})
	return out, err
}

// ForgetUnopened deletes the records last seen before a time, and all but
// the keep most recently seen.
func (t *Tx) ForgetUnopened(before time.Time, keep int) error {
	if _, err := t.exec("forget unopened envelopes", `DELETE FROM unopened WHERE last_seen_ms < ?`, before.UnixMilli()); err != nil {
		return err
	}
	_, err := t.exec("forget unopened envelopes", `DELETE FROM unopened WHERE envelope_id IN
		(SELECT envelope_id FROM unopened ORDER BY last_seen_ms DESC, envelope_id LIMIT -1 OFFSET ?)`, keep)
	return err
}

func scanUnopened(rows *sql.Rows) (*Unopened, error) {
	var u Unopened
	var first, last int64
	if err := rows.Scan(&u.EnvelopeID, &u.Domain, &u.Reason, &first, &last, &u.Tries, &u.GivenUp); err != nil {
		return nil, err
	}
	u.FirstSeen, u.LastSeen = time.UnixMilli(first), time.UnixMilli(last)
	return &u, nil
}
