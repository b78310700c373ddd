package filecrypt_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"

	"github.com/xchat-im/xchat/client/filecrypt"
)

// FuzzBlobWriter writes arbitrary bytes as the blob of a file of an
// arbitrary small size, in two pieces, with the hash of those bytes or a
// fixed one. It must never panic; it fails only with ErrCorrupt (a hash
// mismatch included), writes nothing but whole chunks that authenticated,
// and succeeds only for a blob of the right length whose hash was given.
func FuzzBlobWriter(f *testing.F) {
	key := testKey()
	for _, n := range []int64{0, 1, 100, 600, filecrypt.ChunkSize, filecrypt.ChunkSize + 1} {
		blob, _ := encrypt(f, key, plaintext(n))
		f.Add(blob, uint32(n), uint16(len(blob)/2), true)
		f.Add(blob[:len(blob)-1], uint32(n), uint16(7), true)
		f.Add(append(bytes.Clone(blob), 0), uint32(n), uint16(0), true)
		f.Add(blob, uint32(n), uint16(0), false)
		damaged := bytes.Clone(blob)
		damaged[len(damaged)/3] ^= 0x40
		f.Add(damaged, uint32(n), uint16(100), true)
	}
	f.Add([]byte{}, uint32(0), uint16(0), true)
	f.Add(make([]byte, 541), uint32(0), uint16(0), true)
	f.Fuzz(func(t *testing.T, blob []byte, n uint32, split uint16, ownHash bool) {
		size := int64(n % (2*filecrypt.ChunkSize + 100))
		hash := make([]byte, filecrypt.HashSize)
		if ownHash {
			h := sha256.Sum256(blob)
			hash = h[:]
		}
		var out bytes.Buffer
		w, err := filecrypt.NewBlobWriter(key, hash, size, &out)
		if err != nil {
			t.Fatal(err)
		}
		s := min(int(split), len(blob))
		_, err = w.Write(blob[:s])
		if err == nil {
			_, err = w.Write(blob[s:])
		}
		if err == nil {
			err = w.Close()
		}
		if err != nil && !errors.Is(err, filecrypt.ErrCorrupt) {
			t.Fatalf("error %v does not wrap ErrCorrupt", err)
		}
		if got := int64(out.Len()); got != w.Written() || (got%filecrypt.ChunkSize != 0 && got != size) || got > size {
			t.Fatalf("wrote %d bytes (Written %d) of a %d-byte file", got, w.Written(), size)
		}
		if err == nil && (int64(len(blob)) != filecrypt.BlobSize(size) || !ownHash || int64(out.Len()) != size) {
			t.Fatalf("accepted a blob of %d bytes for a file of %d", len(blob), size)
		}
	})
}
