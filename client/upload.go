package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/xchat-im/xchat/client/filecrypt"
	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/spec/wire"
)

// transferWindow is how many blob-put or blob-get requests of one
// transfer are in flight at once. More than the server's per-connection
// frame budget admits at once (7 parts): the waiting ones keep the path
// full (xchat-bench files: 6 in flight gave 25-38 % of a raw QUIC stream
// at 1 GiB, 16 gave 54-56 % with the wire client).
const transferWindow = 16

// uploadsKept is how long an upload that was never sent stays recorded:
// its blob is gone from the homeserver by then (spec/11-files.md).
const uploadsKept = wire.BlobRetention * time.Second

// SendFileOptions are the inputs of SendFile and SendGroupFile.
type SendFileOptions struct {
	Path    string // the file to send; its name (without directories) travels with it
	Caption string
	// MediaType is the file's media type; empty: the one of its name's
	// extension, else application/octet-stream.
	MediaType string
	// Progress, when set, is called on the calling goroutine once before
	// the first part is sent and after every part the homeserver stored.
	Progress func(FileProgress)
}

// SendFile sends a file to a user in the one-to-one chat with that user
// (created first when there is none), as SendGroupFile does to a group.
func (cl *Client) SendFile(ctx context.Context, to string, o SendFileOptions) (*File, error) {
	to, err := wire.NormalizeAddress(to)
	if err != nil {
		return nil, err
	}
	src, err := openSource(o)
	if err != nil {
		return nil, err
	}
	defer src.f.Close()
	row, err := cl.p.directGroup(ctx, to)
	if err != nil {
		return nil, err
	}
	var id []byte
	if row != nil {
		id = row.ID
	} else if id, err = cl.createGroup(ctx, wire.GroupKindDirect, "", []string{to}); err != nil {
		return nil, err
	}
	return cl.sendFile(ctx, "to:"+to, id, src, o)
}

// SendGroupFile encrypts a file under a fresh key, uploads the blob to
// this device's homeserver and sends its reference, with the caption, to
// a group (spec/11-files.md).
//
// The upload is recorded in the profile before its first part leaves.
// When it is interrupted (the context ends, the connection or the process
// fails), calling SendGroupFile again with the same file, unchanged (same
// path, size and modification time), and the same group continues it:
// only the parts the homeserver does not hold are sent. When the
// homeserver no longer has the blob, the upload starts over. The message
// (with the caption of the call that sends it) is queued in the
// transaction that marks the upload done, so that it is sent once.
//
// It returns the file as Files lists it. An error together with a file
// means that the message is queued but not sent yet: it waits in the
// outbox and leaves with the next send or connection, as a text message
// does.
func (cl *Client) SendGroupFile(ctx context.Context, group []byte, o SendFileOptions) (*File, error) {
	src, err := openSource(o)
	if err != nil {
		return nil, err
	}
	defer src.f.Close()
	if _, _, err := cl.activeGroup(ctx, group); err != nil {
		return nil, err
	}
	return cl.sendFile(ctx, "group:"+hex.EncodeToString(group), group, src, o)
}

// source is an open file to send.
type source struct {
	f         *os.File
	path      string // absolute
	size      int64
	modTime   int64 // nanoseconds
	name      string
	mediaType string
}

// openSource opens and checks the file of o, and its name, media type and
// caption.
func openSource(o SendFileOptions) (*source, error) {
	if len(o.Caption) > wire.MaxContentText || !utf8.ValidString(o.Caption) {
		return nil, fmt.Errorf("caption of %d bytes; at most %d bytes of UTF-8", len(o.Caption), wire.MaxContentText)
	}
	path, err := filepath.Abs(o.Path)
	if err != nil {
		return nil, err
	}
	name := filepath.Base(path)
	if !wire.ValidFileName(name) {
		return nil, fmt.Errorf("file name %q cannot be sent (1 to %d bytes of UTF-8, no control characters or backslashes)", name, wire.MaxFileName)
	}
	mt, err := mediaType(o.MediaType, name)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if fi.Size() > wire.MaxFileSize {
		f.Close()
		return nil, fmt.Errorf("%s: %d bytes; a file has at most %d", path, fi.Size(), int64(wire.MaxFileSize))
	}
	return &source{f: f, path: path, size: fi.Size(), modTime: fi.ModTime().UnixNano(), name: name, mediaType: mt}, nil
}

