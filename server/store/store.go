// Package store defines the homeserver's durable state: accounts, devices,
// link tokens, key packages, delivery policies, invites, device mailboxes
// and the outbound queue of envelopes for other domains. Both the client
// API (package server) and federation (package federation) work on it.
//
// Two backends implement [Store]: the embedded SQLite store (package
// sqlite), one process's, and the PostgreSQL store (package postgres), which
// several processes of one domain may share; it also implements [Notifier]
// and [RemovalNotifier]. Package storetest is the test suite both pass.
// Every write is durable when the call returns without error: a homeserver
// acknowledges an envelope to its sender only after [Store.Enqueue] (or,
// for another domain, [Store.EnqueueOutbound]) returned.
package store

import (
	"context"
	"errors"
	"time"
)

// Errors that callers decide on. Backends wrap them with %w.
var (
	ErrAccountExists  = errors.New("store: account exists")
	ErrUnknownAccount = errors.New("store: unknown account")
	ErrUnknownDevice  = errors.New("store: unknown device")
	ErrInviteInvalid  = errors.New("store: invite invalid or used")
	ErrLinkInvalid    = errors.New("store: link token invalid, used or expired")
	ErrLastDevice     = errors.New("store: the account's last device")
	ErrNoKeyPackage   = errors.New("store: no key package")
	ErrLimit          = errors.New("store: limit exceeded")
	ErrClosed         = errors.New("store: closed")
)

// EnvelopeID is the 16-byte identifier a sender chooses for an envelope.
type EnvelopeID [16]byte

// Mailbox names one device's mailbox.
type Mailbox struct {
	Address string // normalised user@domain
	Device  uint32
}

// Device is one registered device of an account.
type Device struct {
	Address   string
	ID        uint32
	SigKey    []byte // Ed25519 public key, 32 bytes
	KEM       uint16 // HPKE KEM id of HPKEKey
	HPKEKey   []byte // HPKE public key
	CreatedAt time.Time
}

// Policy is an account's delivery policy.
type Policy struct {
	// Verifiers are SHA-256 verifiers of the delivery tokens the account
	// accepts (spec/07-envelopes.md). The store keeps them as given.
	Verifiers [][]byte
	// RequestLaneOpen says whether envelopes without a token are accepted.
	RequestLaneOpen bool
}

// Lane says how an envelope was admitted.
type Lane uint8

const (
	LaneToken   Lane = 0 // carried a delivery token that verified
	LaneRequest Lane = 1 // first contact, without a token
	LaneNotice  Lane = 2 // a notice from the homeserver itself, not sealed
)

// Envelope is a sealed envelope as stored in a mailbox. The store never
// sees who sent it.
type Envelope struct {
	ID         EnvelopeID
	To         Mailbox
	Sealed     []byte // the sealed envelope; for LaneNotice, the encoded notice
	Lane       Lane
	ReceivedAt time.Time // server clock, millisecond precision
	// Origin is the domain that relayed the envelope (spec/08-federation.md
	// section 8.8.1); empty for an envelope submitted by a local device and
	// for a notice. Pending returns it.
	Origin string
}

// Stored is an envelope read back from a mailbox with its position.
type Stored struct {
	Envelope
	// Seq numbers a mailbox's envelopes in the order the store accepted
	// them, and is never reused in the mailbox; a mailbox reads in Seq
	// order. Each mailbox counts on its own: no counter is shared across
	// mailboxes, so that the copies of one send are not numbered side by
	// side (spec/16-security.md section 16.11).
	Seq int64
}

// Limits bound what one account or device may hold.
type Limits struct {
	MailboxMaxEnvelopes int   // envelopes waiting in one device mailbox
	MailboxMaxBytes     int64 // sum of sealed lengths waiting in one device mailbox
	MaxOneTimeKeys      int   // one-time key packages stored per device
	MaxDevices          int   // devices of one account
	MaxLinkTokens       int   // unexpired link tokens of one account
	// OriginMaxEnvelopes and OriginMaxBytes bound what one origin domain's
	// relayed envelopes (Envelope.Origin) may hold of one device mailbox.
	OriginMaxEnvelopes int
	OriginMaxBytes     int64
}

// DefaultLimits returns the limits of spec/15-limits.md.
func DefaultLimits() Limits {
	return Limits{
		MailboxMaxEnvelopes: 10000,
		MailboxMaxBytes:     256 << 20,
		MaxOneTimeKeys:      1000,
		MaxDevices:          16,
		MaxLinkTokens:       5,
		OriginMaxEnvelopes:  2500,
		OriginMaxBytes:      64 << 20,
	}
}

