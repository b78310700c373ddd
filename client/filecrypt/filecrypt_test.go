package filecrypt_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"testing"

	"github.com/xchat-im/xchat/client/filecrypt"
	"github.com/xchat-im/xchat/spec/wire"
)

// plaintext returns n deterministic bytes.
func plaintext(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i>>8)
	}
	return b
}

func testKey() []byte {
	k := make([]byte, filecrypt.KeySize)
	for i := range k {
		k[i] = byte(0x40 + i)
	}
	return k
}

// encrypt returns the blob of p under key and its hash, reading the
// BlobReader in odd-sized pieces.
func encrypt(t testing.TB, key, p []byte) (blob, hash []byte) {
	t.Helper()
	r, err := filecrypt.NewBlobReader(key, bytes.NewReader(p), int64(len(p)))
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	buf := make([]byte, 1000)
	for {
		n, err := r.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if int64(out.Len()) != r.BlobSize() {
		t.Fatalf("blob of %d bytes, BlobSize %d", out.Len(), r.BlobSize())
	}
	return out.Bytes(), r.Sum()
}

// decrypt writes blob to a BlobWriter in pieces of step bytes and returns
// the plaintext written and the first error.
func decrypt(key, hash []byte, size int64, blob []byte, step int) ([]byte, error) {
	var out bytes.Buffer
	w, err := filecrypt.NewBlobWriter(key, hash, size, &out)
	if err != nil {
		return nil, err
	}
	for len(blob) > 0 {
		c := min(step, len(blob))
		n, err := w.Write(blob[:c])
		if err != nil {
			return out.Bytes(), err
		}
		if n != c {
			return out.Bytes(), io.ErrShortWrite
		}
		blob = blob[c:]
	}
	return out.Bytes(), w.Close()
}

// sizes are the plaintext sizes the round trips cover: chunk edges, and
// sizes whose ciphertext is at, just below and just above a padding
// bucket.
func sizes() []int64 {
	s := []int64{0, 1, 2, 100, 524, 525, 526, 65535, 65536, 65537, 2*65536 - 1, 2 * 65536, 3*65536 + 5, 10*65536 + 12345}
	for _, ct := range []uint64{541, 542, 600, 70000, 200000, 700000} {
		b := wire.PaddedBlobSize(ct)
		for _, c := range []uint64{b - 1, b, b + 1} {
			// The plaintext size whose ciphertext is closest to c from below.
			n := int64(c) - int64(c+filecrypt.SealedChunkSize-1)/filecrypt.SealedChunkSize*16
			if n >= 0 {
				s = append(s, n)
			}
		}
	}
	return s
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	key := testKey()
	for _, n := range sizes() {
		p := plaintext(n)
		blob, hash := encrypt(t, key, p)
		if want := filecrypt.BlobSize(n); int64(len(blob)) != want {
			t.Fatalf("size %d: blob of %d bytes, want %d", n, len(blob), want)
		}
		if got := wire.PaddedBlobSize(uint64(len(blob))); got != uint64(len(blob)) {
			t.Fatalf("size %d: blob of %d bytes is not a padding bucket", n, len(blob))
		}
		if h := sha256.Sum256(blob); !bytes.Equal(h[:], hash) {
			t.Fatalf("size %d: Sum %x, want %x", n, hash, h)
		}
		ct := filecrypt.CiphertextSize(n)
		if !bytes.Equal(blob[ct:], make([]byte, len(blob)-int(ct))) {
			t.Fatalf("size %d: padding not zero", n)
		}
		for _, step := range []int{1 << 20, 4096, 65552, 777} {
			if n > 200000 && step < 4096 {
				continue
			}
			got, err := decrypt(key, hash, n, blob, step)
			if err != nil {
				t.Fatalf("size %d, step %d: %v", n, step, err)
			}
			if !bytes.Equal(got, p) {
				t.Fatalf("size %d, step %d: plaintext differs", n, step)
			}
		}
	}
}

func TestBlobOffset(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ plain, blob int64 }{
		{-1, -1}, {0, 0}, {1, 1}, {65535, 65535}, {65536, 65552}, {65537, 65553}, {3 * 65536, 3 * 65552},
	} {
		if got := filecrypt.BlobOffset(c.plain); got != c.blob {
			t.Errorf("BlobOffset(%d) = %d, want %d", c.plain, got, c.blob)
		}
	}
	if filecrypt.BlobSize(-1) != 0 || filecrypt.BlobSize(wire.MaxFileSize+1) != 0 || filecrypt.CiphertextSize(-1) != 0 {
		t.Error("size out of range not 0")
	}
	if got := filecrypt.BlobSize(wire.MaxFileSize); got <= wire.MaxFileSize || got > wire.MaxBlobSize {
		t.Errorf("BlobSize(MaxFileSize) = %d", got)
	}
	if got := filecrypt.BlobSize(0); got != wire.MinBlobSize {
		t.Errorf("BlobSize(0) = %d", got)
	}
}

func TestNewKey(t *testing.T) {
	t.Parallel()
	a, err := filecrypt.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	b, err := filecrypt.NewKey()
	if err != nil {
		t.Fatal(err)
	}
	if len(a) != filecrypt.KeySize || bytes.Equal(a, b) {
		t.Fatalf("keys %x, %x", a, b)
	}
}

