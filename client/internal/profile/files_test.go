package profile

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/xchat-im/xchat/spec/wire"
)

func testRef(b byte) wire.FileRef {
	return wire.FileRef{Domain: "a.test", BlobID: bytes.Repeat([]byte{b}, 16), Key: bytes.Repeat([]byte{b + 1}, 32),
		Hash: bytes.Repeat([]byte{b + 2}, 32), Size: 1000, MediaType: "text/plain", Name: "notes.txt"}
}

// Files round-trip with their group's name, newest first; a file is
// stored once by its identifier, and a reference that shares another's
// blob identifier but not its key is another file; download state is
// recorded and cleared.
func TestFiles(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	now := time.UnixMilli(time.Now().UnixMilli())
	a, b := testRef(1), testRef(5)
	update(t, s, func(tx *Tx) error {
		if err := tx.PutGroup(&Group{ID: []byte{0xaa}, Kind: wire.GroupKindGroup, Name: "trio", State: []byte{1}, Active: true}); err != nil {
			return err
		}
		for i, f := range []*File{
			{ID: []byte{0xa1}, Ref: a, Caption: "first", Sender: "bob@a.test", Group: []byte{0xaa}, MessageID: [32]byte{1}, SentAt: now, ReceivedAt: now},
			{ID: []byte{0xb1}, Ref: b, Sender: "alice@a.test", Group: []byte{0xbb}, MessageID: [32]byte{2}, SentAt: now, ReceivedAt: now.Add(time.Second), Outgoing: true},
		} {
			if ok, err := tx.InsertFile(f); err != nil || !ok {
				t.Fatalf("insert %d: %v, %v", i, ok, err)
			}
		}
		if ok, err := tx.InsertFile(&File{ID: []byte{0xa1}, Ref: a, Caption: "again", Sender: "bob@a.test", Group: []byte{0xaa}}); err != nil || ok {
			t.Fatalf("the same file again: %v, %v", ok, err)
		}
		other := &File{ID: []byte{0xc1}, Ref: a, Caption: "other", Sender: "mallory@a.test", Group: []byte{0xaa}, ReceivedAt: now.Add(-time.Second)}
		other.Ref.Key = bytes.Repeat([]byte{9}, 32)
		if ok, err := tx.InsertFile(other); err != nil || !ok {
			t.Fatalf("another reference to the same blob: %v, %v", ok, err)
		}
		return nil
	})
	view(t, s, func(tx *Tx) error {
		fs, err := tx.Files()
		if err != nil || len(fs) != 3 || !bytes.Equal(fs[2].ID, []byte{0xc1}) || fs[2].Sender != "mallory@a.test" {
			t.Fatalf("files %+v, %v", fs, err)
		}
		if !bytes.Equal(fs[0].Ref.BlobID, b.BlobID) || !fs[0].Outgoing || fs[0].GroupName != "" {
			t.Fatalf("newest %+v", fs[0])
		}
		f := fs[1]
		if !bytes.Equal(f.ID, []byte{0xa1}) || !bytes.Equal(f.Ref.Key, a.Key) || !bytes.Equal(f.Ref.Hash, a.Hash) || f.Ref.Name != "notes.txt" || f.Ref.Size != 1000 ||
			f.Ref.MediaType != "text/plain" || f.Ref.Domain != "a.test" || f.Caption != "first" || f.Sender != "bob@a.test" ||
			f.GroupName != "trio" || f.GroupKind != wire.GroupKindGroup || f.MessageID[0] != 1 || !f.SentAt.Equal(now) || f.Outgoing {
			t.Fatalf("file %+v", f)
		}
		if _, err := tx.File(bytes.Repeat([]byte{7}, 16)); !errors.Is(err, ErrNotFound) {
			t.Fatalf("unknown file: %v", err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.SetDownloadProgress([]byte{0xa1}, "/tmp/x", 65536) })
	view(t, s, func(tx *Tx) error {
		f, err := tx.File([]byte{0xa1})
		if err != nil || f.DownloadOut != "/tmp/x" || f.DownloadDone != 65536 || f.Path != "" {
			t.Fatalf("file %+v, %v", f, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.SetDownloaded([]byte{0xa1}, "/tmp/x") })
	view(t, s, func(tx *Tx) error {
		f, err := tx.File([]byte{0xa1})
		if err != nil || f.DownloadOut != "" || f.DownloadDone != 0 || f.Path != "/tmp/x" {
			t.Fatalf("file %+v, %v", f, err)
		}
		return nil
	})
	err := s.Update(t.Context(), func(tx *Tx) error { return tx.SetDownloaded([]byte{1}, "/y") })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("download of an unknown file: %v", err)
	}
}

// A file message's reference is stored with the message.
func TestMessageFile(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	ref := testRef(3)
	update(t, s, func(tx *Tx) error {
		_, err := tx.InsertMessage(&Message{ID: [16]byte{1}, Sender: "bob@a.test", Text: "caption", Type: wire.ContentFile, File: &ref})
		if err != nil {
			return err
		}
		_, err = tx.InsertMessage(&Message{ID: [16]byte{2}, Sender: "bob@a.test", Text: "plain", Type: wire.ContentText})
		return err
	})
	view(t, s, func(tx *Tx) error {
		ms, err := tx.Messages(false)
		if err != nil || len(ms) != 2 || ms[0].File == nil || ms[0].File.Name != "notes.txt" || !bytes.Equal(ms[0].File.Key, ref.Key) ||
			ms[1].File != nil {
			t.Fatalf("messages %+v, %v", ms, err)
		}
		return nil
	})
}

// An upload is found by its source and target, moves to finished with its
// hash, and is forgotten when deleted or expired.
func TestUploads(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	u := &Upload{Path: "/home/a/photo.jpg", Size: 5000, ModTime: 123456789, Target: "to:bob@b.test", Caption: "look",
		MediaType: "image/jpeg", Name: "photo.jpg", Key: bytes.Repeat([]byte{1}, 32), Domain: "a.test",
		BlobID: bytes.Repeat([]byte{2}, 16), BlobSize: 5200, Stage: UploadSending}
	update(t, s, func(tx *Tx) error { return tx.InsertUpload(u) })
	if u.ID == 0 {
		t.Fatal("no upload id")
	}
	find := func(path string, size, mtime int64, target string) (*Upload, error) {
		var got *Upload
		err := s.View(t.Context(), func(tx *Tx) (err error) {
			got, err = tx.FindUpload(path, size, mtime, target)
			return err
		})
		return got, err
	}
	for _, miss := range []struct {
		path        string
		size, mtime int64
		target      string
	}{
		{"/home/a/other.jpg", 5000, 123456789, "to:bob@b.test"},
		{"/home/a/photo.jpg", 5001, 123456789, "to:bob@b.test"},
		{"/home/a/photo.jpg", 5000, 123456780, "to:bob@b.test"},
		{"/home/a/photo.jpg", 5000, 123456789, "to:carol@b.test"},
	} {
		if _, err := find(miss.path, miss.size, miss.mtime, miss.target); !errors.Is(err, ErrNotFound) {
			t.Fatalf("%+v: %v", miss, err)
		}
	}
	got, err := find(u.Path, u.Size, u.ModTime, u.Target)
	if err != nil || got.ID != u.ID || got.Caption != "look" || !bytes.Equal(got.Key, u.Key) || !bytes.Equal(got.BlobID, u.BlobID) ||
		got.BlobSize != 5200 || got.Hash != nil || got.Stage != UploadSending || got.Name != "photo.jpg" || got.Domain != "a.test" {
		t.Fatalf("upload %+v, %v", got, err)
	}
	update(t, s, func(tx *Tx) error { return tx.FinishUpload(u.ID, []byte{7}) })
	if got, err := find(u.Path, u.Size, u.ModTime, u.Target); err != nil || got.Stage != UploadFinished ||
		!bytes.Equal(got.Hash, []byte{7}) {
		t.Fatalf("finished upload %+v, %v", got, err)
	}
	update(t, s, func(tx *Tx) error { return tx.ExpireUploads(time.Now().Add(-time.Hour)) })
	if _, err := find(u.Path, u.Size, u.ModTime, u.Target); err != nil {
		t.Fatalf("a new upload expired: %v", err)
	}
	update(t, s, func(tx *Tx) error { return tx.DeleteUpload(u.ID) })
	if _, err := find(u.Path, u.Size, u.ModTime, u.Target); !errors.Is(err, ErrNotFound) {
		t.Fatalf("deleted upload: %v", err)
	}
	err = s.Update(t.Context(), func(tx *Tx) error { return tx.FinishUpload(u.ID, nil) })
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("finish a deleted upload: %v", err)
	}
}
