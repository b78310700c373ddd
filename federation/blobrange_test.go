package federation

import (
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

// An answer to fed-blob-get is passed to a client only when it fits the
// range asked.
func TestCheckBlobRange(t *testing.T) {
	t.Parallel()
	size := wire.PaddedBlobSize(wire.BlobPartSize + 100)
	tail := size - wire.BlobPartSize
	for _, c := range []struct {
		name        string
		data, size  uint64
		off, length uint64
		ok          bool
	}{
		{"a whole part", wire.BlobPartSize, size, 0, wire.BlobPartSize, true},
		{"the short tail", tail, size, wire.BlobPartSize, wire.BlobPartSize, true},
		{"one byte", 1, size, 7, 1, true},
		{"more than asked", 11, size, 0, 10, false},
		{"short before the end", 9, size, 0, 10, false},
		{"nothing", 0, size, 0, 10, false},
		{"past the tail", tail + 1, size, wire.BlobPartSize, wire.BlobPartSize, false},
		{"offset at the end", 0, size, size, 10, false},
		{"size not a bucket", 10, size + 1, 0, 10, false},
		{"size above the largest blob", 10, wire.MaxBlobSize + 1, 0, 10, false},
	} {
		ok := &wire.BlobGetOK{Data: make([]byte, c.data), Size: c.size}
		if err := checkBlobRange(ok, c.off, c.length); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok %v", c.name, err, c.ok)
		}
	}
}

// A peer's answer of any shape is judged without a panic, and an accepted
// one holds exactly the bytes of the range inside the blob.
func FuzzCheckBlobRange(f *testing.F) {
	f.Add(uint64(100), uint64(wire.MinBlobSize), uint64(0), uint64(100))
	f.Add(uint64(41), uint64(wire.MinBlobSize), uint64(500), uint64(100))
	f.Add(uint64(0), uint64(0), uint64(0), uint64(0))
	f.Add(uint64(1<<20), uint64(1<<62), uint64(1<<63), uint64(1<<19))
	f.Fuzz(func(t *testing.T, n, size, off, length uint64) {
		n %= wire.BlobPartSize + 2
		ok := &wire.BlobGetOK{Data: make([]byte, n), Size: size}
		if checkBlobRange(ok, off, length) != nil {
			return
		}
		if off >= size || off+n > size || n > length || (off+n < size && n != length) || wire.PaddedBlobSize(size) != size {
			t.Fatalf("accepted %d bytes at %d of a blob of %d for a range of %d", n, off, size, length)
		}
	})
}
