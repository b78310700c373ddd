package profile

// ContactToken returns the delivery token a contact gave: nil when it was
// found revoked, ErrNotFound when the contact never gave one.
func (t *Tx) ContactToken(address string) ([]byte, error) {
	var tok []byte
	if err := t.get("contact token", `SELECT token FROM contacts WHERE address = ?`, []any{address}, &tok); err != nil {
		return nil, err
	}
	return tok, nil
}

// SetContactToken records a contact's delivery token (nil: revoked).
func (t *Tx) SetContactToken(address string, token []byte) error {
	_, err := t.exec("save contact token", `INSERT INTO contacts (address, token) VALUES (?, ?)
		ON CONFLICT (address) DO UPDATE SET token = excluded.token`, address, token)
	return err
}
