package profile

import "time"

// LinkRole says which side of a device link a stored link is
// (spec/09-mls.md section 9.5).
type LinkRole int

// Roles of a stored link.
const (
	LinkShown   LinkRole = 0 // this device showed the code
	LinkJoining LinkRole = 1 // this device registers with the code
)

// Link is a pending device link: the homeserver's token, the secret the
// code carries and the device that showed it.
type Link struct {
	Token   []byte
	Secret  []byte
	Device  uint32
	Expires time.Time
	Role    LinkRole
}

// AddLink stores a link, unless one with its token is stored.
func (t *Tx) AddLink(l *Link) error {
	_, err := t.exec("save link", `INSERT INTO links (token, secret, device, expires_at_ms, role) VALUES (?, ?, ?, ?, ?)
		ON CONFLICT (token) DO NOTHING`, l.Token, l.Secret, l.Device, l.Expires.UnixMilli(), l.Role)
	return err
}

// LinkSecret returns the secret of an unexpired link with this token and
// role.
func (t *Tx) LinkSecret(token []byte, role LinkRole) ([]byte, error) {
	var secret []byte
	err := t.get("link", `SELECT secret FROM links WHERE token = ? AND role = ? AND expires_at_ms >= ?`,
		[]any{token, role, time.Now().UnixMilli()}, &secret)
	if err != nil {
		return nil, err
	}
	return secret, nil
}

// JoinLink returns the link this device registers with.
func (t *Tx) JoinLink() (*Link, error) {
	l := Link{Role: LinkJoining}
	var exp int64
	err := t.get("link", `SELECT token, secret, device, expires_at_ms FROM links WHERE role = ? ORDER BY rowid LIMIT 1`,
		[]any{LinkJoining}, &l.Token, &l.Secret, &l.Device, &exp)
	if err != nil {
		return nil, err
	}
	l.Expires = time.UnixMilli(exp)
	return &l, nil
}

// DeleteLink deletes the link with this token.
func (t *Tx) DeleteLink(token []byte) error {
	_, err := t.exec("delete link", `DELETE FROM links WHERE token = ?`, token)
	return err
}

// DeleteLinks deletes every link of a role.
func (t *Tx) DeleteLinks(role LinkRole) error {
	_, err := t.exec("delete links", `DELETE FROM links WHERE role = ?`, role)
	return err
}

// DeleteExpiredLinks deletes the links expired before now.
func (t *Tx) DeleteExpiredLinks() error {
	_, err := t.exec("delete links", `DELETE FROM links WHERE expires_at_ms < ?`, time.Now().UnixMilli())
	return err
}
