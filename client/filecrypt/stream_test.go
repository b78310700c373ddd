package filecrypt_test

import (
	"bytes"
	"io"
	"runtime"
	"testing"

	"github.com/xchat-im/xchat/client/filecrypt"
)

// pattern is an endless deterministic plaintext: a block of 4093 bytes
// (not a divisor of any chunk or part size) over and over.
type pattern struct {
	block []byte
	off   int
}

func newPattern() *pattern {
	p := &pattern{block: make([]byte, 4093)}
	for i := range p.block {
		p.block[i] = byte(i * 13)
	}
	return p
}

func (p *pattern) Read(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		c := copy(b[n:], p.block[p.off:])
		n += c
		p.off = (p.off + c) % len(p.block)
	}
	return n, nil
}

// TestConstantMemory streams a 256 MiB file through encryption, and
// through encryption piped into decryption, and checks that the bytes
// allocated do not grow with the file: no more than for a 1 MiB file, give
// or take 64 KiB, and under 1 MiB in all.
func TestConstantMemory(t *testing.T) {
	// Not parallel: the heap statistics are the whole process's.
	if testing.Short() {
		t.Skip("streams 256 MiB")
	}
	key := testKey()
	allocated := func(f func()) int64 {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		f()
		runtime.ReadMemStats(&after)
		return int64(after.TotalAlloc - before.TotalAlloc)
	}
	encrypt := func(size int64) (hash []byte) {
		r, err := filecrypt.NewBlobReader(key, io.LimitReader(newPattern(), size), size)
		if err != nil {
			t.Fatal(err)
		}
		n, err := io.Copy(io.Discard, r)
		if err != nil || n != filecrypt.BlobSize(size) {
			t.Fatalf("encrypted %d bytes: %v", n, err)
		}
		return r.Sum()
	}
	roundTrip := func(size int64, hash []byte) {
		r, err := filecrypt.NewBlobReader(key, io.LimitReader(newPattern(), size), size)
		if err != nil {
			t.Fatal(err)
		}
		out := &counter{p: newPattern(), same: true}
		w, err := filecrypt.NewBlobWriter(key, hash, size, out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(w, r); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if out.n != size || !out.same {
			t.Fatalf("decrypted %d of %d bytes, same as the plaintext: %v", out.n, size, out.same)
		}
	}
	const small, large = 1 << 20, 256 << 20
	var smallHash, largeHash []byte
	encSmall := allocated(func() { smallHash = encrypt(small) })
	encLarge := allocated(func() { largeHash = encrypt(large) })
	rtSmall := allocated(func() { roundTrip(small, smallHash) })
	rtLarge := allocated(func() { roundTrip(large, largeHash) })
	t.Logf("bytes allocated: encrypting 1 MiB %d, 256 MiB %d; encrypting and decrypting 1 MiB %d, 256 MiB %d",
		encSmall, encLarge, rtSmall, rtLarge)
	if encLarge > encSmall+64<<10 || encLarge > 1<<20 {
		t.Errorf("encrypting 256 MiB allocated %d bytes, 1 MiB %d", encLarge, encSmall)
	}
	if rtLarge > rtSmall+64<<10 || rtLarge > 1<<20 {
		t.Errorf("encrypting and decrypting 256 MiB allocated %d bytes, 1 MiB %d", rtLarge, rtSmall)
	}
}

// counter counts the bytes written to it and checks them against the
// pattern; same starts true.
type counter struct {
	n    int64
	p    *pattern
	buf  [filecrypt.ChunkSize]byte
	same bool
}

func (c *counter) Write(b []byte) (int, error) {
	n := len(b)
	for len(b) > 0 {
		k := min(len(b), len(c.buf))
		c.p.Read(c.buf[:k])
		c.same = c.same && bytes.Equal(c.buf[:k], b[:k])
		c.n += int64(k)
		b = b[k:]
	}
	return n, nil
}

func benchSize() int64 { return 16 << 20 }

func BenchmarkEncrypt(b *testing.B) {
	key := testKey()
	size := benchSize()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		r, err := filecrypt.NewBlobReader(key, io.LimitReader(newPattern(), size), size)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	key := testKey()
	size := benchSize()
	r, err := filecrypt.NewBlobReader(key, io.LimitReader(newPattern(), size), size)
	if err != nil {
		b.Fatal(err)
	}
	var blob bytes.Buffer
	if _, err := io.Copy(&blob, r); err != nil {
		b.Fatal(err)
	}
	hash := r.Sum()
	b.SetBytes(size)
	b.ReportAllocs()
	for b.Loop() {
		w, err := filecrypt.NewBlobWriter(key, hash, size, io.Discard)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(w, bytes.NewReader(blob.Bytes())); err != nil {
			b.Fatal(err)
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
	}
}
