package client

import (
	"context"
	"crypto/ed25519"
	"crypto/hpke"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/spec/wire"
)

// ErrNoIdentity is returned when a profile has no registered identity.
var ErrNoIdentity = errors.New("this profile has no identity yet: create one with 'xchat register USER@DOMAIN --server HOST:PORT'")

// ProfileFile is the database in a profile directory.
const ProfileFile = "profile.db"

// Profile is a client's local state: its identity and keys, its contacts'
// delivery tokens, its groups and the messages it received. It lives in
// one SQLite file, readable by its owner only.
type Profile struct {
	dir string
	st  *profile.Store
}

// OpenExistingProfile opens the profile in dir, or returns ErrNoIdentity
// when there is none.
func OpenExistingProfile(dir string) (*Profile, error) {
	if _, err := os.Stat(filepath.Join(dir, ProfileFile)); errors.Is(err, os.ErrNotExist) {
		return nil, ErrNoIdentity
	}
	return OpenProfile(dir)
}

// OpenProfile opens the profile in dir, creating dir (mode 0700) and the
// database (mode 0600) when missing, and brings an older profile's format
// up to date.
func OpenProfile(dir string) (*Profile, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("profile: %w", err)
	}
	st, err := profile.Open(context.Background(), filepath.Join(dir, ProfileFile))
	if err != nil {
		return nil, err
	}
	return &Profile{dir: dir, st: st}, nil
}

// view runs f in a read transaction of the profile.
func (p *Profile) view(ctx context.Context, f func(tx *profile.Tx) error) error {
	return p.st.View(ctx, f)
}

// update runs f in a write transaction of the profile: everything f
// writes is saved when it returns nil, and nothing otherwise.
func (p *Profile) update(ctx context.Context, f func(tx *profile.Tx) error) error {
	return p.st.Update(ctx, f)
}

// Close closes the profile.
func (p *Profile) Close() error { return p.st.Close() }

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
	var row *profile.Identity
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		row, err = tx.Identity()
		return err
	})
	if errors.Is(err, profile.ErrNotFound) {
		return nil, ErrNoIdentity
	}
	if err != nil {
		return nil, err
	}
	if len(row.SigSeed) != ed25519.SeedSize {
		return nil, errors.New("profile: corrupt signature key")
	}
	id := &Identity{Address: row.Address, Device: row.Device, Server: row.Server, CAFile: row.CAFile,
		SigKey: ed25519.NewKeyFromSeed(row.SigSeed), Token: row.Token, state: regState(row.State)}
	if id.HPKEKey, err = hpke.MLKEM768X25519().NewPrivateKey(row.HPKEKey); err != nil {
		return nil, fmt.Errorf("profile: HPKE key: %w", err)
	}
	return id, nil
}

func (p *Profile) saveIdentity(ctx context.Context, id *Identity) error {
	hk, err := id.HPKEKey.Bytes()
	if err != nil {
		return err
	}
	return p.update(ctx, func(tx *profile.Tx) error {
		return tx.InsertIdentity(&profile.Identity{Address: id.Address, Device: id.Device, Server: id.Server, CAFile: id.CAFile,
			SigSeed: id.SigKey.Seed(), HPKEKey: hk, Token: id.Token, State: int(id.state)})
	})
}

// setRegState records registration progress and the device id.
func (p *Profile) setRegState(ctx context.Context, device uint32, state regState) error {
	return p.update(ctx, func(tx *profile.Tx) error { return tx.SetRegistration(device, int(state)) })
}

// setServer records the homeserver and CA file of a resumed registration.
func (p *Profile) setServer(ctx context.Context, server, caFile string) error {
	return p.update(ctx, func(tx *profile.Tx) error { return tx.SetServer(server, caFile) })
}

// dropIdentity deletes an identity whose registration the server refused.
func (p *Profile) dropIdentity(ctx context.Context) error {
	return p.update(ctx, func(tx *profile.Tx) error { return tx.DeleteIdentity() })
}

