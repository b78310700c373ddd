package client

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // database/sql driver "sqlite"

	"github.com/xchat-im/xchat/spec/wire"
)

// ErrNoIdentity is returned when a profile has no registered identity.
var ErrNoIdentity = errors.New("this profile has no identity yet: create one with 'xchat register USER@DOMAIN --server HOST:PORT'")

// ProfileFile is the database in a profile directory.
const ProfileFile = "profile.db"

// Profile is a client's local state: its identity and keys, its contacts'
// delivery tokens and the messages it received. It lives in one SQLite file,
// readable by its owner only.
type Profile struct {
	dir string
	db  *sql.DB
}

// profileVersion is the format of the profile database: 2 added MLS
// groups, key packages, held-back MLS messages, trusted own devices and
// device links.
const profileVersion = 2

const profileSchema = `
CREATE TABLE IF NOT EXISTS identity (
	id INTEGER PRIMARY KEY CHECK (id = 1),
	address TEXT NOT NULL,
	device INTEGER NOT NULL,
	server TEXT NOT NULL,
	ca_file TEXT NOT NULL,
	sig_seed BLOB NOT NULL,
	hpke_key BLOB NOT NULL,
	token BLOB NOT NULL,
	state INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS contacts (
	address TEXT PRIMARY KEY,
	token BLOB
);
CREATE TABLE IF NOT EXISTS device_lists (
	address TEXT PRIMARY KEY,
	devices BLOB NOT NULL,
	fetched_at_ms INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS messages (
	id BLOB PRIMARY KEY,
	sender TEXT NOT NULL,
	sender_device INTEGER NOT NULL,
	recipient TEXT NOT NULL,
	text TEXT NOT NULL,
	sent_at_ms INTEGER NOT NULL,
	received_at_ms INTEGER NOT NULL,
	lane INTEGER NOT NULL,
	stored_at_ms INTEGER NOT NULL,
	group_id BLOB,
	msg_id BLOB,
	content_type INTEGER NOT NULL DEFAULT 1,
	ref BLOB,
	shown INTEGER NOT NULL DEFAULT 0
);
` + groupSchema

// OpenExistingProfile opens the profile in dir, or returns ErrNoIdentity
// when there is none.
func OpenExistingProfile(dir string) (*Profile, error) {
	if _, err := os.Stat(filepath.Join(dir, ProfileFile)); errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoIdentity
	}
	return OpenProfile(dir)
}

// OpenProfile opens the profile in dir, creating dir (mode 0700) and the
// database (mode 0600) when missing.
func OpenProfile(dir string) (*Profile, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	path := filepath.Join(dir, ProfileFile)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	f.Close()
	if err := os.Chmod(path, 0o600); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=synchronous(FULL)&_pragma=journal_mode(WAL)&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	db.SetMaxOpenConns(1)
	var version int
	if err := db.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil {
		db.Close()
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	if version != 0 && version != 1 && version != profileVersion {
		db.Close()
		return nil, fmt.Errorf("profile %s has format %d; this xchat reads formats 1 and %d", path, version, profileVersion)
	}
	schema := profileSchema
	if version == 1 {
		// Format 1 held direct-content messages; they stay readable.
		schema = `ALTER TABLE messages ADD COLUMN group_id BLOB;
			ALTER TABLE messages ADD COLUMN msg_id BLOB;
			ALTER TABLE messages ADD COLUMN content_type INTEGER NOT NULL DEFAULT 1;
			ALTER TABLE messages ADD COLUMN ref BLOB;
			ALTER TABLE messages ADD COLUMN shown INTEGER NOT NULL DEFAULT 1;` + groupSchema
	}
	if _, err := db.Exec(schema + fmt.Sprintf("PRAGMA user_version = %d;", profileVersion)); err != nil {
		db.Close()
		return nil, fmt.Errorf("profile %s: %w", path, err)
	}
	for _, suffix := range []string{"-wal", "-shm"} {
		os.Chmod(path+suffix, 0o600)
	}
	return &Profile{dir: dir, db: db}, nil
}

// Close closes the profile.
func (p *Profile) Close() error { return p.db.Close() }

// Identity is a registered device.
type Identity struct {
	Address string
	Device  uint32
	Server  string // host:port
	CAFile  string // extra root CA, or empty for the system roots
	SigKey  ed25519.PrivateKey
	HPKEKey hpke.PrivateKey
	// Token is this account's delivery token, shared with contacts.
	Token []byte

	state regState
}

// regState is how far registration of an identity got; keys are saved
// before the server sees them, so that no account is left without them.
type regState int

const (
	regKeys       regState = 0 // keys made, register not confirmed
	regRegistered regState = 1 // account exists, delivery policy not set
	regComplete   regState = 2
)

// Mailbox returns the identity's mailbox.
func (id *Identity) Mailbox() wire.Mailbox {
	return wire.Mailbox{Address: id.Address, Device: id.Device}
}

// Identity returns the profile's identity, or ErrNoIdentity.
func (p *Profile) Identity(ctx context.Context) (*Identity, error) {
	var id Identity
	var seed, hk []byte
	err := p.db.QueryRowContext(ctx, `SELECT address, device, server, ca_file, sig_seed, hpke_key, token, state FROM identity`).
		Scan(&id.Address, &id.Device, &id.Server, &id.CAFile, &seed, &hk, &id.Token, &id.state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoIdentity
	}
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, errors.New("profile: corrupt signature key")
	}
	id.SigKey = ed25519.NewKeyFromSeed(seed)
	id.HPKEKey, err = hpke.MLKEM768X25519().NewPrivateKey(hk)
	if err != nil {
		return nil, fmt.Errorf("profile: HPKE key: %w", err)
	}
	return &id, nil
}

