package filecrypt_test

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/xchat-im/xchat/client/filecrypt"
	"github.com/xchat-im/xchat/spec/wire"
)

// sealChunk seals one chunk the way spec/11-files.md says, independently
// of the package, for blobs the package would never make.
func sealChunk(t *testing.T, key []byte, i uint64, last bool, p []byte) []byte {
	t.Helper()
	ck, err := hkdf.Key(sha256.New, key, nil, wire.ContextFileKey, 32)
	if err != nil {
		t.Fatal(err)
	}
	a, err := chacha20poly1305.New(ck)
	if err != nil {
		t.Fatal(err)
	}
	var nonce [12]byte
	binary.BigEndian.PutUint64(nonce[3:], i)
	if last {
		nonce[11] = 1
	}
	return a.Seal(nil, nonce[:], p, nil)
}

// padded returns ct padded to its bucket with zeros, and its hash.
func padded(ct []byte) ([]byte, []byte) {
	b := make([]byte, wire.PaddedBlobSize(uint64(len(ct))))
	copy(b, ct)
	h := sha256.Sum256(b)
	return b, h[:]
}

// TestCorrupt checks that every kind of damage to a blob fails with the
// right error and that the plaintext written is only whole chunks that
// authenticated before the damage.
func TestCorrupt(t *testing.T) {
	t.Parallel()
	key := testKey()
	const size = 2*filecrypt.ChunkSize + 1000
	p := plaintext(size)
	blob, hash := encrypt(t, key, p)
	ct := int(filecrypt.CiphertextSize(size))
	const sc = filecrypt.SealedChunkSize
	if len(blob) <= ct {
		t.Fatal("no padding to damage")
	}
	flip := func(off int) []byte {
		b := bytes.Clone(blob)
		b[off] ^= 0x01
		return b
	}
	swapped := bytes.Clone(blob)
	copy(swapped[:sc], blob[sc:2*sc])
	copy(swapped[sc:2*sc], blob[:sc])

	wrongKey := testKey()
	wrongKey[31] ^= 0x80
	wrongHash := bytes.Clone(hash)
	wrongHash[0] ^= 1

	// A first chunk sealed as the last one: the file cut after chunk 0,
	// with the flag moved there.
	cut, cutHash := padded(sealChunk(t, key, 0, true, p[:filecrypt.ChunkSize]))
	// The last chunk sealed without the flag.
	var noFlag []byte
	noFlag = append(noFlag, blob[:2*sc]...)
	noFlag = append(noFlag, sealChunk(t, key, 2, false, p[2*filecrypt.ChunkSize:])...)
	noFlag, noFlagHash := padded(noFlag)
	// A blob with padding made by a key holder: chunks fine, hash of the
	// blob given, padding not zero.
	dirtyPad := flip(len(blob) - 1)
	dirtyHash := sha256.Sum256(dirtyPad)

	for _, c := range []struct {
		name   string
		key    []byte
		hash   []byte
		blob   []byte
		chunks int    // chunks that authenticate before the damage
		hashed bool   // the failure is a hash mismatch
		msg    string // a part of the error message
	}{
		{"flip chunk 0 data", key, hash, flip(10), 0, false, "chunk 0"},
		{"flip chunk 0 tag", key, hash, flip(sc - 1), 0, false, "chunk 0"},
		{"flip chunk 1 data", key, hash, flip(sc + 5), 1, false, "chunk 1 of 3"},
		{"flip chunk 1 tag", key, hash, flip(2*sc - 16), 1, false, "chunk 1 of 3"},
		{"flip last chunk data", key, hash, flip(2 * sc), 2, false, "chunk 2 of 3"},
		{"flip last chunk tag", key, hash, flip(ct - 1), 2, false, "chunk 2 of 3"},
		{"flip first padding byte", key, hash, flip(ct), 3, false, "padding"},
		{"flip last padding byte", key, hash, flip(len(blob) - 1), 3, false, "padding"},
		{"padding not zero, hash of the blob", key, dirtyHash[:], dirtyPad, 3, false, "padding"},
		{"truncate to nothing", key, hash, nil, 0, false, "truncated"},
		{"truncate in chunk 0", key, hash, blob[:100], 0, false, "truncated"},
		{"truncate before chunk 0 tag end", key, hash, blob[:sc-1], 0, false, "truncated"},
		{"truncate after chunk 0", key, hash, blob[:sc], 1, false, "truncated"},
		{"truncate in last chunk", key, hash, blob[:2*sc+10], 2, false, "truncated"},
		{"truncate after ciphertext", key, hash, blob[:ct], 3, false, "truncated"},
		{"truncate by one byte", key, hash, blob[:len(blob)-1], 3, false, "truncated"},
		{"swap chunks 0 and 1", key, hash, swapped, 0, false, "chunk 0"},
		{"append a byte", key, hash, append(bytes.Clone(blob), 0), 3, false, "beyond"},
		{"append a chunk", key, hash, append(bytes.Clone(blob), blob[:sc]...), 3, false, "beyond"},
		{"wrong key", wrongKey, hash, blob, 0, false, "wrong file key"},
		{"wrong hash", key, wrongHash, blob, 3, true, "hash"},
		{"last flag on chunk 0 of a longer file", key, cutHash, cut, 0, false, "chunk 0"},
		{"last chunk without the last flag", key, noFlagHash, noFlag, 2, false, "chunk 2 of 3"},
	} {
		for _, step := range []int{1 << 20, 1000, sc} {
			got, err := decrypt(c.key, c.hash, size, c.blob, step)
			if !errors.Is(err, filecrypt.ErrCorrupt) {
				t.Errorf("%s (step %d): %v, want ErrCorrupt", c.name, step, err)
				continue
			}
			if errors.Is(err, filecrypt.ErrHashMismatch) != c.hashed {
				t.Errorf("%s (step %d): %v: hash mismatch %v, want %v", c.name, step, err, !c.hashed, c.hashed)
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Errorf("%s (step %d): %q does not say %q", c.name, step, err, c.msg)
			}
			want := p[:min(c.chunks*filecrypt.ChunkSize, size)]
			if !bytes.Equal(got, want) {
				t.Errorf("%s (step %d): wrote %d bytes, want the %d of %d verified chunks", c.name, step, len(got), len(want), c.chunks)
			}
		}
	}
}

