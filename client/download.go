package client

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"unicode"

	"github.com/xchat-im/xchat/client/filecrypt"
	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/spec/wire"
)

// partialSuffix ends the name of the temporary file of a download.
const (
	partialPrefix = ".xchat-"
	partialSuffix = ".download"
)

// checkpointParts is how many parts a download writes between two
// records of its progress in the profile.
const checkpointParts = 16

// DownloadOptions are the inputs of DownloadFile.
type DownloadOptions struct {
	// Out is the output path. Empty: the file's name in the current
	// directory; an existing directory: the file's name in it.
	Out string
	// Progress, when set, is called on the calling goroutine once before
	// the first byte is fetched and after every part written.
	Progress func(FileProgress)
}

// DownloadFile fetches the blob of a file (File.ID) through this device's
// homeserver, decrypts and verifies it, and writes the file to o.Out. It
// returns the path written and the plaintext bytes an earlier, interrupted
// run had kept, from which this one continued.
//
// The plaintext goes to a temporary file next to the output, named after
// the file's identifier (".xchat-ID.download", whatever the file's name),
// renamed to the output only once the whole blob verified.
// When the download is interrupted, the verified part stays there and
// DownloadFile with the same id and output continues from its end. An
// output that exists gives ErrFileExists; a blob that is not the
// referenced file (tampered with, truncated, another key) gives an error
// wrapping ErrFileCorrupt, and the temporary file is removed.
func (cl *Client) DownloadFile(ctx context.Context, id string, o DownloadOptions) (path string, resumedFrom int64, err error) {
	f, err := cl.p.fileRow(ctx, id)
	if err != nil {
		return "", 0, err
	}
	out, err := downloadPath(o.Out, f.Ref.Name)
	if err != nil {
		return "", 0, err
	}
	if _, err := os.Lstat(out); err == nil {
		return "", 0, fmt.Errorf("%w: %s", ErrFileExists, out)
	} else if !errors.Is(err, os.ErrNotExist) {
		return "", 0, err
	}
	if f.DownloadOut != "" && f.DownloadOut != out {
		os.Remove(partialPath(f.DownloadOut, f.ID)) // an earlier download elsewhere
	}
	d := &download{cl: cl, ref: f.Ref, out: out, tmpPath: partialPath(out, f.ID), progress: o.Progress}
	n, err := d.open(f)
	if err != nil {
		return "", 0, err
	}
	defer d.tmp.Close()
	if err := d.save(ctx, n); err != nil {
		return "", 0, err
	}
	err = d.run(ctx, n)
	n = d.start
	if errors.Is(err, filecrypt.ErrCorrupt) {
		d.tmp.Close()
		os.Remove(d.tmpPath)
		if serr := d.save(context.WithoutCancel(ctx), -1); serr != nil {
			return "", n, serr
		}
		return "", n, fmt.Errorf("%w %s: %w", ErrFileCorrupt, f.Ref.Name, err)
	}
	if err != nil {
		// What verified stays for the next run, even when ctx ended.
		if serr := d.checkpoint(context.WithoutCancel(ctx)); serr != nil {
			return "", n, errors.Join(err, serr)
		}
		return "", n, err
	}
	if err := d.tmp.Sync(); err != nil {
		return "", n, err
	}
	if err := d.tmp.Close(); err != nil {
		return "", n, err
	}
	if err := place(d.tmpPath, out); err != nil {
		return "", n, err
	}
	err = cl.p.update(context.WithoutCancel(ctx), func(tx *profile.Tx) error { return tx.SetDownloaded(fileID(&f.Ref), out) })
	if err != nil {
		return "", n, err
	}
	return out, n, nil
}

// downloadPath returns the absolute output path of a download of a file
// named name to out.
func downloadPath(out, name string) (string, error) {
	if fi, err := os.Stat(out); out == "" || err == nil && fi.IsDir() {
		// Received references are checked; this keeps a name that could
		// leave the directory out, whatever the profile holds.
		if !wire.ValidFileName(name) {
			return "", fmt.Errorf("the file's name %q cannot be used: give an output path", name)
		}
		out = filepath.Join(out, savedName(name))
	}
	return filepath.Abs(out)
}

