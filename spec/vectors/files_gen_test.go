package vectors_test

// The generator of the file vectors of spec/11-files.md: files-padding.json
// (the padding function, section 11.2) and files-chunks.json (chunk key,
// nonces, sealed chunks, blob hash and length of small files, sections
// 11.1 and 11.2). They are JSON tables rather than one .txt file per
// vector: a padding vector is two numbers, and a file's vector is a list
// of chunks. Like the other vectors they are written only when asked,
//
//	XCHAT_GEN_VECTORS=1 go test -run TestGenerateVectors ./spec/vectors/
//
// (TestGenerateVectorsFiles matches that pattern), and
// TestVectorsUpToDateFiles checks the committed files against the
// generator; files_test.go checks client/filecrypt and wire.PaddedBlobSize
// against them.
//
// The generator computes every value from the text of the specification,
// with the primitives themselves (math/big, HKDF, ChaCha20-Poly1305,
// SHA-256), and checks that wire.PaddedBlobSize and client/filecrypt
// reach the same values.

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"math/big"
	"os"
	"strconv"
	"testing"

	"golang.org/x/crypto/chacha20poly1305"

	"github.com/xchat-im/xchat/client/filecrypt"
	"github.com/xchat-im/xchat/spec/wire"
)

const (
	filesPaddingPath = "files-padding.json"
	filesChunksPath  = "files-chunks.json"
	filesGenerator   = "spec/vectors/files_gen_test.go"
)

// paddingVectors is files-padding.json.
type paddingVectors struct {
	Description string          `json:"description"`
	Spec        string          `json:"spec"`
	Generator   string          `json:"generator"`
	Format      []string        `json:"format"`
	Vectors     []paddingVector `json:"vectors"`
}

// paddingVector is one input of the padding function and its result.
type paddingVector struct {
	Comment string `json:"comment"`
	Input   uint64 `json:"input"`
	Padded  uint64 `json:"padded"`
}

// chunkVectors is files-chunks.json.
type chunkVectors struct {
	Description string        `json:"description"`
	Spec        string        `json:"spec"`
	Generator   string        `json:"generator"`
	Format      []string      `json:"format"`
	Vectors     []chunkVector `json:"vectors"`
	Invalid     []invalidBlob `json:"invalid"`
}

// invalidBlob is a blob a receiver must refuse for the file reference
// (key, size and hash) given.
type invalidBlob struct {
	Description string `json:"description"`
	FileKey     string `json:"file-key"`
	Size        int64  `json:"size"`
	Hash        string `json:"hash"`
	Blob        string `json:"blob"`
	Failure     string `json:"failure"`
}

// chunkVector is the encryption of one file.
type chunkVector struct {
	Description      string       `json:"description"`
	FileKey          string       `json:"file-key"`
	ChunkKey         string       `json:"chunk-key"`
	Size             int64        `json:"size"`
	Plaintext        string       `json:"plaintext,omitempty"`
	PlaintextSHA256  string       `json:"plaintext-sha256"`
	Chunks           []chunkEntry `json:"chunks"`
	CiphertextLength int64        `json:"ciphertext-length"`
	BlobLength       int64        `json:"blob-length"`
	Blob             string       `json:"blob,omitempty"`
	BlobSHA256       string       `json:"blob-sha256"`
}

// chunkEntry is one sealed chunk of a file.
type chunkEntry struct {
	Index        int64  `json:"index"`
	Last         bool   `json:"last"`
	Nonce        string `json:"nonce"`
	Length       int64  `json:"plaintext-length"`
	Sealed       string `json:"sealed,omitempty"`
	SealedSHA256 string `json:"sealed-sha256"`
	Tag          string `json:"tag"`
}

// Files and chunks up to this size are given in full in the vectors; larger
// ones by their SHA-256 (and the plaintext by its rule).
const filesInline = 1024

// filesPattern returns the plaintext of the chunk vectors of a file of n
// bytes: byte i is i mod 251.
func filesPattern(n int64) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i % 251)
	}
	return b
}

// specPadded is the padding function as section 11.2 states it: for
// n > 0, max(541, floor(1.05^k)) for the smallest k with 21^k ≥ n·20^k,
// and no padded size (0) when n is 0 or that exceeds 5 GiB.
func specPadded(n uint64) uint64 {
	if n == 0 {
		return 0
	}
	num, den := big.NewInt(1), big.NewInt(1)
	nn := new(big.Int).SetUint64(n)
	for new(big.Int).Mul(nn, den).Cmp(num) > 0 {
		num.Mul(num, big.NewInt(21))
		den.Mul(den, big.NewInt(20))
	}
	b := new(big.Int).Quo(num, den).Uint64()
	if b > wire.MaxBlobSize {
		return 0
	}
	return max(b, wire.MinBlobSize)
}

