package vectors_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/xchat-im/xchat/client/filecrypt"
	"github.com/xchat-im/xchat/spec/wire"
)

// readFileVectors decodes a committed JSON vector file into v, refusing
// unknown fields.
func readFileVectors(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

// TestFileVectorsPadding checks wire.PaddedBlobSize against
// files-padding.json.
func TestFileVectorsPadding(t *testing.T) {
	t.Parallel()
	var pv paddingVectors
	readFileVectors(t, filesPaddingPath, &pv)
	if len(pv.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range pv.Vectors {
		if got := wire.PaddedBlobSize(v.Input); got != v.Padded {
			t.Errorf("%s: PaddedBlobSize(%d) = %d, want %d", v.Comment, v.Input, got, v.Padded)
		}
	}
}

// TestFileVectorsChunks checks client/filecrypt against files-chunks.json:
// the blob it makes of each file, chunk by chunk, its hash and length, and
// the plaintext it opens the blob to. The chunk key and nonces, which the
// package does not expose, are checked by sealing each chunk with them.
func TestFileVectorsChunks(t *testing.T) {
	t.Parallel()
	var cv chunkVectors
	readFileVectors(t, filesChunksPath, &cv)
	if len(cv.Vectors) == 0 {
		t.Fatal("no vectors")
	}
	for _, v := range cv.Vectors {
		t.Run(slug(v.Description), func(t *testing.T) {
			key := unhex(t, v.FileKey)
			p := filesPattern(v.Size)
			if hexSum(p) != v.PlaintextSHA256 || (v.Plaintext != "" && !bytes.Equal(p, unhex(t, v.Plaintext))) {
				t.Fatal("plaintext differs from its rule")
			}
			if !bytes.Equal(chunkKey(t, key), unhex(t, v.ChunkKey)) {
				t.Fatal("chunk key differs")
			}
			r, err := filecrypt.NewBlobReader(key, bytes.NewReader(p), v.Size)
			if err != nil {
				t.Fatal(err)
			}
			blob, err := io.ReadAll(r)
			if err != nil {
				t.Fatal(err)
			}
			if int64(len(blob)) != v.BlobLength || r.BlobSize() != v.BlobLength || filecrypt.BlobSize(v.Size) != v.BlobLength {
				t.Fatalf("blob of %d bytes, want %d", len(blob), v.BlobLength)
			}
			if filecrypt.CiphertextSize(v.Size) != v.CiphertextLength || wire.EncryptedFileSize(uint64(v.Size)) != uint64(v.CiphertextLength) {
				t.Fatalf("ciphertext length %d, want %d", filecrypt.CiphertextSize(v.Size), v.CiphertextLength)
			}
			if hex.EncodeToString(r.Sum()) != v.BlobSHA256 || hexSum(blob) != v.BlobSHA256 {
				t.Fatal("blob hash differs")
			}
			if v.Blob != "" && !bytes.Equal(blob, unhex(t, v.Blob)) {
				t.Fatal("blob differs")
			}
			aead, err := chacha20poly1305.New(unhex(t, v.ChunkKey))
			if err != nil {
				t.Fatal(err)
			}
			off := int64(0)
			for _, c := range v.Chunks {
				sealed := blob[off : off+c.Length+16]
				off += c.Length + 16
				if !bytes.Equal(chunkNonce(c.Index, c.Last), unhex(t, c.Nonce)) {
					t.Fatalf("chunk %d: nonce differs", c.Index)
				}
				part := p[c.Index*filecrypt.ChunkSize:][:c.Length]
				if !bytes.Equal(aead.Seal(nil, unhex(t, c.Nonce), part, nil), sealed) {
					t.Fatalf("chunk %d: sealing with the vector's key and nonce differs from filecrypt's", c.Index)
				}
				if hexSum(sealed) != c.SealedSHA256 || hex.EncodeToString(sealed[len(sealed)-16:]) != c.Tag ||
					(c.Sealed != "" && !bytes.Equal(sealed, unhex(t, c.Sealed))) {
					t.Fatalf("chunk %d differs", c.Index)
				}
			}
			if off != v.CiphertextLength || !bytes.Equal(blob[off:], make([]byte, v.BlobLength-off)) {
				t.Fatal("chunks do not add up to the ciphertext, or the padding is not zero")
			}
			var out bytes.Buffer
			w, err := filecrypt.NewBlobWriter(key, unhex(t, v.BlobSHA256), v.Size, &out)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(blob); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			if h := sha256.Sum256(out.Bytes()); hex.EncodeToString(h[:]) != v.PlaintextSHA256 {
				t.Fatal("opened plaintext differs")
			}
		})
	}
	if len(cv.Invalid) == 0 {
		t.Fatal("no invalid blobs")
	}
	for _, v := range cv.Invalid {
		t.Run(slug(v.Description), func(t *testing.T) {
			err := openInvalid(t, v)
			if !errors.Is(err, filecrypt.ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
			if errors.Is(err, filecrypt.ErrHashMismatch) != (v.Failure == "hash") {
				t.Fatalf("failure %s: got %v", v.Failure, err)
			}
		})
	}
}

// openInvalid writes an invalid blob to a BlobWriter, checking that the
// failure comes where the vector says: at a chunk or padding byte (Write),
// or at the end (Close: length and hash).
func openInvalid(t *testing.T, v invalidBlob) error {
	w, err := filecrypt.NewBlobWriter(unhex(t, v.FileKey), unhex(t, v.Hash), v.Size, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	blob := unhex(t, v.Blob)
	_, werr := w.Write(blob)
	cerr := w.Close()
	atWrite := v.Failure == "authentication" || v.Failure == "padding" || (v.Failure == "length" && int64(len(blob)) > filecrypt.BlobSize(v.Size))
	if atWrite != (werr != nil) {
		t.Fatalf("failure %s: Write gave %v", v.Failure, werr)
	}
	if werr != nil && cerr != werr {
		t.Fatalf("Close after a failed Write gave %v, not %v", cerr, werr)
	}
	return cerr
}
