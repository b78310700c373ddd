// Package filecrypt encrypts and decrypts the blobs of shared files
// (spec/11-files.md sections 11.1 and 11.2), streaming, in constant memory.
//
// A file is encrypted under a fresh random file key (NewKey). The
// plaintext is cut in chunks of ChunkSize bytes, the last one holding 1 to
// ChunkSize bytes (0 only for an empty file, which is one empty chunk),
// and each chunk is sealed with ChaCha20-Poly1305 under the chunk key
// HKDF-SHA256(file key, no salt, "xchat/1 file"), with the chunk's index
// and a last-chunk flag in the nonce (age's STREAM construction). The blob
// is the sealed chunks followed by zero bytes up to the padded size of
// wire.PaddedBlobSize; a file reference names it by its SHA-256.
//
// BlobReader produces a blob from a plaintext stream (upload); BlobWriter
// checks a blob stream and writes its plaintext, chunk by chunk, only once
// each chunk has authenticated (download). ResumeBlobWriter continues an
// interrupted download from the plaintext kept so far. An interrupted
// upload needs no resumption state: encryption is deterministic given the
// key and the plaintext, so the uploader keeps the file key, makes a new
// BlobReader over the same plaintext with it and reads and discards the
// bytes the server already has (blob-status "received"); Sum covers them
// too.
//
// Sizes are int64 byte counts, as in package io; a plaintext size is at
// most wire.MaxFileSize.
package filecrypt

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/xchat-im/xchat/spec/wire"
)

// Sizes of the construction.
const (
	KeySize         = wire.FileKeyLen                      // bytes of a file key
	HashSize        = wire.FileHashLen                     // bytes of a blob hash
	ChunkSize       = wire.FileChunkSize                   // plaintext bytes of every chunk but the last
	SealedChunkSize = wire.FileChunkSize + wire.AEADTagLen // blob bytes of every sealed chunk but the last

	tagSize = wire.AEADTagLen
)

// Errors of BlobWriter and ResumeBlobWriter on the blob's content. Every
// such failure wraps ErrCorrupt, so a caller can say "the file was
// tampered with or truncated" by checking for ErrCorrupt alone; a hash
// mismatch also matches ErrHashMismatch. A wrong file key cannot be told
// apart from a tampered blob: it makes chunk 0 fail to authenticate, and
// the error's message says so.
var (
	// ErrCorrupt is a blob that is not the one the file reference names:
	// a chunk that does not authenticate (a wrong key, altered or
	// reordered chunks, a last-chunk flag in the wrong place), a blob cut
	// short, bytes beyond its end, or non-zero padding.
	ErrCorrupt = errors.New("filecrypt: blob corrupt (tampered with or truncated)")
	// ErrHashMismatch is a blob whose chunks all authenticate and whose
	// padding is zero, but whose SHA-256 is not the reference's hash: it
	// was made by someone who knows the key but is not the blob the
	// sender referenced (or, after ResumeBlobWriter, the kept plaintext
	// was not the file's). It wraps ErrCorrupt.
	ErrHashMismatch = fmt.Errorf("%w: blob hash does not match the file reference", ErrCorrupt)
)

// ErrSize is a plaintext stream (of BlobReader, or the kept prefix of
// ResumeBlobWriter) whose length is not the size it was declared with.
var ErrSize = errors.New("filecrypt: plaintext length differs from the declared size")

// NewKey returns a fresh random file key of KeySize bytes.
func NewKey() ([]byte, error) {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		return nil, fmt.Errorf("filecrypt: file key: %w", err)
	}
	return k, nil
}

// CiphertextSize returns the bytes of the sealed chunks of a file of size
// plaintext bytes (wire.EncryptedFileSize), or 0 when size is negative or
// above wire.MaxFileSize.
func CiphertextSize(size int64) int64 {
	if size < 0 || size > wire.MaxFileSize {
		return 0
	}
	return int64(wire.EncryptedFileSize(uint64(size)))
}

// BlobSize returns the padded blob size of a file of size plaintext bytes,
// or 0 when size is negative or above wire.MaxFileSize.
func BlobSize(size int64) int64 {
	if size < 0 || size > wire.MaxFileSize {
		return 0
	}
	return int64(wire.PaddedBlobSize(wire.EncryptedFileSize(uint64(size))))
}

// BlobOffset returns the offset in the blob of the ciphertext byte that
// encrypts plaintext byte plainOffset (ChaCha20 keeps positions within a
// chunk). For a multiple of ChunkSize it is where that chunk's sealed bytes
// start; for the plaintext size of a file whose size is a positive
// multiple of ChunkSize it is CiphertextSize(size). It returns -1 for a
// negative offset.
func BlobOffset(plainOffset int64) int64 {
	if plainOffset < 0 {
		return -1
	}
	return plainOffset + plainOffset/ChunkSize*tagSize
}

// layout is the chunking of a file of a given plaintext size.
type layout struct {
	size     int64 // plaintext bytes
	chunks   int64 // at least 1
	ctSize   int64 // bytes of the sealed chunks
	blobSize int64 // padded
}

func newLayout(size int64) (layout, error) {
	if size < 0 || size > wire.MaxFileSize {
		return layout{}, fmt.Errorf("filecrypt: file size %d out of range 0..%d", size, int64(wire.MaxFileSize))
	}
	return layout{
		size:     size,
		chunks:   max((size+ChunkSize-1)/ChunkSize, 1),
		ctSize:   CiphertextSize(size),
		blobSize: BlobSize(size),
	}, nil
}

// plainLen returns the plaintext bytes of chunk i.
func (l layout) plainLen(i int64) int64 { return min(ChunkSize, l.size-i*ChunkSize) }

// last reports whether chunk i is the last.
func (l layout) last(i int64) bool { return i == l.chunks-1 }

// newAEAD returns the AEAD keyed with the chunk key of a file key.
func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("filecrypt: file key of %d bytes, want %d", len(key), KeySize)
	}
	ck, err := hkdf.Key(sha256.New, key, nil, wire.ContextFileKey, chacha20poly1305.KeySize)
	if err != nil {
		return nil, fmt.Errorf("filecrypt: chunk key: %w", err)
	}
	return chacha20poly1305.New(ck)
}

// nonce is the nonce of a chunk: its index as 11 bytes big-endian, then 1
// for the last chunk, 0 otherwise.
type nonce [chacha20poly1305.NonceSize]byte

// set makes n the nonce of chunk i and returns it as a slice.
func (n *nonce) set(i int64, last bool) []byte {
	n[0], n[1], n[2] = 0, 0, 0
	binary.BigEndian.PutUint64(n[3:11], uint64(i))
	n[11] = 0
	if last {
		n[11] = 1
	}
	return n[:]
}