// specBuckets returns floor(1.05^k) for k = 0, 1, ... up to the first value
// above the 5 GiB limit.
func specBuckets() []uint64 {
	var v []uint64
	num, den := big.NewInt(1), big.NewInt(1)
	for {
		b := new(big.Int).Quo(num, den).Uint64()
		v = append(v, b)
		if b > wire.MaxBlobSize {
			return v
		}
		num.Mul(num, big.NewInt(21))
		den.Mul(den, big.NewInt(20))
	}
}

func makePaddingVectors(t *testing.T) *paddingVectors {
	pv := &paddingVectors{
		Description: "xchat/1 file blob padding: the padded size of a blob whose content (the ciphertext) is `input` bytes",
		Spec:        "11-files.md 11.2",
		Generator:   filesGenerator,
		Format: []string{
			"vectors: a list of {comment, input, padded}; input and padded are byte counts (decimal JSON numbers, at most 2^53).",
			"padded = max(541, floor(1.05^k)) for the smallest k with 21^k >= input * 20^k, in exact integer arithmetic;",
			"padded = 0 means there is no padded size: input is 0, or its bucket is above the 5 GiB limit (5368709120 bytes).",
			"comment names the bucket (k) an input is at or next to.",
		},
	}
	add := func(comment string, n uint64) {
		p := specPadded(n)
		if got := wire.PaddedBlobSize(n); got != p {
			t.Fatalf("wire.PaddedBlobSize(%d) = %d, the spec's %d", n, got, p)
		}
		pv.Vectors = append(pv.Vectors, paddingVector{Comment: comment, Input: n, Padded: p})
	}
	add("empty content: no blob", 0)
	for _, n := range []uint64{1, 2, 16, 100, 514, 515, 516} {
		add("below the minimum blob size 541", n)
	}
	buckets := specBuckets()
	top := len(buckets) - 1 // the first bucket above the limit
	for k, b := range buckets {
		if b < wire.MinBlobSize {
			continue
		}
		if b == wire.MinBlobSize || k <= 131 || k%10 == 0 || k >= top-3 {
			what := "bucket k=" + strconv.Itoa(k)
			switch k {
			case top:
				what += ", the first above the 5 GiB limit"
			case top - 1:
				what += ", the largest within the 5 GiB limit"
			}
			if b == wire.MinBlobSize {
				what += ", the minimum blob size"
			}
			add(what+" minus 1", b-1)
			add(what, b)
			add(what+" plus 1", b+1)
		}
	}
	add("the 5 GiB limit itself (above the largest bucket)", wire.MaxBlobSize)
	add("one byte above the 5 GiB limit", wire.MaxBlobSize+1)
	add("2^40", 1<<40)
	return pv
}