// An empty file is one empty last chunk; an empty blob of another size or
// an empty chunk without the flag is corrupt.
func TestCorruptEmpty(t *testing.T) {
	t.Parallel()
	key := testKey()
	good, goodHash := padded(sealChunk(t, key, 0, true, nil))
	if blob, hash := encrypt(t, key, nil); !bytes.Equal(blob, good) || !bytes.Equal(hash, goodHash) {
		t.Fatal("the empty file's blob differs from the spec's")
	}
	if _, err := decrypt(key, goodHash, 0, good, 100); err != nil {
		t.Fatal(err)
	}
	bad, badHash := padded(sealChunk(t, key, 0, false, nil))
	if _, err := decrypt(key, badHash, 0, bad, 100); !errors.Is(err, filecrypt.ErrCorrupt) {
		t.Fatalf("empty chunk without the flag: %v", err)
	}
	// The blob of a 1-byte file given as an empty one: the sizes differ,
	// so chunk 0 is cut at 16 bytes and fails.
	one, oneHash := encrypt(t, key, []byte{7})
	if _, err := decrypt(key, oneHash, 0, one, 1000); !errors.Is(err, filecrypt.ErrCorrupt) {
		t.Fatalf("1-byte blob as an empty file: %v", err)
	}
}

// Errors are sticky and Close does not accept a write after it.
func TestWriterSticky(t *testing.T) {
	t.Parallel()
	key := testKey()
	blob, hash := encrypt(t, key, plaintext(100))
	var out bytes.Buffer
	w, err := filecrypt.NewBlobWriter(key, hash, 100, &out)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(blob)
	bad[0] ^= 1
	if _, err := w.Write(bad); !errors.Is(err, filecrypt.ErrCorrupt) {
		t.Fatal(err)
	}
	if n, err := w.Write(blob); n != 0 || !errors.Is(err, filecrypt.ErrCorrupt) {
		t.Fatalf("write after a failure: %d, %v", n, err)
	}
	if err := w.Close(); !errors.Is(err, filecrypt.ErrCorrupt) {
		t.Fatalf("close after a failure: %v", err)
	}
	if out.Len() != 0 {
		t.Fatalf("wrote %d bytes", out.Len())
	}

	w, err = filecrypt.NewBlobWriter(key, hash, 100, &out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(blob); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatalf("second close: %v", err)
	}
	if _, err := w.Write([]byte{0}); err == nil || errors.Is(err, filecrypt.ErrCorrupt) {
		t.Fatalf("write after close: %v", err)
	}
}

// An error of the output comes back as itself, not as corruption.
func TestWriterOutputError(t *testing.T) {
	t.Parallel()
	key := testKey()
	blob, hash := encrypt(t, key, plaintext(100))
	boom := errors.New("disk full")
	w, err := filecrypt.NewBlobWriter(key, hash, 100, failWriter{boom})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(blob); !errors.Is(err, boom) || errors.Is(err, filecrypt.ErrCorrupt) {
		t.Fatalf("got %v, want the output's error", err)
	}
}

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }
