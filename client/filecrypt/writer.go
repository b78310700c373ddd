package filecrypt

import (
	"crypto/cipher"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"hash"
	"io"
)

// BlobWriter is an io.Writer that takes the bytes of a blob in order,
// checks them and writes the file's plaintext to an underlying writer. It
// authenticates every chunk as soon as its last byte arrives and writes
// its plaintext only then, so the underlying writer never receives a byte
// that did not authenticate. It holds one chunk in memory.
//
// Authenticated chunks are not yet the referenced file: only Close, which
// checks the blob's hash, says that. When Write or Close fails with an
// error wrapping ErrCorrupt, the caller discards what was written.
type BlobWriter struct {
	l       layout
	aead    cipher.AEAD
	out     io.Writer
	want    []byte // the reference's blob hash
	hash    hash.Hash
	nonce   nonce
	next    int64  // index of the chunk being received
	buf     []byte // its bytes so far
	off     int64  // blob bytes accepted
	written int64  // plaintext bytes written to out
	err     error  // sticky
	closed  bool
}

var errClosed = errors.New("filecrypt: write to a closed BlobWriter")

// NewBlobWriter returns a writer of the blob of a file of size plaintext
// bytes, encrypted under key (KeySize bytes), whose SHA-256 is hash
// (HashSize bytes), as a file reference gives them. It writes the
// plaintext to out.
func NewBlobWriter(key, hash []byte, size int64, out io.Writer) (*BlobWriter, error) {
	l, err := newLayout(size)
	if err != nil {
		return nil, err
	}
	a, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	if len(hash) != HashSize {
		return nil, fmt.Errorf("filecrypt: blob hash of %d bytes, want %d", len(hash), HashSize)
	}
	return &BlobWriter{
		l:    l,
		aead: a,
		out:  out,
		want: append([]byte(nil), hash...),
		hash: sha256.New(),
		buf:  make([]byte, 0, SealedChunkSize),
	}, nil
}

// ResumeBlobWriter returns a BlobWriter that continues an interrupted
// download of which the caller kept the first n plaintext bytes, which
// prefix yields. n is a multiple of ChunkSize or the file's size, as a
// BlobWriter's Written value always is. The kept plaintext is encrypted
// again, giving the same blob bytes (encryption is deterministic given the
// key), to recover the hash state; it is not written to out again.
// blobOffset is the first blob byte the caller fetches next and writes to
// the returned writer: BlobOffset(n), or CiphertextSize(size) when n is the
// size of a non-empty file. The writer writes the plaintext from byte n on
// to out.
//
// A kept prefix that differs from the file (a damaged local copy) is not
// noticed here: Close then fails with ErrHashMismatch. A prefix shorter
// than n bytes gives an error wrapping ErrSize.
func ResumeBlobWriter(key, hash []byte, size int64, out io.Writer, prefix io.Reader, n int64) (w *BlobWriter, blobOffset int64, err error) {
	w, err = NewBlobWriter(key, hash, size, out)
	if err != nil {
		return nil, 0, err
	}
	if n < 0 || n > size || (n%ChunkSize != 0 && n != size) {
		return nil, 0, fmt.Errorf("filecrypt: resume after %d of %d plaintext bytes: not a chunk boundary", n, size)
	}
	chunks := n / ChunkSize
	if n == size && n > 0 {
		chunks = w.l.chunks
	}
	for i := range chunks {
		want := w.l.plainLen(i)
		got, err := io.ReadFull(prefix, w.buf[:want])
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			return nil, 0, fmt.Errorf("%w: kept plaintext ended after %d of %d bytes", ErrSize, i*ChunkSize+int64(got), n)
		}
		if err != nil {
			return nil, 0, fmt.Errorf("filecrypt: reading kept plaintext: %w", err)
		}
		w.hash.Write(w.aead.Seal(w.buf[:0], w.nonce.set(i, w.l.last(i)), w.buf[:want], nil))
		w.off += want + tagSize
	}
	w.buf = w.buf[:0]
	w.next = chunks
	w.written = n
	return w, w.off, nil
}

// BlobSize returns the length of the blob: BlobSize(size).
func (w *BlobWriter) BlobSize() int64 { return w.l.blobSize }

// Offset returns the blob bytes accepted so far, including those of a
// chunk not yet complete.
func (w *BlobWriter) Offset() int64 { return w.off }

// Written returns the plaintext bytes written to out so far: a multiple of
// ChunkSize, or the file's size once the last chunk has authenticated. It
// is the n with which ResumeBlobWriter continues.
func (w *BlobWriter) Written() int64 { return w.written }

// Write takes the next blob bytes. It fails with an error wrapping
// ErrCorrupt when a chunk does not authenticate, a padding byte is not
// zero or p goes beyond the blob's end, and with out's error when out
// fails; every later Write and Close return the same error.
func (w *BlobWriter) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, errClosed
	}
	n := 0
	for n < len(p) && w.err == nil {
		switch {
		case w.off < w.l.ctSize:
			chunk := w.l.plainLen(w.next) + tagSize
			c := copy(w.buf[len(w.buf):chunk], p[n:])
			w.buf = w.buf[:len(w.buf)+c]
			n += c
			w.off += int64(c)
			if int64(len(w.buf)) == chunk {
				w.err = w.openChunk()
			}
		case w.off < w.l.blobSize:
			c := int(min(w.l.blobSize-w.off, int64(len(p)-n)))
			pad := p[n : n+c]
			w.hash.Write(pad)
			for j, b := range pad {
				if b != 0 {
					w.err = fmt.Errorf("%w: non-zero padding at blob offset %d", ErrCorrupt, w.off+int64(j))
					c = j
					break
				}
			}
			n += c
			w.off += int64(c)
		default:
			w.err = fmt.Errorf("%w: bytes beyond the blob's end at %d", ErrCorrupt, w.l.blobSize)
		}
	}
	return n, w.err
}

// openChunk authenticates the complete chunk in buf and writes its
// plaintext.
func (w *BlobWriter) openChunk() error {
	i := w.next
	w.hash.Write(w.buf)
	plain, err := w.aead.Open(w.buf[:0], w.nonce.set(i, w.l.last(i)), w.buf, nil)
	if err != nil {
		if i == 0 {
			return fmt.Errorf("%w: chunk 0 does not authenticate (wrong file key, or not this file's blob)", ErrCorrupt)
		}
		return fmt.Errorf("%w: chunk %d of %d does not authenticate (altered or out of place)", ErrCorrupt, i, w.l.chunks)
	}
	w.buf = w.buf[:0]
	w.next++
	if _, err := w.out.Write(plain); err != nil {
		return fmt.Errorf("filecrypt: writing plaintext: %w", err)
	}
	w.written += int64(len(plain))
	return nil
}

// Close checks that the blob is complete and that its hash is the one
// given; it does not close out. A blob cut short gives an error wrapping
// ErrCorrupt, a hash that differs ErrHashMismatch. Close returns the same
// result when called again.
func (w *BlobWriter) Close() error {
	if w.err != nil || w.closed {
		return w.err
	}
	w.closed = true
	if w.off < w.l.blobSize {
		w.err = fmt.Errorf("%w: blob truncated after %d of %d bytes", ErrCorrupt, w.off, w.l.blobSize)
		return w.err
	}
	if subtle.ConstantTimeCompare(w.hash.Sum(nil), w.want) != 1 {
		w.err = ErrHashMismatch
	}
	return w.err
}