// chunkKey derives the chunk key of section 11.1.
func chunkKey(t *testing.T, fileKey []byte) []byte {
	k, err := hkdf.Key(sha256.New, fileKey, nil, "xchat/1 file", 32)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// chunkNonce is the nonce of chunk i: i as 11 bytes big-endian, then 0x01
// for the last chunk, 0x00 otherwise.
func chunkNonce(i int64, last bool) []byte {
	n := make([]byte, 12)
	binary.BigEndian.PutUint64(n[3:11], uint64(i))
	if last {
		n[11] = 1
	}
	return n
}

func hexSum(b []byte) string {
	h := sha256.Sum256(b)
	return hex.EncodeToString(h[:])
}

func makeChunkVectors(t *testing.T) *chunkVectors {
	cv := &chunkVectors{
		Description: "xchat/1 file encryption: chunk key, nonces, sealed chunks, padded blob and its hash of small files",
		Spec:        "11-files.md 11.1, 11.2",
		Generator:   filesGenerator,
		Format: []string{
			"Bytes are lowercase hex strings, lengths decimal JSON numbers. Each vector is one file:",
			"file-key (32 bytes) -> chunk-key = HKDF-SHA256(IKM = file-key, salt = empty, info = \"xchat/1 file\", L = 32).",
			"size: plaintext bytes. The plaintext's byte i is i mod 251; plaintext (hex) is also given when size <= 1024; plaintext-sha256 always.",
			"chunks: the plaintext cut in chunks of 65536 bytes, the last holding 1..65536 (an empty file: one empty chunk), each with",
			"  index, last, nonce (index as 11 bytes big-endian, then 01 for the last chunk, 00 otherwise), plaintext-length,",
			"  sealed = ChaCha20-Poly1305(chunk-key, nonce, chunk plaintext, no associated data) (hex when plaintext-length <= 1024),",
			"  sealed-sha256 (always) and tag (the last 16 bytes of sealed).",
			"ciphertext-length: the bytes of the sealed chunks in order; blob-length: the padded length (files-padding.json);",
			"blob = the sealed chunks followed by zero bytes up to blob-length (hex when blob-length <= 1024); blob-sha256: its SHA-256.",
			"invalid: blobs a receiver must refuse for a file reference with file-key, size (plaintext bytes) and hash (the reference's blob hash);",
			"  failure names the first check that fails when the blob is read in order: authentication (a chunk does not open: wrong key,",
			"  altered chunk, last-chunk flag in the wrong place), padding (a padding byte is not zero), length (the blob is not",
			"  blob-length bytes long), hash (every other check passes but SHA-256 of the blob is not hash).",
		},
	}
	seq := func(start byte) []byte {
		k := make([]byte, 32)
		for i := range k {
			k[i] = start + byte(i)
		}
		return k
	}
	for j, c := range []struct {
		desc string
		size int64
	}{
		{"empty file: one empty last chunk", 0},
		{"1-byte file", 1},
		{"600-byte file: its ciphertext (616 bytes) pads to 626", 600},
		{"exactly one chunk", filecrypt.ChunkSize},
		{"one chunk and 1 byte: a 1-byte last chunk", filecrypt.ChunkSize + 1},
		{"three chunks, the last of 100 bytes", 2*filecrypt.ChunkSize + 100},
	} {
		key := seq(byte(0x20 * j))
		ck := chunkKey(t, key)
		aead, err := chacha20poly1305.New(ck)
		if err != nil {
			t.Fatal(err)
		}
		p := filesPattern(c.size)
		v := chunkVector{
			Description:     c.desc,
			FileKey:         hex.EncodeToString(key),
			ChunkKey:        hex.EncodeToString(ck),
			Size:            c.size,
			PlaintextSHA256: hexSum(p),
		}
		if c.size <= filesInline {
			v.Plaintext = hex.EncodeToString(p)
		}
		var ct []byte
		chunks := max((c.size+filecrypt.ChunkSize-1)/filecrypt.ChunkSize, 1)
		for i := range chunks {
			last := i == chunks-1
			part := p[i*filecrypt.ChunkSize : min(c.size, (i+1)*filecrypt.ChunkSize)]
			nonce := chunkNonce(i, last)
			sealed := aead.Seal(nil, nonce, part, nil)
			e := chunkEntry{
				Index:        i,
				Last:         last,
				Nonce:        hex.EncodeToString(nonce),
				Length:       int64(len(part)),
				SealedSHA256: hexSum(sealed),
				Tag:          hex.EncodeToString(sealed[len(sealed)-16:]),
			}
			if len(part) <= filesInline {
				e.Sealed = hex.EncodeToString(sealed)
			}
			v.Chunks = append(v.Chunks, e)
			ct = append(ct, sealed...)
		}
		blob := make([]byte, specPadded(uint64(len(ct))))
		copy(blob, ct)
		v.CiphertextLength = int64(len(ct))
		v.BlobLength = int64(len(blob))
		v.BlobSHA256 = hexSum(blob)
		if len(blob) <= filesInline {
			v.Blob = hex.EncodeToString(blob)
		}
		checkFilecrypt(t, key, p, blob)
		cv.Vectors = append(cv.Vectors, v)
	}
	cv.Invalid = makeInvalidBlobs(t, cv.Vectors)
	return cv
}

// makeInvalidBlobs returns the invalid blobs, made from small valid ones.
func makeInvalidBlobs(t *testing.T, valid []chunkVector) []invalidBlob {
	byDesc := func(d string) (chunkVector, []byte, []byte) {
		for _, v := range valid {
			if v.Description == d {
				return v, unhex(t, v.FileKey), unhex(t, v.Blob)
			}
		}
		t.Fatalf("no vector %q", d)
		return chunkVector{}, nil, nil
	}
	one, oneKey, oneBlob := byDesc("1-byte file")
	_, emptyKey, emptyBlob := byDesc("empty file: one empty last chunk")
	six, sixKey, sixBlob := byDesc("600-byte file: its ciphertext (616 bytes) pads to 626")
	var out []invalidBlob
	add := func(desc string, key []byte, size int64, hash string, blob []byte, failure string) {
		if hash == "" {
			hash = hexSum(blob)
		}
		v := invalidBlob{Description: desc, FileKey: hex.EncodeToString(key), Size: size,
			Hash: hash, Blob: hex.EncodeToString(blob), Failure: failure}
		if err := openInvalid(t, v); !errors.Is(err, filecrypt.ErrCorrupt) {
			t.Fatalf("%s: filecrypt gives %v", desc, err)
		}
		out = append(out, v)
	}
	sealed := func(key []byte, last bool, p []byte, blobLen int) []byte {
		a, err := chacha20poly1305.New(chunkKey(t, key))
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, blobLen)
		copy(b, a.Seal(nil, chunkNonce(0, last), p, nil))
		return b
	}
	flip := func(b []byte, i int) []byte {
		b = bytes.Clone(b)
		b[i] ^= 1
		return b
	}
	add("1-byte file opened with another file's key", emptyKey, 1, one.BlobSHA256, oneBlob, "authentication")
	add("1-byte file, its chunk sealed without the last-chunk flag", oneKey, 1, "", sealed(oneKey, false, filesPattern(1), 541), "authentication")
	add("empty file, its chunk sealed without the last-chunk flag", emptyKey, 0, "", sealed(emptyKey, false, nil, 541), "authentication")
	add("1-byte file, a ciphertext byte altered", oneKey, 1, "", flip(oneBlob, 0), "authentication")
	add("1-byte file, a tag byte altered", oneKey, 1, "", flip(oneBlob, 16), "authentication")
	add("600-byte file's blob given as a 599-byte file (same blob length)", sixKey, 599, six.BlobSHA256, sixBlob, "authentication")
	add("1-byte file, the last padding byte 01", oneKey, 1, "", flip(oneBlob, 540), "padding")
	add("1-byte file, the first padding byte 01", oneKey, 1, "", flip(oneBlob, 17), "padding")
	add("1-byte file, blob cut by one byte", oneKey, 1, "", oneBlob[:540], "length")
	add("1-byte file, blob of the ciphertext only", oneKey, 1, "", oneBlob[:17], "length")
	add("1-byte file, blob with a zero byte appended", oneKey, 1, "", append(bytes.Clone(oneBlob), 0), "length")
	add("empty file's blob with another hash", emptyKey, 0, one.BlobSHA256, emptyBlob, "hash")
	return out
}