func TestBadArguments(t *testing.T) {
	t.Parallel()
	key, hash := testKey(), make([]byte, filecrypt.HashSize)
	if _, err := filecrypt.NewBlobReader(key[:31], bytes.NewReader(nil), 0); err == nil {
		t.Error("short key accepted")
	}
	if _, err := filecrypt.NewBlobReader(key, bytes.NewReader(nil), -1); err == nil {
		t.Error("negative size accepted")
	}
	if _, err := filecrypt.NewBlobReader(key, bytes.NewReader(nil), wire.MaxFileSize+1); err == nil {
		t.Error("size above the limit accepted")
	}
	if _, err := filecrypt.NewBlobWriter(key, hash[:31], 0, io.Discard); err == nil {
		t.Error("short hash accepted")
	}
	if _, err := filecrypt.NewBlobWriter(key[:1], hash, 0, io.Discard); err == nil {
		t.Error("short key accepted")
	}
	for _, n := range []int64{-1, 1, 65535, 65537, 200001} {
		if _, _, err := filecrypt.ResumeBlobWriter(key, hash, 200000, io.Discard, bytes.NewReader(plaintext(200000)), n); err == nil {
			t.Errorf("resume after %d bytes accepted", n)
		}
	}
}

// A plaintext stream of another length than declared fails with ErrSize.
func TestReaderSize(t *testing.T) {
	t.Parallel()
	key := testKey()
	for _, c := range []struct{ have, size int64 }{
		{0, 1}, {1, 0}, {65535, 65536}, {65537, 65536}, {65536, 65537}, {200000, 131072}, {131072, 200000},
	} {
		r, err := filecrypt.NewBlobReader(key, bytes.NewReader(plaintext(c.have)), c.size)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, r); !errors.Is(err, filecrypt.ErrSize) {
			t.Errorf("%d bytes as %d: %v, want ErrSize", c.have, c.size, err)
		}
		if r.Sum() != nil {
			t.Errorf("%d bytes as %d: Sum after a failure", c.have, c.size)
		}
		if _, err2 := r.Read(make([]byte, 10)); !errors.Is(err2, filecrypt.ErrSize) {
			t.Errorf("error not sticky: %v", err2)
		}
	}
}

// A plaintext stream that fails passes its error on.
func TestReaderSourceError(t *testing.T) {
	t.Parallel()
	boom := errors.New("boom")
	r, err := filecrypt.NewBlobReader(testKey(), io.MultiReader(bytes.NewReader(plaintext(70000)), errReader{boom}), 100000)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, r); !errors.Is(err, boom) || errors.Is(err, filecrypt.ErrSize) {
		t.Fatalf("got %v, want boom", err)
	}
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// Encryption is deterministic given the key: an interrupted upload resumes
// from a new BlobReader.
func TestReaderDeterministic(t *testing.T) {
	t.Parallel()
	p := plaintext(150000)
	a, ha := encrypt(t, testKey(), p)
	b, hb := encrypt(t, testKey(), p)
	if !bytes.Equal(a, b) || !bytes.Equal(ha, hb) {
		t.Fatal("two encryptions differ")
	}
	other := testKey()
	other[0] ^= 1
	c, _ := encrypt(t, other, p)
	if bytes.Equal(a[:100], c[:100]) {
		t.Fatal("another key gives the same blob")
	}
}

// A download interrupted anywhere resumes from the plaintext written so
// far and gives the whole file.
func TestResume(t *testing.T) {
	t.Parallel()
	key := testKey()
	for _, n := range []int64{0, 1, 65536, 65537, 3*65536 + 100, 4 * 65536} {
		p := plaintext(n)
		blob, hash := encrypt(t, key, p)
		for _, cut := range []int{0, 1, 65551, 65552, 65553, 2 * 65552, int(filecrypt.CiphertextSize(n)), len(blob) - 1, len(blob)} {
			if cut > len(blob) {
				continue
			}
			var first bytes.Buffer
			w, err := filecrypt.NewBlobWriter(key, hash, n, &first)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := w.Write(blob[:cut]); err != nil {
				t.Fatal(err)
			}
			kept := w.Written()
			if int64(first.Len()) != kept {
				t.Fatalf("Written %d, wrote %d", kept, first.Len())
			}
			var rest bytes.Buffer
			w2, off, err := filecrypt.ResumeBlobWriter(key, hash, n, &rest, bytes.NewReader(first.Bytes()), kept)
			if err != nil {
				t.Fatalf("size %d, cut %d: %v", n, cut, err)
			}
			if off > int64(cut) || w2.Offset() != off || w2.Written() != kept {
				t.Fatalf("size %d, cut %d (kept %d): resume at %d", n, cut, kept, off)
			}
			if _, err := w2.Write(blob[off:]); err != nil {
				t.Fatalf("size %d, cut %d: %v", n, cut, err)
			}
			if err := w2.Close(); err != nil {
				t.Fatalf("size %d, cut %d: %v", n, cut, err)
			}
			if got := append(first.Bytes(), rest.Bytes()...); !bytes.Equal(got, p) {
				t.Fatalf("size %d, cut %d: plaintext differs", n, cut)
			}
		}
	}
}

// A damaged kept prefix shows up as a hash mismatch; a short one as
// ErrSize.
func TestResumeBadPrefix(t *testing.T) {
	t.Parallel()
	key := testKey()
	p := plaintext(200000)
	blob, hash := encrypt(t, key, p)
	bad := bytes.Clone(p[:65536])
	bad[10] ^= 1
	w, off, err := filecrypt.ResumeBlobWriter(key, hash, 200000, io.Discard, bytes.NewReader(bad), 65536)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(blob[off:]); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); !errors.Is(err, filecrypt.ErrHashMismatch) {
		t.Fatalf("got %v, want ErrHashMismatch", err)
	}
	if _, _, err := filecrypt.ResumeBlobWriter(key, hash, 200000, io.Discard, bytes.NewReader(p[:100000]), 131072); !errors.Is(err, filecrypt.ErrSize) {
		t.Fatalf("got %v, want ErrSize", err)
	}
}