// mediaType returns the media type to send for a file named name: given,
// else the one of the name's extension, else application/octet-stream;
// type/subtype in lower case without parameters (spec/11-files.md section
// 11.5).
func mediaType(given, name string) (string, error) {
	if given != "" {
		mt, _, err := mime.ParseMediaType(given)
		if err != nil || !strings.Contains(mt, "/") {
			return "", fmt.Errorf("media type %q: not type/subtype", given)
		}
		if len(mt) > wire.MaxMediaType {
			return "", fmt.Errorf("media type of %d bytes; at most %d", len(mt), wire.MaxMediaType)
		}
		return mt, nil
	}
	mt, _, err := mime.ParseMediaType(mime.TypeByExtension(filepath.Ext(name)))
	if err != nil || !strings.Contains(mt, "/") || len(mt) > wire.MaxMediaType {
		return "application/octet-stream", nil
	}
	return mt, nil
}

// sendFile uploads src (or continues its upload to target) and sends its
// reference to group.
func (cl *Client) sendFile(ctx context.Context, target string, group []byte, src *source, o SendFileOptions) (*File, error) {
	up, err := cl.resumableUpload(ctx, src, target)
	if err != nil {
		return nil, err
	}
	if up == nil {
		if up, err = cl.createUpload(ctx, src, target, o.Caption); err != nil {
			return nil, err
		}
	}
	if up.Stage == profile.UploadSending {
		if err := cl.upload(ctx, up, src.f, o.Progress); err != nil {
			return nil, err
		}
	} else if o.Progress != nil {
		o.Progress(FileProgress{Done: int64(up.BlobSize), Total: int64(up.BlobSize), Resumed: int64(up.BlobSize)})
	}
	ref := wire.FileRef{Domain: up.Domain, BlobID: up.BlobID, Key: up.Key, Hash: up.Hash, Size: uint64(up.Size),
		MediaType: up.MediaType, Name: up.Name}
	c := &wire.Content{Type: wire.ContentFile, SentAt: uint64(time.Now().UnixMilli()), File: &ref}
	if o.Caption != "" {
		c.Text = &o.Caption
	}
	var sent *File
	queued, err := cl.sendContentWith(ctx, group, c, func(tx *profile.Tx, row *groupRow, msgID [32]byte) error {
		// The upload is done in the transaction that queues its message:
		// after a crash there is either the upload to resume or the
		// message in the outbox, never both, never neither.
		if err := tx.DeleteUpload(up.ID); errors.Is(err, profile.ErrNotFound) {
			return fmt.Errorf("%s was sent meanwhile by another xchat run on this profile: %w", o.Path, err)
		} else if err != nil {
			return err
		}
		now := time.Now()
		f := &profile.File{ID: fileID(&ref), Ref: ref, Caption: o.Caption, Sender: cl.id.Address, Group: group, MessageID: msgID,
			SentAt: time.UnixMilli(int64(c.SentAt)), ReceivedAt: now, Outgoing: true}
		if _, err := tx.InsertFile(f); err != nil {
			return err
		}
		f.GroupName, f.GroupKind = row.Name, row.Kind
		v := fileFromRow(f)
		sent = &v
		return nil
	})
	if err != nil && !queued {
		return nil, err
	}
	// When queued, an error is about sending it now: it stays in the
	// outbox and leaves with the next send or connection.
	return sent, err
}

