package profile

import (
	"database/sql"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

// File is a file shared in one of the profile's conversations
// (spec/11-files.md), sent or received, with the state of its download.
type File struct {
	// ID identifies the file among the profile's: a digest of the whole
	// reference (computed by package client), so that two references that
	// share a blob identifier but differ in anything else are two files.
	ID        []byte
	Ref       wire.FileRef
	Caption   string
	Sender    string
	Group     []byte
	MessageID [32]byte
	SentAt    time.Time // sender's clock
	// ReceivedAt is the homeserver's clock for a received file, and when
	// it was sent for an outgoing one.
	ReceivedAt time.Time
	Outgoing   bool

	// Path is where the file was downloaded, or empty.
	Path string
	// DownloadOut is the output path of an unfinished download, and
	// DownloadDone the verified plaintext bytes of its temporary file.
	DownloadOut  string
	DownloadDone int64

	// Read only: the group's name and kind.
	GroupName string
	GroupKind int
}

const fileColumns = `f.file_id, f.blob_id, f.domain, f.file_key, f.blob_hash, f.size, f.media_type, f.name, f.caption, f.sender,
	f.group_id, f.msg_id, f.sent_at_ms, f.received_at_ms, f.outgoing, f.path, f.download_out, f.download_done, coalesce(g.name, ''), coalesce(g.kind, 0)`

func scanFile(rows *sql.Rows) (*File, error) {
	var f File
	var msgID []byte
	var sent, recv int64
	var out int
	if err := rows.Scan(&f.ID, &f.Ref.BlobID, &f.Ref.Domain, &f.Ref.Key, &f.Ref.Hash, &f.Ref.Size, &f.Ref.MediaType, &f.Ref.Name,
		&f.Caption, &f.Sender, &f.Group, &msgID, &sent, &recv, &out, &f.Path, &f.DownloadOut, &f.DownloadDone, &f.GroupName, &f.GroupKind); err != nil {
		return nil, err
	}
	copy(f.MessageID[:], msgID)
	f.SentAt, f.ReceivedAt, f.Outgoing = time.UnixMilli(sent), time.UnixMilli(recv), out == 1
	return &f, nil
}

// InsertFile stores a file of a conversation; false when a file with its
// identifier f.ID is stored already (the first message with a reference
// is kept).
func (t *Tx) InsertFile(f *File) (bool, error) {
	res, err := t.exec("store file", `INSERT INTO files (file_id, blob_id, domain, file_key, blob_hash, size, media_type, name,
		caption, sender, group_id, msg_id, sent_at_ms, received_at_ms, outgoing)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (file_id) DO NOTHING`,
		f.ID, f.Ref.BlobID, f.Ref.Domain, f.Ref.Key, f.Ref.Hash, f.Ref.Size, f.Ref.MediaType, f.Ref.Name,
		f.Caption, f.Sender, f.Group, f.MessageID[:], f.SentAt.UnixMilli(), f.ReceivedAt.UnixMilli(), boolInt(f.Outgoing))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, err
	}
	return n == 1, nil
}

// Files returns every stored file, newest first.
func (t *Tx) Files() ([]*File, error) {
	var out []*File
	err := t.list("files", `SELECT `+fileColumns+` FROM files f LEFT JOIN groups g ON g.id = f.group_id
		ORDER BY f.received_at_ms DESC, f.rowid DESC`, nil, func(rows *sql.Rows) error {
		f, err := scanFile(rows)
		if err != nil {
			return err
		}
		out = append(out, f)
		return nil
	})
	return out, err
}

// File returns the stored file with identifier id.
func (t *Tx) File(id []byte) (*File, error) {
	var f *File
	err := t.list("file", `SELECT `+fileColumns+` FROM files f LEFT JOIN groups g ON g.id = f.group_id
		WHERE f.file_id = ?`, []any{id}, func(rows *sql.Rows) (err error) {
		f, err = scanFile(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	if f == nil {
		return nil, errNotFound("file")
	}
	return f, nil
}

// SetDownloadProgress records an unfinished download of a file: its
// output path and the verified plaintext bytes in its temporary file. An
// empty out clears it.
func (t *Tx) SetDownloadProgress(id []byte, out string, done int64) error {
	return t.updateFile("download progress", `UPDATE files SET download_out = ?, download_done = ? WHERE file_id = ?`,
		out, done, id)
}

// SetDownloaded records where a file was downloaded, and clears its
// unfinished download.
func (t *Tx) SetDownloaded(id []byte, path string) error {
	return t.updateFile("downloaded", `UPDATE files SET path = ?, download_out = '', download_done = 0 WHERE file_id = ?`, path, id)
}

func (t *Tx) updateFile(what, query string, args ...any) error {
	res, err := t.exec(what, query, args...)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errNotFound("file")
	}
	return nil
}
