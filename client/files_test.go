package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client"
	"github.com/xchat-im/xchat/client/filecrypt"
	"github.com/xchat-im/xchat/server"
	"github.com/xchat-im/xchat/server/servertest"
	"github.com/xchat-im/xchat/spec/wire"
)

// randomFile writes n random bytes to a file named name in a new
// directory and returns its path and content.
func randomFile(t *testing.T, name string, n int) (string, []byte) {
	t.Helper()
	data := make([]byte, n)
	rand.Read(data)
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, data
}

// sameFile fails the test unless the file at path holds want.
func sameFile(t *testing.T, path string, want []byte) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s: %d bytes differ from the %d sent", path, len(got), len(want))
	}
}

// noFiles fails the test if dir holds anything.
func noFiles(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s left in %s", e.Name(), dir)
	}
}

// fileMessage receives until a file message arrives and returns it.
func (u *user) fileMessage() client.Message {
	u.t.Helper()
	var got *client.Message
	u.recvWhile(func() bool {
		ms, err := u.p.Messages(u.t.Context())
		if err != nil {
			u.t.Fatal(err)
		}
		for _, m := range ms {
			if m.File != nil {
				got = &m
			}
		}
		return got == nil
	})
	if got == nil {
		u.t.Fatal("no file message arrived")
	}
	return *got
}