// checkFilecrypt checks that client/filecrypt makes blob of plaintext p
// under key, and opens it again.
func checkFilecrypt(t *testing.T, key, p, blob []byte) {
	t.Helper()
	size := int64(len(p))
	r, err := filecrypt.NewBlobReader(key, bytes.NewReader(p), size)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(blob)
	if !bytes.Equal(got, blob) || !bytes.Equal(r.Sum(), h[:]) || r.BlobSize() != int64(len(blob)) {
		t.Fatalf("filecrypt's blob of a %d-byte file differs from the spec's", size)
	}
	var out bytes.Buffer
	w, err := filecrypt.NewBlobWriter(key, h[:], size, &out)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(blob); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(out.Bytes(), p) {
		t.Fatalf("filecrypt opens the blob of a %d-byte file to other bytes", size)
	}
}

// fileVectorFiles returns the two files' names and generated contents.
func fileVectorFiles(t *testing.T) map[string][]byte {
	enc := func(v any) []byte {
		var b bytes.Buffer
		e := json.NewEncoder(&b)
		e.SetEscapeHTML(false)
		e.SetIndent("", "  ")
		if err := e.Encode(v); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	return map[string][]byte{
		filesPaddingPath: enc(makePaddingVectors(t)),
		filesChunksPath:  enc(makeChunkVectors(t)),
	}
}

func TestGenerateVectorsFiles(t *testing.T) {
	if os.Getenv("XCHAT_GEN_VECTORS") != "1" {
		t.Skip("set XCHAT_GEN_VECTORS=1 to regenerate the vectors")
	}
	for name, b := range fileVectorFiles(t) {
		if err := os.WriteFile(name, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestVectorsUpToDateFiles fails when a committed file vector differs from
// what the generator makes now, as TestVectorsUpToDate does for the others.
func TestVectorsUpToDateFiles(t *testing.T) {
	if os.Getenv("XCHAT_GEN_VECTORS") == "1" {
		t.Skip("regenerating")
	}
	t.Parallel()
	const fix = "if the change is intended, regenerate with XCHAT_GEN_VECTORS=1 go test -run TestGenerateVectors ./spec/vectors/ and commit the vectors with the spec change"
	for name, want := range fileVectorFiles(t) {
		got, err := os.ReadFile(name)
		if errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: generated but not committed; %s", name, fix)
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("%s: committed file differs from the generator's output at line %d; %s", name, firstDiffLine(got, want), fix)
		}
	}
}