// Store is the homeserver's durable state. Implementations are safe for
// concurrent use. A write has reached stable storage when its call returns
// nil.
type Store interface {
	// CreateInvite records the SHA-256 hash of a single-use invite token.
	CreateInvite(ctx context.Context, hash []byte, expires time.Time) error
	// CreateAccount creates the account dev.Address with dev as its first
	// device; dev.ID must be 1. When inviteHash is not nil, the matching
	// unexpired invite is consumed in the same transaction, or
	// ErrInviteInvalid is returned and nothing is written. ErrAccountExists
	// when the address is taken; when both the invite and the address are
	// wrong, ErrInviteInvalid wins (no probing of addresses without an
	// invite), and a valid invite is not consumed by a failed call.
	CreateAccount(ctx context.Context, dev Device, inviteHash []byte) error
	// Device returns one device, or ErrUnknownDevice (also for an unknown
	// account).
	Device(ctx context.Context, mb Mailbox) (Device, error)
	// Devices returns an account's devices in ID order, or ErrUnknownAccount.
	Devices(ctx context.Context, address string) ([]Device, error)

	// CreateLink records the SHA-256 hash of a single-use link token of
	// the account address, valid while the clock is before expires
	// (spec/05-accounts.md section 5.11.1). The account's tokens that
	// expired by now are deleted first. ErrLimit, and nothing written, when
	// the account already has MaxLinkTokens tokens unexpired at now;
	// ErrUnknownAccount.
	CreateLink(ctx context.Context, address string, hash []byte, now, expires time.Time) error
	// LinkDevice adds dev to the existing account dev.Address and consumes
	// the link token whose hash is given, in one transaction. The token must
	// belong to that account and expire after now, else ErrLinkInvalid (also
	// for an unknown account) and nothing is written. ErrLimit, and the token
	// kept, when the account already has MaxDevices devices. dev.ID is
	// ignored: the device gets the highest identifier the account ever had
	// plus one, which LinkDevice returns. Identifiers are never reused.
	LinkDevice(ctx context.Context, dev Device, hash []byte, now time.Time) (uint32, error)
	// DeleteExpiredLinks deletes every link token that expired by now and
	// returns how many. (CreateLink and LinkDevice delete the expired tokens
	// of their account; this catches the accounts that link no more.)
	DeleteExpiredLinks(ctx context.Context, now time.Time) (int, error)
	// RemoveDevice deletes a device with its mailbox and key packages; its
	// identifier is never assigned again. ErrUnknownDevice for an unknown
	// device or account; ErrLastDevice, and nothing changed, when it is the
	// account's only device.
	RemoveDevice(ctx context.Context, mb Mailbox) error

	// Policy returns an account's delivery policy, or ErrUnknownAccount.
	// A new account has no verifiers and an open request lane.
	Policy(ctx context.Context, address string) (Policy, error)
	// SetPolicy replaces an account's delivery policy, or returns
	// ErrUnknownAccount.
	SetPolicy(ctx context.Context, address string, p Policy) error

	// PublishKeyPackages adds one-time key packages to a device and, when
	// lastResort is not nil, replaces its last-resort package. It returns the
	// number of one-time packages stored for the device afterwards, or
	// ErrLimit (and writes nothing) when that would exceed MaxOneTimeKeys,
	// or ErrUnknownDevice.
	PublishKeyPackages(ctx context.Context, mb Mailbox, oneTime [][]byte, lastResort []byte) (int, error)
	// ClaimKeyPackage removes and returns one one-time key package of the
	// device (each is returned to exactly one caller, however many claim at
	// once), or, when none is left, returns the last-resort package without
	// removing it and lastResort true. The oldest one-time package goes
	// first. ErrNoKeyPackage when there is neither; ErrUnknownDevice for an
	// unknown device.
	ClaimKeyPackage(ctx context.Context, mb Mailbox) (kp []byte, lastResort bool, err error)
	// LastResortKeyPackage returns the device's last-resort package without
	// touching its one-time packages: for a claimant past a claim limit
	// (spec/06-key-directory.md section 6.5). ErrNoKeyPackage when it has
	// none; ErrUnknownDevice for an unknown device.
	LastResortKeyPackage(ctx context.Context, mb Mailbox) ([]byte, error)

	// Enqueue stores envelopes durably and returns one error per envelope,
	// in order: nil when stored (or already stored: an envelope whose ID is
	// already waiting in the same mailbox is not stored twice), ErrLimit when
	// the mailbox is full or, for a relayed envelope, when its origin
	// domain's envelopes already hold OriginMaxEnvelopes or OriginMaxBytes
	// of it, ErrUnknownDevice when the mailbox does not exist.
	// The returned error is for failures of the whole call; then nothing was
	// stored.
	Enqueue(ctx context.Context, envs []Envelope) ([]error, error)
	// Pending returns up to limit envelopes waiting in a mailbox with
	// Seq > after, in Seq order. An unknown mailbox has nothing waiting.
	Pending(ctx context.Context, mb Mailbox, after int64, limit int) ([]Stored, error)
	// Ack deletes the given envelopes from a mailbox. Unknown IDs are
	// ignored. An acknowledged ID is no longer waiting, so an envelope with
	// the same ID may be stored again later.
	Ack(ctx context.Context, mb Mailbox, ids []EnvelopeID) error
	// Expire deletes every envelope received before t and returns how many.
	Expire(ctx context.Context, before time.Time) (int, error)

	// EnqueueOutbound stores envelopes for other domains durably in the
	// outbound queue, due at once. An envelope whose (To, ID) is already
	// queued is not queued twice.
	EnqueueOutbound(ctx context.Context, out []Outbound) error
	// ClaimOutbound returns up to limit queued envelopes for domain that are
	// due at now, in Seq order, and leases them: each one's NextTry becomes
	// now+lease and its Attempts grows by one, so that no other worker (of
	// this process or another sharing the store) claims it before the lease
	// ends. A worker that dies leaves its claims to expire.
	ClaimOutbound(ctx context.Context, domain string, now time.Time, lease time.Duration, limit int) ([]Outbound, error)
	// DeleteOutbound removes envelopes from the outbound queue; unknown Seqs
	// are ignored.
	DeleteOutbound(ctx context.Context, seqs []int64) error
	// RetryOutbound makes queued envelopes due again at at.
	RetryOutbound(ctx context.Context, seqs []int64, at time.Time) error
	// OutboundDomains returns every domain with queued envelopes and the
	// earliest time one of them is due, in domain order.
	OutboundDomains(ctx context.Context) ([]OutboundDomain, error)
	// OutboundUsage returns, for every submitting account and destination
	// domain with envelopes in the outbound queue, how many and their
	// sealed bytes, in no particular order.
	OutboundUsage(ctx context.Context) ([]OutboundUse, error)

	// Blobs is the blob store of spec/11-files.md.
	Blobs

	// Close flushes pending writes and releases the store. Calls after Close
	// return ErrClosed.
	Close() error
}