func (p *Profile) saveIdentity(ctx context.Context, id *Identity) error {
	hk, err := id.HPKEKey.Bytes()
	if err != nil {
		return err
	}
	_, err = p.db.ExecContext(ctx, `INSERT INTO identity (id, address, device, server, ca_file, sig_seed, hpke_key, token, state)
		VALUES (1, ?, ?, ?, ?, ?, ?, ?, ?)`, id.Address, id.Device, id.Server, id.CAFile, id.SigKey.Seed(), hk, id.Token, id.state)
	if err != nil {
		return fmt.Errorf("profile: save identity: %w", err)
	}
	return nil
}

// setRegState records registration progress and the device id.
func (p *Profile) setRegState(ctx context.Context, device uint32, state regState) error {
	if _, err := p.db.ExecContext(ctx, `UPDATE identity SET device = ?, state = ?`, device, state); err != nil {
		return fmt.Errorf("profile: save identity: %w", err)
	}
	return nil
}

// dropIdentity deletes an identity whose registration the server refused.
func (p *Profile) dropIdentity(ctx context.Context) error {
	if _, err := p.db.ExecContext(ctx, `DELETE FROM identity`); err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// contactToken returns the delivery token a contact gave us, or nil.
func (p *Profile) contactToken(ctx context.Context, address string) ([]byte, error) {
	var tok []byte
	err := p.db.QueryRowContext(ctx, `SELECT token FROM contacts WHERE address = ?`, address).Scan(&tok)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return tok, err
}

func (p *Profile) setContactToken(ctx context.Context, address string, token []byte) error {
	_, err := p.db.ExecContext(ctx, `INSERT INTO contacts (address, token) VALUES (?, ?)
		ON CONFLICT (address) DO UPDATE SET token = excluded.token`, address, token)
	return err
}

// saveDevices remembers a contact's device list, so that messages to it
// can be queued while its homeserver is unreachable.
func (p *Profile) saveDevices(ctx context.Context, address string, devs []wire.DeviceInfo) error {
	b, err := wire.Marshal(devs)
	if err != nil {
		return err
	}
	_, err = p.db.ExecContext(ctx, `INSERT INTO device_lists (address, devices, fetched_at_ms) VALUES (?, ?, ?)
		ON CONFLICT (address) DO UPDATE SET devices = excluded.devices, fetched_at_ms = excluded.fetched_at_ms`,
		address, b, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("profile: %w", err)
	}
	return nil
}

// savedDevices returns the device list last seen for a contact, if any.
func (p *Profile) savedDevices(ctx context.Context, address string) ([]wire.DeviceInfo, bool, error) {
	var b []byte
	err := p.db.QueryRowContext(ctx, `SELECT devices FROM device_lists WHERE address = ?`, address).Scan(&b)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("profile: %w", err)
	}
	var devs []wire.DeviceInfo
	if err := wire.Unmarshal(b, &devs); err != nil {
		return nil, false, fmt.Errorf("profile: device list of %s: %w", address, err)
	}
	return devs, true, nil
}