// savedName returns the name under which a file named name is saved:
// characters that change how a name displays (format characters such as
// U+202E, line and paragraph separators) replaced by "_"
// (spec/11-files.md section 11.5).
// A name that looks like a temporary download file gets a "_" in front,
// so that no sender can name a file after another download's temporary
// file.
func savedName(name string) string {
	if strings.HasPrefix(name, partialPrefix) {
		name = "_" + name
	}
	return strings.Map(func(r rune) rune {
		if unicode.In(r, unicode.Cf, unicode.Cc, unicode.Zl, unicode.Zp) {
			return '_'
		}
		return r
	}, name)
}

// partialPath returns the temporary file of the download of file id to
// out: named after the file, not after out, so that it never collides
// with another file's download or with a saved file, and stays short.
func partialPath(out string, id []byte) string {
	return filepath.Join(filepath.Dir(out), partialPrefix+hex.EncodeToString(id)+partialSuffix)
}

// place moves a complete download to its output path, never replacing a
// file that appeared there meanwhile.
func place(tmp, out string) error {
	err := os.Link(tmp, out)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%w: %s", ErrFileExists, out)
	}
	if err != nil {
		// A file system without hard links: rename, after one more check.
		if _, serr := os.Lstat(out); serr == nil {
			return fmt.Errorf("%w: %s", ErrFileExists, out)
		}
		return os.Rename(tmp, out)
	}
	return os.Remove(tmp)
}

// download is one run of DownloadFile.
type download struct {
	cl       *Client
	ref      wire.FileRef
	out      string
	tmpPath  string
	tmp      *os.File
	w        *filecrypt.BlobWriter
	start    int64 // the plaintext bytes kept from an earlier run
	progress func(FileProgress)
}

// open opens the temporary file, keeping the verified plaintext an
// earlier run to the same output recorded, and returns its length.
func (d *download) open(f *profile.File) (int64, error) {
	if fi, err := os.Lstat(d.tmpPath); f.DownloadOut == d.out && f.DownloadDone > 0 && err == nil && fi.Mode().IsRegular() {
		tmp, err := os.OpenFile(d.tmpPath, os.O_RDWR, 0)
		if err == nil {
			fi, err := tmp.Stat()
			if err == nil && fi.Mode().IsRegular() && fi.Size() >= f.DownloadDone && tmp.Truncate(f.DownloadDone) == nil {
				d.tmp = tmp
				return f.DownloadDone, nil
			}
			tmp.Close()
		}
	}
	// What is at the path is this file's own earlier temporary file (or
	// something in its way): removed, then created anew, never followed.
	if err := os.Remove(d.tmpPath); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return 0, err
	}
	tmp, err := os.OpenFile(d.tmpPath, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, err
	}
	d.tmp = tmp
	return 0, nil
}

// save records how much of the download the temporary file holds; -1
// forgets the download.
func (d *download) save(ctx context.Context, n int64) error {
	return d.cl.p.update(ctx, func(tx *profile.Tx) error {
		if n < 0 {
			return tx.SetDownloadProgress(fileID(&d.ref), "", 0)
		}
		return tx.SetDownloadProgress(fileID(&d.ref), d.out, n)
	})
}

// checkpoint makes the verified plaintext durable and records its length.
func (d *download) checkpoint(ctx context.Context) error {
	if d.w == nil {
		return nil
	}
	if err := d.tmp.Sync(); err != nil {
		return err
	}
	return d.save(ctx, d.w.Written())
}

