package profile

import (
	"database/sql"
	"time"
)

// Stages of an upload.
const (
	UploadSending  = 0 // the blob is created; parts are being sent
	UploadFinished = 1 // the blob is finished and its hash known; the message is not sent yet
)

// Upload is a file being sent: recorded before its first part leaves, so
// that sending the same file to the same conversation again resumes it,
// and deleted in the transaction that queues its message.
type Upload struct {
	ID      int64
	Path    string // absolute
	Size    int64
	ModTime int64 // nanoseconds since the epoch
	// Target is the conversation: "to:" and a user's address, or
	// "group:" and a group identifier in hexadecimal.
	Target    string
	Caption   string
	MediaType string
	Name      string
	Key       []byte // the file key
	Domain    string // the homeserver holding the blob
	BlobID    []byte
	BlobSize  uint64
	Hash      []byte // SHA-256 of the blob, once known
	Stage     int
	Created   time.Time
}

const uploadColumns = `id, path, size, mtime_ns, target, caption, media_type, name, file_key, domain, blob_id,
	blob_size, blob_hash, stage, created_at_ms`

// InsertUpload records a new upload and sets u.ID.
func (t *Tx) InsertUpload(u *Upload) error {
	res, err := t.exec("store upload", `INSERT INTO uploads (path, size, mtime_ns, target, caption, media_type, name,
		file_key, domain, blob_id, blob_size, blob_hash, stage, created_at_ms) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		u.Path, u.Size, u.ModTime, u.Target, u.Caption, u.MediaType, u.Name, u.Key, u.Domain, u.BlobID, u.BlobSize, u.Hash,
		u.Stage, time.Now().UnixMilli())
	if err != nil {
		return err
	}
	if u.ID, err = res.LastInsertId(); err != nil {
		return err
	}
	return nil
}

// FindUpload returns the newest upload of the file at path, with that size
// and modification time, to target.
func (t *Tx) FindUpload(path string, size, modTime int64, target string) (*Upload, error) {
	var u *Upload
	err := t.list("upload", `SELECT `+uploadColumns+` FROM uploads WHERE path = ? AND size = ? AND mtime_ns = ? AND target = ?
		ORDER BY id DESC LIMIT 1`, []any{path, size, modTime, target}, func(rows *sql.Rows) error {
		var v Upload
		var created int64
		if err := rows.Scan(&v.ID, &v.Path, &v.Size, &v.ModTime, &v.Target, &v.Caption, &v.MediaType, &v.Name, &v.Key,
			&v.Domain, &v.BlobID, &v.BlobSize, &v.Hash, &v.Stage, &created); err != nil {
			return err
		}
		v.Created = time.UnixMilli(created)
		u = &v
		return nil
	})
	if err != nil {
		return nil, err
	}
	if u == nil {
		return nil, errNotFound("upload")
	}
	return u, nil
}

// FinishUpload records that an upload's blob is finished, with its hash.
func (t *Tx) FinishUpload(id int64, hash []byte) error {
	res, err := t.exec("finish upload", `UPDATE uploads SET stage = ?, blob_hash = ? WHERE id = ?`, UploadFinished, hash, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errNotFound("upload")
	}
	return nil
}

// DeleteUpload forgets an upload: its message is queued, or it starts
// over. ErrNotFound when it was forgotten already (by another process
// using the profile).
func (t *Tx) DeleteUpload(id int64) error {
	res, err := t.exec("delete upload", `DELETE FROM uploads WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return errNotFound("upload")
	}
	return nil
}

// ExpireUploads forgets the uploads started before a time (their blobs
// are gone from the homeserver).
func (t *Tx) ExpireUploads(before time.Time) error {
	_, err := t.exec("expire uploads", `DELETE FROM uploads WHERE created_at_ms < ?`, before.UnixMilli())
	return err
}