// contactToken returns the delivery token a contact gave us, or nil.
func (p *Profile) contactToken(ctx context.Context, address string) ([]byte, error) {
	var tok []byte
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		tok, err = tx.ContactToken(address)
		return err
	})
	if errors.Is(err, profile.ErrNotFound) {
		return nil, nil
	}
	return tok, err
}

func (p *Profile) setContactToken(ctx context.Context, address string, token []byte) error {
	return p.update(ctx, func(tx *profile.Tx) error { return tx.SetContactToken(address, token) })
}

// saveDevices remembers a contact's device list, so that messages to it
// can be queued while its homeserver is unreachable.
func (p *Profile) saveDevices(ctx context.Context, address string, devs []wire.DeviceInfo) error {
	return p.update(ctx, func(tx *profile.Tx) error { return tx.SaveDeviceList(address, devs) })
}

// savedDevices returns the device list last seen for a contact, if any.
func (p *Profile) savedDevices(ctx context.Context, address string) ([]wire.DeviceInfo, bool, error) {
	var devs []wire.DeviceInfo
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		devs, err = tx.DeviceList(address)
		return err
	})
	if errors.Is(err, profile.ErrNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
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
	// File is the reference of a file message (Type wire.ContentFile;
	// Text is its caption). The file is not downloaded: see
	// Client.DownloadFile.
	File *wire.FileRef
	// Call is the signal of a call message (Type wire.ContentCall): an
	// invite is an incoming call, missed when it arrived more than the
	// ring timeout after its SentAt or was never answered.
	Call *wire.CallSignal

	senderLeaf uint32 // the sender's MLS leaf, on a message just received
}

// storeMessage stores m in tx, and the file it carries; false when a
// message with its ID was already stored.
func storeMessage(tx *profile.Tx, m *Message, own string) (bool, error) {
	isNew, err := tx.InsertMessage(&profile.Message{ID: m.ID, Sender: m.From, SenderDevice: m.FromDevice, Recipient: m.To, Text: m.Text,
		SentAt: m.SentAt, ReceivedAt: m.ReceivedAt, RequestLane: m.RequestLane, Group: m.Group, MessageID: m.MessageID,
		Type: m.Type, Ref: m.Ref, File: m.File, Call: m.Call})
	if err != nil || !isNew {
		return isNew, err
	}
	return true, storeFile(tx, m, m.From == own)
}

// Messages returns every stored message in the order it was stored.
func (p *Profile) Messages(ctx context.Context) ([]Message, error) { return p.messages(ctx, false) }

// Unshown returns the stored messages not yet marked shown, in the order
// they were stored: those a command stored while it processed what was
// waiting before it sent (see Client.CatchUp).
func (p *Profile) Unshown(ctx context.Context) ([]Message, error) { return p.messages(ctx, true) }

// MarkShown records that messages were shown to the user.
func (p *Profile) MarkShown(ctx context.Context, ids ...[16]byte) error {
	return p.update(ctx, func(tx *profile.Tx) error {
		for _, id := range ids {
			if err := tx.MarkShown(id); err != nil {
				return err
			}
		}
		return nil
	})
}

func (p *Profile) messages(ctx context.Context, unshown bool) ([]Message, error) {
	var rows []profile.Message
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		rows, err = tx.Messages(unshown)
		return err
	})
	if err != nil {
		return nil, err
	}
	var out []Message
	for _, r := range rows {
		out = append(out, Message{ID: r.ID, From: r.Sender, FromDevice: r.SenderDevice, To: r.Recipient, Text: r.Text,
			SentAt: r.SentAt, ReceivedAt: r.ReceivedAt, RequestLane: r.RequestLane, Group: r.Group, GroupName: r.GroupName,
			Direct: r.GroupKind == wire.GroupKindDirect, Type: r.Type, MessageID: r.MessageID, Ref: r.Ref, File: r.File, Call: r.Call})
	}
	return out, nil
}