// run fetches the blob from the plaintext offset n on and verifies it
// whole.
func (d *download) run(ctx context.Context, n int64) error {
	size := int64(d.ref.Size)
	var off int64
	var err error
	d.start = n
	if n > 0 {
		d.w, off, err = filecrypt.ResumeBlobWriter(d.ref.Key, d.ref.Hash, size, io.NewOffsetWriter(d.tmp, n), io.NewSectionReader(d.tmp, 0, n), n)
		if errors.Is(err, filecrypt.ErrSize) {
			n, d.start = 0, 0 // the kept plaintext is shorter than recorded: start over
			if err := d.tmp.Truncate(0); err != nil {
				return err
			}
		} else if err != nil {
			return err
		}
	}
	if n == 0 {
		if d.w, err = filecrypt.NewBlobWriter(d.ref.Key, d.ref.Hash, size, io.NewOffsetWriter(d.tmp, 0)); err != nil {
			return err
		}
	}
	report := func() {
		if d.progress != nil {
			d.progress(FileProgress{Done: d.w.Written(), Total: size, Resumed: n})
		}
	}
	report()
	parts := 0
	err = d.cl.getBlob(ctx, d.ref, off, func(data []byte) error {
		// Parts already fetched are not written once ctx ends, so that a
		// cancelled download stops where it was cancelled.
		if err := ctx.Err(); err != nil {
			return err
		}
		if _, err := d.w.Write(data); err != nil {
			return err
		}
		report()
		if parts++; parts%checkpointParts == 0 {
			return d.checkpoint(ctx)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return d.w.Close()
}

// getBlob fetches the blob of ref from offset off to its end, in ranges of
// wire.BlobPartSize with transferWindow of them in flight, and gives them
// to write in order.
func (cl *Client) getBlob(parent context.Context, ref wire.FileRef, off int64, write func([]byte) error) error {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()
	size := int64(ref.BlobSize())
	if size == 0 {
		return fmt.Errorf("%w: a reference to a file of %d bytes", filecrypt.ErrCorrupt, ref.Size)
	}
	count := (size - off + wire.BlobPartSize - 1) / wire.BlobPartSize
	type result struct {
		i    int64
		data []byte
		err  error
	}
	// A range is dispatched only while fewer than transferWindow are
	// fetched or waiting to be written.
	slots := make(chan struct{}, transferWindow)
	jobs := make(chan int64)
	results := make(chan result)
	go func() {
		defer close(jobs)
		for i := range count {
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				return
			}
			select {
			case jobs <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	var wg sync.WaitGroup
	for range transferWindow {
		wg.Go(func() {
			for i := range jobs {
				data, err := cl.getRange(ctx, ref, size, off+i*wire.BlobPartSize)
				select {
				case results <- result{i, data, err}:
				case <-ctx.Done():
					return
				}
			}
		})
	}
	go func() { wg.Wait(); close(results) }()
	pending := map[int64][]byte{}
	next := int64(0)
	var firstErr error
	fail := func(err error) {
		if firstErr == nil {
			firstErr = err
			cancel()
		}
	}
	for r := range results {
		if r.err != nil {
			fail(r.err)
			continue
		}
		if firstErr != nil {
			continue
		}
		pending[r.i] = r.data
		for data, ok := pending[next]; ok; data, ok = pending[next] {
			delete(pending, next)
			next++
			<-slots
			if err := write(data); err != nil {
				fail(err)
				break
			}
		}
	}
	if err := parent.Err(); err != nil {
		return err // what failed on the way was cancelled
	}
	if firstErr == nil && next != count {
		return errors.New("download: ranges missing")
	}
	return firstErr
}

// getRange reads the range of a blob of size bytes at offset off: a
// blob of another size, or fewer bytes than asked, is not the referenced
// one.
func (cl *Client) getRange(ctx context.Context, ref wire.FileRef, size, off int64) ([]byte, error) {
	n := min(wire.BlobPartSize, size-off)
	var ok wire.BlobGetOK
	err := cl.transfer(ctx, &wire.BlobGet{Domain: ref.Domain, ID: ref.BlobID, Offset: uint64(off), Length: uint64(n)}, &ok)
	switch {
	case errors.Is(err, wire.ErrBadRange):
		return nil, fmt.Errorf("%w: the blob on %s ends before byte %d of %d", filecrypt.ErrCorrupt, ref.Domain, off, size)
	case errors.Is(err, wire.ErrUnknownBlob):
		return nil, fmt.Errorf("the file is no longer on %s, or was never finished (%w)", ref.Domain, err)
	case err != nil:
		return nil, fmt.Errorf("download from %s: %w", ref.Domain, err)
	case ok.Size != uint64(size):
		return nil, fmt.Errorf("%w: the blob on %s has %d bytes, the reference's %d", filecrypt.ErrCorrupt, ref.Domain, ok.Size, size)
	case int64(len(ok.Data)) != n:
		return nil, fmt.Errorf("%w: %d bytes of the blob at %d, want %d", filecrypt.ErrCorrupt, len(ok.Data), off, n)
	}
	return ok.Data, nil
}
