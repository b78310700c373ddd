package filecrypt

import (
	"crypto/cipher"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
)

// BlobReader is an io.Reader of the blob of a plaintext stream: the sealed
// chunks in order, then the zero padding. It holds one chunk in memory.
type BlobReader struct {
	l       layout
	aead    cipher.AEAD
	src     io.Reader
	next    int64  // index of the next chunk to seal
	buf     []byte // one sealed chunk
	pending []byte // the part of buf not yet read
	pad     int64  // padding bytes not yet read
	hash    hash.Hash
	nonce   nonce
	sum     []byte
	err     error
}

// NewBlobReader returns a reader of the blob of the size bytes plaintext
// yields, encrypted under key (KeySize bytes). The reader fails with an
// error wrapping ErrSize when plaintext ends before size bytes or has more.
func NewBlobReader(key []byte, plaintext io.Reader, size int64) (*BlobReader, error) {
	l, err := newLayout(size)
	if err != nil {
		return nil, err
	}
	a, err := newAEAD(key)
	if err != nil {
		return nil, err
	}
	return &BlobReader{
		l:    l,
		aead: a,
		src:  plaintext,
		buf:  make([]byte, 0, SealedChunkSize),
		pad:  l.blobSize - l.ctSize,
		hash: sha256.New(),
	}, nil
}

// BlobSize returns the length of the blob: BlobSize(size).
func (r *BlobReader) BlobSize() int64 { return r.l.blobSize }

// Sum returns the SHA-256 of the blob once Read has returned io.EOF, and
// nil before.
func (r *BlobReader) Sum() []byte {
	if r.sum == nil {
		return nil
	}
	return append([]byte(nil), r.sum...)
}

// Read reads blob bytes. After the last byte it returns io.EOF; a
// plaintext stream that is too short or too long, or fails, gives an error
// that every later Read returns too.
func (r *BlobReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) && r.err == nil {
		switch {
		case len(r.pending) > 0:
			c := copy(p[n:], r.pending)
			r.pending = r.pending[c:]
			n += c
		case r.next < r.l.chunks:
			r.err = r.sealNext()
		case r.pad > 0:
			c := int(min(r.pad, int64(len(p)-n)))
			clear(p[n : n+c])
			r.hash.Write(p[n : n+c])
			r.pad -= int64(c)
			n += c
		default:
			r.sum = r.hash.Sum(nil)
			r.err = io.EOF
		}
	}
	if n > 0 && r.err == io.EOF {
		return n, nil
	}
	return n, r.err
}

// sealNext reads and seals the next chunk into pending; after the last
// chunk it checks that the plaintext has ended.
func (r *BlobReader) sealNext() error {
	i := r.next
	want := r.l.plainLen(i)
	got, err := io.ReadFull(r.src, r.buf[:want])
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: plaintext ended after %d of %d bytes", ErrSize, i*ChunkSize+int64(got), r.l.size)
	}
	if err != nil {
		return fmt.Errorf("filecrypt: reading plaintext: %w", err)
	}
	last := r.l.last(i)
	if last {
		var one [1]byte
		switch m, err := io.ReadFull(r.src, one[:]); {
		case m > 0:
			return fmt.Errorf("%w: plaintext longer than %d bytes", ErrSize, r.l.size)
		case err != io.EOF:
			return fmt.Errorf("filecrypt: reading plaintext: %w", err)
		}
	}
	r.pending = r.aead.Seal(r.buf[:0], r.nonce.set(i, last), r.buf[:want], nil)
	r.hash.Write(r.pending)
	r.next++
	return nil
}