// Message is a received message.
type Message struct {
	ID          [16]byte // the envelope that carried it
	From        string
	FromDevice  uint32
	To          string
	Text        string    // the text, or the emoji of a reaction
	SentAt      time.Time // sender's clock
	ReceivedAt  time.Time // the homeserver's clock
	RequestLane bool      // arrived without a delivery token (first contact)

	Group     []byte   // the MLS group
	GroupName string   // its name (group chats)
	Direct    bool     // a one-to-one chat
	Type      int      // content type (spec/10-content.md)
	MessageID [32]byte // spec/10-content.md section 10.2
	Ref       []byte   // the message a reply, reaction, edit or delete refers to
}

// storeMessage stores m in tx; false when a message with its ID was
// already stored.
func storeMessage(ctx context.Context, tx *sql.Tx, m *Message) (bool, error) {
	lane := 0
	if m.RequestLane {
		lane = 1
	}
	res, err := tx.ExecContext(ctx, `INSERT INTO messages
		(id, sender, sender_device, recipient, text, sent_at_ms, received_at_ms, lane, stored_at_ms, group_id, msg_id, content_type, ref, shown)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0) ON CONFLICT (id) DO NOTHING`,
		m.ID[:], m.From, m.FromDevice, m.To, m.Text, m.SentAt.UnixMilli(), m.ReceivedAt.UnixMilli(), lane, time.Now().UnixMilli(),
		m.Group, m.MessageID[:], m.Type, m.Ref)
	if err != nil {
		return false, fmt.Errorf("profile: store message: %w", err)
	}
	n, err := res.RowsAffected()
	return n == 1, err
}

// Messages returns every stored message in the order it was stored.
func (p *Profile) Messages(ctx context.Context) ([]Message, error) { return p.messages(ctx, false) }

// Unshown returns the stored messages not yet marked shown, in the order
// they were stored: those a command stored while it processed what was
// waiting before it sent (see Client.CatchUp).
func (p *Profile) Unshown(ctx context.Context) ([]Message, error) { return p.messages(ctx, true) }

// MarkShown records that messages were shown to the user.
func (p *Profile) MarkShown(ctx context.Context, ids ...[16]byte) error {
	for _, id := range ids {
		if _, err := p.db.ExecContext(ctx, `UPDATE messages SET shown = 1 WHERE id = ?`, id[:]); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
	}
	return nil
}

func (p *Profile) messages(ctx context.Context, unshown bool) ([]Message, error) {
	q := `SELECT m.id, m.sender, m.sender_device, m.recipient, m.text, m.sent_at_ms, m.received_at_ms, m.lane,
		m.group_id, m.msg_id, m.content_type, m.ref, coalesce(g.name, ''), coalesce(g.kind, 1)
		FROM messages m LEFT JOIN groups g ON g.id = m.group_id`
	if unshown {
		q += ` WHERE m.shown = 0`
	}
	rows, err := p.db.QueryContext(ctx, q+` ORDER BY m.rowid`)
	if err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	defer rows.Close()
	var out []Message
	for rows.Next() {
		var m Message
		var id, msgID []byte
		var sent, recv int64
		var lane, kind int
		if err := rows.Scan(&id, &m.From, &m.FromDevice, &m.To, &m.Text, &sent, &recv, &lane,
			&m.Group, &msgID, &m.Type, &m.Ref, &m.GroupName, &kind); err != nil {
			return nil, fmt.Errorf("profile: %w", err)
		}
		copy(m.ID[:], id)
		copy(m.MessageID[:], msgID)
		m.Direct = kind == wire.GroupKindDirect
		m.SentAt, m.ReceivedAt, m.RequestLane = time.UnixMilli(sent), time.UnixMilli(recv), lane == 1
		out = append(out, m)
	}
	return out, rows.Err()
}
