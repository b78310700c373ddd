package client

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/spec/wire"
)

// ErrUnknownFile is returned for a file identifier that no file message of
// the profile's conversations carries.
var ErrUnknownFile = errors.New("no such file in this profile (see 'xchat file list')")

// ErrFileCorrupt is returned by DownloadFile for a blob that is not the
// file its reference names: tampered with, truncated or extended, with
// non-zero padding, or under another key. It wraps the error of package
// client/filecrypt that says which.
var ErrFileCorrupt = errors.New("corrupt file")

// ErrFileExists is returned by DownloadFile when its output path exists:
// a download never replaces a file.
var ErrFileExists = errors.New("the output file exists already")

// FileProgress reports the progress of an upload or a download. An upload
// counts the bytes of the encrypted, padded blob that the homeserver holds
// (Total is the blob's size); a download counts the plaintext bytes
// verified and written (Total is the file's size).
type FileProgress struct {
	Done  int64 // bytes done, Resumed included
	Total int64
	// Resumed is where this run started: the bytes an interrupted earlier
	// run left done.
	Resumed int64
}

// File is a file shared by reference in one of the profile's
// conversations (spec/11-files.md), sent or received.
type File struct {
	// ID names the file: the blob identifier in hexadecimal (32 digits).
	ID string
	// Ref is the reference: where the blob is, what opens it, and the
	// file's name, size and media type.
	Ref       wire.FileRef
	Caption   string
	From      string // the sender's address
	Group     []byte // the conversation
	GroupName string // its name (group chats)
	Direct    bool   // a one-to-one chat
	SentAt    time.Time
	// ReceivedAt is when the homeserver received the message, or, for a
	// file this device sent, when it sent it.
	ReceivedAt time.Time
	MessageID  [32]byte
	Outgoing   bool // sent by this account
	// Path is where the file was downloaded, or empty.
	Path string
	// Partial is the plaintext bytes an unfinished download holds, from
	// which DownloadFile with the same output resumes.
	Partial int64
}

// FileID returns the identifier of the file a reference names, as File.ID
// prints it: the first 16 bytes of a SHA-256 over the whole reference
// (domain, blob identifier, key and hash), in hexadecimal. A reference
// that reuses another's blob identifier with another key, hash or domain
// (anyone can write one) is another file, so it cannot stand in for it.
func FileID(ref *wire.FileRef) string { return hex.EncodeToString(fileID(ref)) }

func fileID(ref *wire.FileRef) []byte {
	h := sha256.New()
	h.Write([]byte("xchat/1 file-id\x00"))
	h.Write([]byte(ref.Domain))
	h.Write([]byte{0})
	h.Write(ref.BlobID)
	h.Write(ref.Key)
	h.Write(ref.Hash)
	return h.Sum(nil)[:16]
}

// ParseFileID decodes a file identifier as File.ID prints it.
func ParseFileID(s string) ([]byte, error) {
	id, err := hex.DecodeString(s)
	if err != nil || len(id) != 16 {
		return nil, fmt.Errorf("%q is not a file identifier (32 hexadecimal digits)", s)
	}
	return id, nil
}

func fileFromRow(r *profile.File) File {
	return File{ID: hex.EncodeToString(r.ID), Ref: r.Ref, Caption: r.Caption, From: r.Sender, Group: r.Group,
		GroupName: r.GroupName, Direct: r.GroupKind == wire.GroupKindDirect, SentAt: r.SentAt, ReceivedAt: r.ReceivedAt,
		MessageID: r.MessageID, Outgoing: r.Outgoing, Path: r.Path, Partial: r.DownloadDone}
}

// Files returns the files of the profile's conversations, newest first.
func (p *Profile) Files(ctx context.Context) ([]File, error) {
	var rows []*profile.File
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		rows, err = tx.Files()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]File, 0, len(rows))
	for _, r := range rows {
		out = append(out, fileFromRow(r))
	}
	return out, nil
}

// File returns the file with identifier id (File.ID), or ErrUnknownFile.
func (p *Profile) File(ctx context.Context, id string) (*File, error) {
	r, err := p.fileRow(ctx, id)
	if err != nil {
		return nil, err
	}
	f := fileFromRow(r)
	return &f, nil
}

func (p *Profile) fileRow(ctx context.Context, id string) (*profile.File, error) {
	fid, err := ParseFileID(id)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnknownFile, err)
	}
	var r *profile.File
	err = p.view(ctx, func(tx *profile.Tx) (err error) {
		r, err = tx.File(fid)
		return err
	})
	if errors.Is(err, profile.ErrNotFound) {
		return nil, fmt.Errorf("%w: %s", ErrUnknownFile, id)
	}
	return r, err
}

// Files returns the files of the profile's conversations, newest first.
func (cl *Client) Files(ctx context.Context) ([]File, error) { return cl.p.Files(ctx) }

// File returns the file with identifier id (File.ID), or ErrUnknownFile.
func (cl *Client) File(ctx context.Context, id string) (*File, error) { return cl.p.File(ctx, id) }

// storeFile records, in tx, the file a stored message carries.
func storeFile(tx *profile.Tx, m *Message, outgoing bool) error {
	if m.File == nil {
		return nil
	}
	_, err := tx.InsertFile(&profile.File{ID: fileID(m.File), Ref: *m.File, Caption: m.Text, Sender: m.From, Group: m.Group,
		MessageID: m.MessageID, SentAt: m.SentAt, ReceivedAt: m.ReceivedAt, Outgoing: outgoing})
	return err
}

// Retries of a blob request the homeserver refused for a while: metered
// (rate_limited), or another domain's server unreachable (unavailable).
const (
	rateLimitedTries = 8
	unavailableTries = 3
	maxTransferPause = 10 * time.Second
)

// transfer sends one blob request, and sends it again after the pause the
// homeserver asks for when it answers rate_limited, or unavailable with a
// retry-after (spec/11-files.md section 11.12: a server meters blob reads
// and, for other domains' blobs, each reading domain).
func (cl *Client) transfer(ctx context.Context, req wire.Request, resp any) error {
	for try := 1; ; try++ {
		err := cl.c.do(ctx, req, resp)
		var we *wire.Error
		if !errors.As(err, &we) {
			return err
		}
		switch {
		case we.Code == wire.CodeRateLimited && try < rateLimitedTries:
		case we.Code == wire.CodeUnavailable && we.RetryAfter > 0 && try < unavailableTries:
		default:
			return err
		}
		pause := min(max(we.RetryAfter, 100*time.Millisecond), maxTransferPause)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