// resumableUpload returns the recorded upload of src to target that the
// homeserver still holds, or nil when there is none; an upload whose blob
// the homeserver no longer knows is forgotten.
func (cl *Client) resumableUpload(ctx context.Context, src *source, target string) (*profile.Upload, error) {
	var up *profile.Upload
	err := cl.p.update(ctx, func(tx *profile.Tx) (err error) {
		if err := tx.ExpireUploads(time.Now().Add(-uploadsKept)); err != nil {
			return err
		}
		up, err = tx.FindUpload(src.path, src.size, src.modTime, target)
		return err
	})
	if errors.Is(err, profile.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st wire.BlobStatusOK
	err = cl.c.do(ctx, &wire.BlobStatus{ID: up.BlobID}, &st)
	gone := errors.Is(err, wire.ErrUnknownBlob) || (err == nil && st.Size != up.BlobSize)
	if err != nil && !gone {
		return nil, fmt.Errorf("upload status: %w", err)
	}
	if gone {
		return nil, cl.p.update(ctx, func(tx *profile.Tx) error { return ignoreNotFound(tx.DeleteUpload(up.ID)) })
	}
	return up, nil
}

// createUpload creates the blob of src on the homeserver and records the
// upload before any part is sent.
func (cl *Client) createUpload(ctx context.Context, src *source, target, caption string) (*profile.Upload, error) {
	key, err := filecrypt.NewKey()
	if err != nil {
		return nil, err
	}
	size := uint64(filecrypt.BlobSize(src.size))
	// The announced limits say what the homeserver would refuse
	// (spec/11-files.md section 11.8); a server that announces none
	// answers blob-create itself.
	_, domain := wire.SplitAddress(cl.id.Address)
	switch lim := cl.limits; {
	case lim.MaxBlobSize != 0 && size > lim.MaxBlobSize:
		return nil, fmt.Errorf("%s is too large for the homeserver of %s: its blob is %d bytes, at most %d", src.name, domain, size, lim.MaxBlobSize)
	case lim.BlobQuota != 0 && size > lim.BlobQuota:
		return nil, fmt.Errorf("%s is larger than the file quota of %d bytes of the homeserver of %s", src.name, lim.BlobQuota, domain)
	}
	var ok wire.BlobCreateOK
	if err := cl.c.do(ctx, &wire.BlobCreate{Size: size}, &ok); err != nil {
		return nil, fmt.Errorf("upload %s: %w", src.name, err)
	}
	if len(ok.ID) != wire.BlobIDLen {
		return nil, fmt.Errorf("upload %s: the homeserver gave a blob identifier of %d bytes", src.name, len(ok.ID))
	}
	up := &profile.Upload{Path: src.path, Size: src.size, ModTime: src.modTime, Target: target, Caption: caption,
		MediaType: src.mediaType, Name: src.name, Key: key, Domain: domain, BlobID: ok.ID, BlobSize: size, Stage: profile.UploadSending}
	if err := cl.p.update(ctx, func(tx *profile.Tx) error { return tx.InsertUpload(up) }); err != nil {
		return nil, err
	}
	return up, nil
}

// upload sends the parts of up's blob that the homeserver lacks, finishes
// the blob and records its hash (spec/11-files.md section 11.6.5). The
// blob is made again from the start, which gives the same bytes
// (encryption is deterministic given the key), so that its hash covers the
// parts sent by an earlier run.
func (cl *Client) upload(ctx context.Context, up *profile.Upload, f *os.File, progress func(FileProgress)) error {
	for try := 1; ; try++ {
		hash, err := cl.uploadOnce(ctx, up, f, progress)
		if err != nil {
			return err
		}
		var fin wire.BlobFinishOK
		err = cl.c.do(ctx, &wire.BlobFinish{ID: up.BlobID}, &fin)
		if errors.Is(err, wire.ErrBlobIncomplete) && try < 3 {
			continue // a part did not stay: status again, and the rest again
		}
		if err != nil {
			return fmt.Errorf("upload of %s: finish: %w", up.Name, err)
		}
		if err := cl.p.update(ctx, func(tx *profile.Tx) error { return tx.FinishUpload(up.ID, hash) }); err != nil {
			return err
		}
		up.Hash, up.Stage = hash, profile.UploadFinished
		return nil
	}
}

// uploadOnce sends the parts of up's blob from the homeserver's durable
// prefix on, and returns the blob's hash.
func (cl *Client) uploadOnce(ctx context.Context, up *profile.Upload, f *os.File, progress func(FileProgress)) ([]byte, error) {
	var st wire.BlobStatusOK
	if err := cl.c.do(ctx, &wire.BlobStatus{ID: up.BlobID}, &st); err != nil {
		return nil, fmt.Errorf("upload status: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	blob, err := filecrypt.NewBlobReader(up.Key, f, up.Size)
	if err != nil {
		return nil, err
	}
	if uint64(blob.BlobSize()) != up.BlobSize {
		return nil, fmt.Errorf("upload of %s: blob of %d bytes recorded, %d made", up.Name, up.BlobSize, blob.BlobSize())
	}
	from := st.Received / wire.BlobPartSize // the parts before are durable
	if st.Complete {
		from = wire.BlobParts(up.BlobSize)
	}
	if err := cl.putParts(ctx, up, blob, from, progress); err != nil {
		return nil, err
	}
	// Parts of two versions would make a blob that fails every
	// recipient's check (spec/11-files.md section 11.6.5).
	if fi, err := f.Stat(); err != nil || fi.Size() != up.Size || fi.ModTime().UnixNano() != up.ModTime {
		if err := cl.p.update(ctx, func(tx *profile.Tx) error { return ignoreNotFound(tx.DeleteUpload(up.ID)) }); err != nil {
			return nil, err
		}
		return nil, fmt.Errorf("%s changed while it was sent: send it again", up.Path)
	}
	hash := blob.Sum()
	if hash == nil {
		return nil, errors.New("upload: the blob has no hash")
	}
	return hash, nil
}

// blobPart is one part of a blob to send.
type blobPart struct {
	index uint64
	data  []byte
}

// putParts reads the whole blob and sends its parts from index from on,
// transferWindow at a time. Progress reports the blob's durable prefix on
// the homeserver: where a later run resumes.
func (cl *Client) putParts(parent context.Context, up *profile.Upload, blob io.Reader, from uint64, progress func(FileProgress)) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	parts := wire.BlobParts(up.BlobSize)
	resumed := int64(min(from*wire.BlobPartSize, up.BlobSize))
	report := func(done int64) {
		if progress != nil {
			progress(FileProgress{Done: done, Total: int64(up.BlobSize), Resumed: resumed})
		}
	}
	report(resumed)

	// At most transferWindow+1 parts are in memory: one being read, the
	// others being sent.
	free := make(chan []byte, transferWindow+1)
	for range transferWindow + 1 {
		free <- make([]byte, wire.BlobPartSize)
	}
	jobs := make(chan blobPart)
	type result struct {
		received uint64
		buf      []byte
		err      error
	}
	results := make(chan result)
	readErr := make(chan error, 1)
	go func() {
		defer close(jobs)
		for i := range parts {
			var buf []byte
			select {
			case buf = <-free:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
			n := wire.BlobPartLen(up.BlobSize, i)
			if _, err := io.ReadFull(blob, buf[:n]); err != nil {
				readErr <- fmt.Errorf("read %s: %w", up.Path, err)
				return
			}
			if i < from {
				free <- buf // durable on the server already: only hashed
				continue
			}
			select {
			case jobs <- blobPart{i, buf[:n]}:
			case <-ctx.Done():
				readErr <- ctx.Err()
				return
			}
		}
		// The reader's end computes the hash (and checks the file's size).
		var one [1]byte
		if n, err := blob.Read(one[:]); n != 0 || err != io.EOF {
			readErr <- fmt.Errorf("read %s: the blob goes on past %d bytes (%v)", up.Path, up.BlobSize, err)
			return
		}
		readErr <- nil
	}()
	var wg sync.WaitGroup
	for range transferWindow {
		wg.Go(func() {
			for p := range jobs {
				var ok wire.BlobPutOK
				err := cl.transfer(ctx, &wire.BlobPut{ID: up.BlobID, Index: p.index, Data: p.data}, &ok)
				if err != nil {
					err = fmt.Errorf("upload of %s: part %d: %w", up.Name, p.index, err)
				}
				select {
				case results <- result{ok.Received, p.data[:cap(p.data)], err}:
				case <-ctx.Done():
				}
			}
		})
	}
	go func() { wg.Wait(); close(results) }()
	done := resumed
	var firstErr error
	for r := range results {
		if r.err != nil && firstErr == nil {
			firstErr = r.err
			cancel()
		}
		if r.err == nil {
			done = max(done, int64(min(r.received, up.BlobSize)))
			report(done)
		}
		select {
		case free <- r.buf:
		default:
		}
	}
	if err := <-readErr; firstErr == nil && err != nil {
		firstErr = err
	}
	if err := parent.Err(); err != nil {
		return err // what failed on the way was cancelled
	}
	return firstErr
}

// ignoreNotFound returns err, or nil when it is profile.ErrNotFound.
func ignoreNotFound(err error) error {
	if errors.Is(err, profile.ErrNotFound) {
		return nil
	}
	return err
}
