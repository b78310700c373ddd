package profile

import "time"

// MarkProcessed records that an envelope was processed, so that a
// redelivery (its acknowledgement was lost) is not processed again
// (spec/07-envelopes.md section 7.16).
func (t *Tx) MarkProcessed(envelopeID []byte) error {
	_, err := t.exec("mark processed", `INSERT INTO processed (envelope_id, at_ms) VALUES (?, ?) ON CONFLICT (envelope_id) DO NOTHING`,
		envelopeID, time.Now().UnixMilli())
	return err
}

// Processed reports whether an envelope was processed.
func (t *Tx) Processed(envelopeID []byte) (bool, error) {
	var n int
	err := t.get("processed envelopes", `SELECT count(*) FROM processed WHERE envelope_id = ?`, []any{envelopeID}, &n)
	return n > 0, err
}

// ForgetProcessed drops the record of envelopes processed before a time.
func (t *Tx) ForgetProcessed(before time.Time) error {
	_, err := t.exec("forget processed envelopes", `DELETE FROM processed WHERE at_ms < ?`, before.UnixMilli())
	return err
}