// Outbound is an envelope in the outbound queue, waiting to be relayed to
// the homeserver of another domain.
type Outbound struct {
	Seq      int64     // position in the queue, set by the store
	Domain   string    // destination domain: the domain of Envelope.To
	Envelope Envelope  // Lane is unused; ReceivedAt is when it was queued
	Token    []byte    // delivery token to present, or nil for the request lane
	From     Mailbox   // the local device that submitted it, told if it is undeliverable
	Attempts int       // relay attempts so far
	NextTry  time.Time // when it is next due
}

// OutboundUse is what the outbound queue holds that the devices of one
// account submitted for one destination domain.
type OutboundUse struct {
	From      string // the submitting account's address
	Domain    string
	Envelopes int
	Bytes     int64 // sealed bytes
}

// OutboundDomain is a destination with queued envelopes.
type OutboundDomain struct {
	Domain  string
	NextTry time.Time // the earliest NextTry of its envelopes
}

// Notifier is implemented by stores shared by several homeserver
// processes: it tells this process about envelopes other processes stored,
// so that their devices connected here are pushed at once. Notifications
// are hints; the store stays the truth.
type Notifier interface {
	// Listen calls fn with the mailbox of every envelope stored by any
	// process, until ctx ends or the listening connection fails.
	Listen(ctx context.Context, fn func(Mailbox)) error
}

// RemovalNotifier is implemented by stores shared by several homeserver
// processes: it tells this process about devices that any process removed
// (RemoveDevice), so that it closes their connections here too.
type RemovalNotifier interface {
	// ListenRemovals calls fn with every removed device, until ctx ends or
	// the listening connection fails.
	ListenRemovals(ctx context.Context, fn func(Mailbox)) error
}

// Record is one row of a store's contents, for copying a store to another
// backend (xchatd copy). Exactly one field is set.
type Record struct {
	Account    *AccountRecord
	Device     *Device
	Invite     *InviteRecord
	KeyPackage *KeyPackageRecord
	Envelope   *Envelope
	Outbound   *Outbound
}

// AccountRecord is an account with its delivery policy. Link tokens are
// not copied: they live for minutes.
type AccountRecord struct {
	Address   string
	CreatedAt time.Time
	Policy    Policy
	// LastDevice is the highest device identifier ever assigned in the
	// account, which may belong to a removed device. Zero: the highest
	// identifier of the account's devices.
	LastDevice uint32
}

// InviteRecord is an unused invite.
type InviteRecord struct {
	Hash    []byte
	Expires time.Time
}

// KeyPackageRecord is one stored key package of a device.
type KeyPackageRecord struct {
	Mailbox    Mailbox
	Data       []byte
	LastResort bool
}

// Exporter is implemented by stores whose contents can be copied out (both
// backends).
type Exporter interface {
	// Export calls fn with every record: accounts before their devices,
	// devices before their key packages and envelopes; key packages in the
	// order they were stored, the envelopes of each mailbox in Seq order.
	Export(ctx context.Context, fn func(Record) error) error
}

// Importer is implemented by stores that can take a copied store's
// contents (the PostgreSQL store). Import is called with records in Export's order, in batches;
// it is meant for an empty store.
type Importer interface {
	Import(ctx context.Context, recs []Record) error
}