// A file sent to a user of another domain arrives as a reference, is
// listed on both sides, and downloads byte-identical through the
// recipient's homeserver; neither homeserver's data nor log holds its
// name, caption or any 32 bytes of its content.
func TestSendFileAcrossDomains(t *testing.T) {
	t.Parallel()
	ss := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	alice := register(t, ss["a.test"], "alice@a.test")
	bob := register(t, ss["b.test"], "bob@b.test")
	ctx := t.Context()
	const name, caption = "quarterly-plan-7f3a9c.pdf", "the plan, do not share 42e1"
	path, data := randomFile(t, name, 2<<20+12345)
	var last client.FileProgress
	sent, err := alice.c.SendFile(ctx, "bob@b.test", client.SendFileOptions{Path: path, Caption: caption,
		Progress: func(p client.FileProgress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	if last.Done != last.Total || last.Total != filecrypt.BlobSize(int64(len(data))) || last.Resumed != 0 {
		t.Fatalf("last progress %+v", last)
	}
	if !sent.Outgoing || sent.Ref.Name != name || sent.Ref.MediaType != "application/pdf" || sent.Ref.Size != uint64(len(data)) ||
		sent.Ref.Domain != "a.test" || sent.Caption != caption || !sent.Direct || len(sent.ID) != 32 || sent.From != "alice@a.test" {
		t.Fatalf("sent %+v", sent)
	}

	m := bob.fileMessage()
	if m.Type != wire.ContentFile || m.Text != caption || m.From != "alice@a.test" || m.File.Name != name || !m.Direct {
		t.Fatalf("message %+v", m)
	}
	files, err := bob.c.Files(ctx)
	if err != nil || len(files) != 1 {
		t.Fatalf("bob's files %+v, %v", files, err)
	}
	f := files[0]
	if f.ID != sent.ID || f.Outgoing || f.Caption != caption || f.From != "alice@a.test" || f.MessageID != m.MessageID ||
		f.MessageID != sent.MessageID || f.Path != "" || !bytes.Equal(f.Group, m.Group) {
		t.Fatalf("bob's file %+v, message %+v", f, m)
	}
	dir := t.TempDir()
	var first, end client.FileProgress
	got, resumed, err := bob.c.DownloadFile(ctx, f.ID, client.DownloadOptions{Out: dir, Progress: func(p client.FileProgress) {
		if end == (client.FileProgress{}) {
			first = p
		}
		end = p
	}})
	if err != nil {
		t.Fatal(err)
	}
	if got != filepath.Join(dir, name) || resumed != 0 || first.Done != 0 || end.Done != int64(len(data)) || end.Total != int64(len(data)) {
		t.Fatalf("downloaded to %s from %d, progress %+v … %+v", got, resumed, first, end)
	}
	sameFile(t, got, data)
	if f, err := bob.c.File(ctx, f.ID); err != nil || f.Path != got || f.Partial != 0 {
		t.Fatalf("after download: %+v, %v", f, err)
	}
	// A second download to the same place refuses to replace the file.
	if _, _, err := bob.c.DownloadFile(ctx, f.ID, client.DownloadOptions{Out: dir}); !errors.Is(err, client.ErrFileExists) {
		t.Fatalf("download over an existing file: %v", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("download directory holds %d files", len(ents))
	}
	if af, err := alice.c.Files(ctx); err != nil || len(af) != 1 || !af[0].Outgoing || af[0].ID != sent.ID {
		t.Fatalf("alice's files %+v, %v", af, err)
	}

	secrets := [][]byte{[]byte(name), []byte(caption)}
	for _, s := range ss {
		assertNoPlaintext(t, s, data, secrets)
	}
}

// assertNoPlaintext fails the test if any file under the server's data
// directory, or its log, holds one of secrets or any 32-byte run of
// plaintext.
func assertNoPlaintext(t *testing.T, s *servertest.Server, plaintext []byte, secrets [][]byte) {
	t.Helper()
	// Every 32-byte run of plaintext holds one of its 16-byte blocks at a
	// multiple of 16: index those by their first 8 bytes, look each
	// offset of the data up, and measure the common run around a hit.
	index := map[uint64][]int{}
	for i := 0; i+16 <= len(plaintext); i += 16 {
		k := binary.LittleEndian.Uint64(plaintext[i:])
		index[k] = append(index[k], i)
	}
	scan := func(what string, b []byte) {
		for _, sec := range secrets {
			if bytes.Contains(b, sec) {
				t.Errorf("%s: %s holds %q", s.Domain, what, sec)
			}
		}
		for d := 0; d+16 <= len(b); d++ {
			for _, p := range index[binary.LittleEndian.Uint64(b[d:])] {
				lo, hi := 0, 0
				for lo < min(d, p) && b[d-lo-1] == plaintext[p-lo-1] {
					lo++
				}
				for d+hi < len(b) && p+hi < len(plaintext) && b[d+hi] == plaintext[p+hi] {
					hi++
				}
				if lo+hi >= 32 {
					t.Fatalf("%s: %s holds %d bytes of the plaintext at %d", s.Domain, what, lo+hi, d-lo)
				}
			}
		}
	}
	n := 0
	err := filepath.WalkDir(s.Data, func(path string, e fs.DirEntry, err error) error {
		if err != nil || !e.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		n++
		scan(path, b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatalf("%s: no data files to scan", s.Domain)
	}
	scan("the log", s.Logs())
}

// A file sent to a group of three members on two domains is uploaded
// once; each member downloads it.
func TestSendGroupFile(t *testing.T) {
	t.Parallel()
	ss := servertest.StartFederation(t, servertest.Options{}, "a.test", "b.test")
	alice := register(t, ss["a.test"], "alice@a.test")
	bob := register(t, ss["b.test"], "bob@b.test")
	carol := register(t, ss["a.test"], "carol@a.test")
	ctx := t.Context()
	id, err := alice.c.CreateGroup(ctx, "trio", []string{"bob@b.test", "carol@a.test"})
	if err != nil {
		t.Fatal(err)
	}
	path, data := randomFile(t, "photo.jpg", 1<<20+777)
	sent, err := alice.c.SendGroupFile(ctx, id, client.SendFileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Ref.MediaType != "image/jpeg" || sent.Caption != "" || sent.GroupName != "trio" || sent.Direct {
		t.Fatalf("sent %+v", sent)
	}
	for _, u := range []*user{bob, carol} {
		m := u.fileMessage()
		if !bytes.Equal(m.Group, id) || m.GroupName != "trio" || m.Text != "" || client.FileID(m.File) != sent.ID {
			t.Fatalf("message %+v", m)
		}
		out := filepath.Join(t.TempDir(), "mine.jpg")
		got, _, err := u.c.DownloadFile(ctx, sent.ID, client.DownloadOptions{Out: out})
		if err != nil || got != out {
			t.Fatalf("download: %s, %v", got, err)
		}
		sameFile(t, out, data)
	}
}

// An upload cancelled halfway continues where the homeserver's durable
// prefix ends; the message is sent once.
func TestUploadResumes(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	path, data := randomFile(t, "video.bin", 4<<20)
	ctx, cancel := context.WithCancel(t.Context())
	_, err := alice.c.SendFile(ctx, "bob@a.test", client.SendFileOptions{Path: path, Progress: func(p client.FileProgress) {
		if p.Done >= p.Total/2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled upload: %v", err)
	}
	if fs, err := alice.p.Files(t.Context()); err != nil || len(fs) != 0 {
		t.Fatalf("files after a cancelled upload: %+v, %v", fs, err)
	}
	var first, last client.FileProgress
	sent, err := alice.c.SendFile(t.Context(), "bob@a.test", client.SendFileOptions{Path: path, Progress: func(p client.FileProgress) {
		if first == (client.FileProgress{}) {
			first = p
		}
		last = p
	}})
	if err != nil {
		t.Fatal(err)
	}
	if first.Resumed < first.Total/4 || first.Done != first.Resumed || last.Done != last.Total || last.Resumed != first.Resumed {
		t.Fatalf("resumed upload: progress %+v … %+v", first, last)
	}
	t.Logf("resumed at %d of %d blob bytes", first.Resumed, first.Total)
	m := bob.fileMessage()
	if client.FileID(m.File) != sent.ID {
		t.Fatalf("message %+v, sent %+v", m, sent)
	}
	out := filepath.Join(t.TempDir(), "v.bin")
	if _, _, err := bob.c.DownloadFile(t.Context(), sent.ID, client.DownloadOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, out, data)
	if ms, err := bob.p.Messages(t.Context()); err != nil || len(ms) != 1 {
		t.Fatalf("bob's messages %+v, %v", ms, err)
	}
	// Sending the same file again is a new message with a new upload.
	again, err := alice.c.SendFile(t.Context(), "bob@a.test", client.SendFileOptions{Path: path})
	if err != nil || again.ID == sent.ID {
		t.Fatalf("second send %+v, %v", again, err)
	}
}

// A download cancelled halfway keeps its verified part in the temporary
// file and continues from there.
func TestDownloadResumes(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	path, data := randomFile(t, "archive.tar", 4<<20+99)
	sent, err := alice.c.SendFile(t.Context(), "bob@a.test", client.SendFileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	bob.fileMessage()
	dir := t.TempDir()
	out := filepath.Join(dir, "archive.tar")
	ctx, cancel := context.WithCancel(t.Context())
	_, _, err = bob.c.DownloadFile(ctx, sent.ID, client.DownloadOptions{Out: out, Progress: func(p client.FileProgress) {
		if p.Done >= p.Total/2 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled download: %v", err)
	}
	if _, err := os.Stat(out); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("output of a cancelled download: %v", err)
	}
	f, err := bob.c.File(t.Context(), sent.ID)
	if err != nil || f.Partial < int64(len(data))/2 || f.Partial%filecrypt.ChunkSize != 0 {
		t.Fatalf("after the cancelled download: %+v, %v", f, err)
	}
	var first client.FileProgress
	got, resumed, err := bob.c.DownloadFile(t.Context(), sent.ID, client.DownloadOptions{Out: out, Progress: func(p client.FileProgress) {
		if first == (client.FileProgress{}) {
			first = p
		}
	}})
	if err != nil || got != out || resumed != f.Partial || first.Resumed != resumed || first.Done != resumed {
		t.Fatalf("resumed download: %s from %d (%+v), %v; kept %d", got, resumed, first, err, f.Partial)
	}
	sameFile(t, out, data)
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("download directory holds %d files", len(ents))
	}
}

// A blob with a flipped byte, a truncated blob, a wrong key and a wrong
// hash each fail the download with ErrFileCorrupt and leave no file.
func TestDownloadCorrupt(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	ctx := t.Context()
	path, data := randomFile(t, "doc.txt", 300<<10)
	sent, err := alice.c.SendFile(ctx, "bob@a.test", client.SendFileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	blob, err := filecrypt.NewBlobReader(sent.Ref.Key, bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatal(err)
	}
	good, err := io.ReadAll(blob)
	if err != nil {
		t.Fatal(err)
	}
	upload := func(b []byte) (id, hash []byte) {
		id, err := client.UploadBlob(ctx, alice.c, b)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.Sum256(b)
		return id, h[:]
	}
	flipped := bytes.Clone(good)
	flipped[200<<10] ^= 1
	// The first half of the ciphertext, padded as a blob of its own.
	half := filecrypt.CiphertextSize(int64(len(data))) / 2
	truncated := make([]byte, wire.PaddedBlobSize(uint64(half)))
	copy(truncated, good[:half])

	refs := map[string]wire.FileRef{}
	ref := sent.Ref
	ref.BlobID, ref.Hash = upload(flipped)
	refs["flipped byte"] = ref
	ref = sent.Ref
	ref.BlobID, _ = upload(truncated)
	refs["truncated"] = ref
	ref = sent.Ref
	ref.BlobID, ref.Hash = upload(good)
	ref.Key = bytes.Repeat([]byte{7}, 32)
	refs["wrong key"] = ref
	ref = sent.Ref
	ref.BlobID, _ = upload(good)
	ref.Hash = bytes.Repeat([]byte{7}, 32)
	refs["wrong hash"] = ref
	for what, ref := range refs {
		text := what
		if err := client.SendContent(ctx, alice.c, sent.Group, &wire.Content{Type: wire.ContentFile, Text: &text, File: &ref}); err != nil {
			t.Fatal(err)
		}
	}
	bob.recvWhile(func() bool {
		fs, err := bob.p.Files(ctx)
		return err == nil && len(fs) < 1+len(refs)
	})
	files, err := bob.c.Files(ctx)
	if err != nil || len(files) != 1+len(refs) {
		t.Fatalf("bob's files %+v, %v", files, err)
	}
	for _, f := range files {
		if f.ID == sent.ID {
			continue
		}
		dir := t.TempDir()
		_, _, err := bob.c.DownloadFile(ctx, f.ID, client.DownloadOptions{Out: filepath.Join(dir, "out")})
		if !errors.Is(err, client.ErrFileCorrupt) || !errors.Is(err, filecrypt.ErrCorrupt) {
			t.Errorf("%s: %v", f.Caption, err)
		}
		t.Logf("%s: %v", f.Caption, err)
		noFiles(t, dir)
		if g, err := bob.c.File(ctx, f.ID); err != nil || g.Partial != 0 || g.Path != "" {
			t.Errorf("%s: after the failed download %+v, %v", f.Caption, g, err)
		}
	}
	// The genuine file still downloads.
	out := filepath.Join(t.TempDir(), "doc.txt")
	if _, _, err := bob.c.DownloadFile(ctx, sent.ID, client.DownloadOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, out, data)
	if _, err := bob.c.File(ctx, strings.Repeat("0", 32)); !errors.Is(err, client.ErrUnknownFile) {
		t.Fatalf("unknown file: %v", err)
	}
	if _, _, err := bob.c.DownloadFile(ctx, "zz", client.DownloadOptions{}); !errors.Is(err, client.ErrUnknownFile) {
		t.Fatalf("bad file id: %v", err)
	}
}

// An upload whose blob the homeserver no longer knows (its unfinished
// lifetime ended) starts over with a new blob.
func TestUploadStartsOverWhenExpired(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{Limits: server.Limits{UploadLifetime: 8 * time.Second}})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	path, data := randomFile(t, "slides.odp", 3<<19)
	ctx, cancel := context.WithCancel(t.Context())
	_, err := alice.c.SendFile(ctx, "bob@a.test", client.SendFileOptions{Path: path, Progress: func(p client.FileProgress) {
		if p.Done > 0 {
			cancel()
		}
	}})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled upload: %v", err)
	}
	blobID := client.PendingUploadBlob(t, alice.p, path, "bob@a.test")
	for deadline := time.Now().Add(20 * time.Second); ; {
		_, err := client.BlobStatus(t.Context(), alice.c, blobID)
		if errors.Is(err, wire.ErrUnknownBlob) {
			break
		}
		if err != nil || time.Now().After(deadline) {
			t.Fatalf("blob status: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling the server's clock
	}
	var first client.FileProgress
	sent, err := alice.c.SendFile(t.Context(), "bob@a.test", client.SendFileOptions{Path: path, Progress: func(p client.FileProgress) {
		if first == (client.FileProgress{}) {
			first = p
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if first.Resumed != 0 || sent.ID == hex.EncodeToString(blobID) {
		t.Fatalf("restarted upload: progress %+v, blob %s (the expired one %x)", first, sent.ID, blobID)
	}
	bob.fileMessage()
	out := filepath.Join(t.TempDir(), "s.odp")
	if _, _, err := bob.c.DownloadFile(t.Context(), sent.ID, client.DownloadOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, out, data)
}

// A download from another domain that its homeserver meters
// (rate_limited with a retry-after) continues after the pauses it asks
// for.
func TestDownloadRateLimited(t *testing.T) {
	t.Parallel()
	ss := servertest.StartFederation(t, servertest.Options{Limits: server.Limits{FedBlobRate: 1 << 20}}, "a.test", "b.test")
	alice := register(t, ss["a.test"], "alice@a.test")
	bob := register(t, ss["b.test"], "bob@b.test")
	path, data := randomFile(t, "big.iso", 5<<20+3)
	sent, err := alice.c.SendFile(t.Context(), "bob@b.test", client.SendFileOptions{Path: path})
	if err != nil {
		t.Fatal(err)
	}
	bob.fileMessage()
	out := filepath.Join(t.TempDir(), "big.iso")
	if _, _, err := bob.c.DownloadFile(t.Context(), sent.ID, client.DownloadOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, out, data)
}

// A client killed halfway through an upload resumes it in the next run;
// one killed after queueing a file message and before sending it sends it
// at its next connection, once, and starts no upload again.
func TestUploadSurvivesCrash(t *testing.T) {
	t.Parallel()
	_, aliceDir, bobDir := setup(t)
	path, data := randomFile(t, "crash.bin", 3<<20)
	runCrashChild(t, "upload", aliceDir, "XCHAT_TEST_FILE="+path)
	path2, data2 := randomFile(t, "queued.bin", 700<<10)
	runCrashChild(t, "queued", aliceDir, "XCHAT_TEST_FILE="+path2)

	p, err := client.OpenProfile(aliceDir)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c, err := client.Connect(t.Context(), p) // sends what the outbox holds
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var first client.FileProgress
	sent, err := c.SendFile(t.Context(), "bob@a.test", client.SendFileOptions{Path: path, Progress: func(p client.FileProgress) {
		if first == (client.FileProgress{}) {
			first = p
		}
	}})
	if err != nil {
		t.Fatal(err)
	}
	if first.Resumed < first.Total/2 {
		t.Fatalf("upload after the crash resumed at %d of %d", first.Resumed, first.Total)
	}
	files, err := p.Files(t.Context())
	if err != nil || len(files) != 2 || files[0].ID != sent.ID || files[1].Ref.Name != "queued.bin" {
		t.Fatalf("alice's files %+v, %v", files, err)
	}

	bp, err := client.OpenProfile(bobDir)
	if err != nil {
		t.Fatal(err)
	}
	bob := &user{t: t, dir: bobDir, p: bp}
	bob.connect()
	bob.recvWhile(func() bool {
		fs, err := bob.p.Files(t.Context())
		return err == nil && len(fs) < 2
	})
	ms, err := bob.p.Messages(t.Context())
	if err != nil || len(ms) != 3 {
		t.Fatalf("bob's messages %+v, %v", ms, err)
	}
	want := map[string][]byte{sent.ID: data, files[1].ID: data2}
	for id, data := range want {
		out := filepath.Join(t.TempDir(), "f")
		if _, _, err := bob.c.DownloadFile(t.Context(), id, client.DownloadOptions{Out: out}); err != nil {
			t.Fatal(err)
		}
		sameFile(t, out, data)
	}
}

// An empty file is one empty chunk in the smallest blob; it arrives empty.
func TestEmptyFile(t *testing.T) {
	t.Parallel()
	s := servertest.Start(t, servertest.Options{})
	alice, bob := register(t, s, "alice@a.test"), register(t, s, "bob@a.test")
	path, _ := randomFile(t, "empty.txt", 0)
	var last client.FileProgress
	sent, err := alice.c.SendFile(t.Context(), "bob@a.test", client.SendFileOptions{Path: path, Caption: "nothing",
		Progress: func(p client.FileProgress) { last = p }})
	if err != nil {
		t.Fatal(err)
	}
	if sent.Ref.Size != 0 || sent.Ref.MediaType != "text/plain" || last.Total != wire.MinBlobSize || last.Done != last.Total {
		t.Fatalf("sent %+v, progress %+v", sent, last)
	}
	if m := bob.fileMessage(); m.Text != "nothing" || m.File.Size != 0 {
		t.Fatalf("message %+v", m)
	}
	out := filepath.Join(t.TempDir(), "e.txt")
	if _, _, err := bob.c.DownloadFile(t.Context(), sent.ID, client.DownloadOptions{Out: out}); err != nil {
		t.Fatal(err)
	}
	sameFile(t, out, nil)
}
