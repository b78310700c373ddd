package vectors_test

// calls-sframe.json: the SFrame keys of spec/12-calls.md section 12.7. From
// one epoch's base_key it derives the KIDs, keys and salts of two members
// and protects one media frame of each. The generator below computes every
// value from the specification's text with the primitives themselves
// (HKDF-SHA256, AES-128-GCM), as files_gen_test.go does; it is written only
// when asked,
//
//	XCHAT_GEN_VECTORS=1 go test -run TestGenerateVectors ./spec/vectors/
//
// TestVectorsUpToDateCallsSFrame checks the committed file against it, and
// TestCallsSFrameVectors checks client/sframe against the committed file.

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/sframe"
	"github.com/xchat-im/xchat/spec/wire"
)

const callsSFramePath = "calls-sframe.json"

// callsSFrameVectors is calls-sframe.json.
type callsSFrameVectors struct {
	Description string              `json:"description"`
	Spec        string              `json:"spec"`
	Generator   string              `json:"generator"`
	Format      []string            `json:"format"`
	CipherSuite uint16              `json:"cipher-suite"`
	Epoch       uint64              `json:"epoch"`
	BaseKey     string              `json:"base-key"`
	Members     []callsSFrameMember `json:"members"`
}

// callsSFrameMember is one sender's key and one frame it protected.
type callsSFrameMember struct {
	Leaf       uint32           `json:"leaf"`
	KID        uint64           `json:"kid"`
	SFrameKey  string           `json:"sframe-key"`
	SFrameSalt string           `json:"sframe-salt"`
	Frame      callsSFrameFrame `json:"frame"`
}

// callsSFrameFrame is one protected media frame.
type callsSFrameFrame struct {
	Source     uint32 `json:"source"`
	Sequence   uint32 `json:"sequence"`
	Counter    uint64 `json:"counter"`
	Kind       uint64 `json:"kind"`
	Codec      string `json:"codec"`
	Timestamp  uint64 `json:"timestamp"`
	Metadata   string `json:"metadata"`
	Plaintext  string `json:"plaintext"`
	Header     string `json:"header"`
	Nonce      string `json:"nonce"`
	AAD        string `json:"aad"`
	Ciphertext string `json:"sframe-ciphertext"`
}

// makeCallsSFrameVectors computes the vectors from section 12.7 and RFC
// 9605 sections 4.3, 4.4.2 and 4.4.3.
func makeCallsSFrameVectors(t *testing.T) *callsSFrameVectors {
	const suite = 0x0004                  // AES_128_GCM_SHA256_128
	const epoch = 257                     // its KIDs carry 257 mod 256 = 1
	baseKey := []byte("xchat call epoch") // 16 bytes, as MLS-Exporter(..., 16) gives
	v := &callsSFrameVectors{
		Description: "xchat/1 calls: SFrame KIDs, keys and salts of two members from one epoch's base key, and one protected media frame each",
		Spec:        "12-calls.md 12.6, 12.7",
		Generator:   "spec/vectors/calls_sframe_test.go",
		Format: []string{
			"Bytes are lowercase hex strings, numbers decimal JSON numbers. Cipher suite 4 (AES_128_GCM_SHA256_128) of RFC 9605.",
			"base-key: the epoch's MLS-Exporter(\"SFrame 1.0 Base Key\", \"\", 16); epoch: the MLS epoch number.",
			"members: leaf (MLS leaf index) -> kid = (leaf << 8) | (epoch mod 256);",
			"  secret = HKDF-Extract(salt = empty, IKM = base-key) with SHA-256;",
			"  sframe-key = HKDF-Expand(secret, \"SFrame 1.0 Secret key \" || kid (8 bytes) || cipher-suite (2 bytes), 16);",
			"  sframe-salt = HKDF-Expand(secret, \"SFrame 1.0 Secret salt \" || kid (8 bytes) || cipher-suite (2 bytes), 12).",
			"frame: one frame of the member: source and sequence -> metadata (4 bytes each, big-endian);",
			"  plaintext: the encoded media-frame {1: kind, 2: codec, 3: timestamp, 4: payload} (audio: pcmu, 160 bytes, byte i is i mod 251;",
			"  video: frame 31 of the 40x30 test pattern of section 12.8.2);",
			"  counter: the SFrame CTR (the member's frames under this KID before it); header: the SFrame header of kid and counter (RFC 9605 4.3);",
			"  nonce = sframe-salt XOR counter (12 bytes big-endian); aad = header || metadata;",
			"  sframe-ciphertext = header || AES-128-GCM(sframe-key, nonce, aad, plaintext) (ciphertext and 16-byte tag).",
		},
		CipherSuite: suite,
		Epoch:       epoch,
		BaseKey:     hex.EncodeToString(baseKey),
	}
	frames := []struct {
		leaf        uint32
		source, seq uint32
		counter     uint64
		kind        uint64
		codec       string
		timestamp   uint64
		payload     int
	}{
		{leaf: 0, source: 7, seq: 0, counter: 0, kind: wire.KindAudio, codec: "pcmu", timestamp: 0, payload: 160},
		{leaf: 300, source: 0x01020304, seq: 1000, counter: 1999, kind: wire.KindVideo, codec: "test", timestamp: 20_000_000, payload: 0},
	}
	secret, err := hkdf.Extract(sha256.New, baseKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames {
		kid := uint64(f.leaf)<<8 | epoch%256
		label := func(s string) string {
			b := binary.BigEndian.AppendUint64([]byte(s), kid)
			return string(binary.BigEndian.AppendUint16(b, suite))
		}
		key, err := hkdf.Expand(sha256.New, secret, label("SFrame 1.0 Secret key "), 16)
		if err != nil {
			t.Fatal(err)
		}
		salt, err := hkdf.Expand(sha256.New, secret, label("SFrame 1.0 Secret salt "), 12)
		if err != nil {
			t.Fatal(err)
		}
		payload := make([]byte, f.payload)
		for i := range payload {
			payload[i] = byte(i % 251)
		}
		if f.codec == "test" {
			payload = specTestPattern(40, 30, 31)
		}
		pt, err := wire.Marshal(&wire.MediaFrame{Kind: f.kind, Codec: f.codec, Timestamp: f.timestamp, Payload: payload})
		if err != nil {
			t.Fatal(err)
		}
		metadata := binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, f.source), f.seq)
		header := specSFrameHeader(kid, f.counter)
		nonce := bytes.Clone(salt)
		for i := range 8 {
			nonce[4+i] ^= byte(f.counter >> (8 * (7 - i)))
		}
		aad := append(bytes.Clone(header), metadata...)
		block, err := aes.NewCipher(key)
		if err != nil {
			t.Fatal(err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		ct := gcm.Seal(bytes.Clone(header), nonce, pt, aad)
		v.Members = append(v.Members, callsSFrameMember{
			Leaf: f.leaf, KID: kid, SFrameKey: hex.EncodeToString(key), SFrameSalt: hex.EncodeToString(salt),
			Frame: callsSFrameFrame{
				Source: f.source, Sequence: f.seq, Counter: f.counter, Kind: f.kind, Codec: f.codec, Timestamp: f.timestamp,
				Metadata: hex.EncodeToString(metadata), Plaintext: hex.EncodeToString(pt), Header: hex.EncodeToString(header),
				Nonce: hex.EncodeToString(nonce), AAD: hex.EncodeToString(aad), Ciphertext: hex.EncodeToString(ct),
			},
		})
	}
	return v
}

// specTestPattern is frame n of the test video pattern of section 12.8.2
// at w x h: width, height, frame number, key flag, 3 zero bytes, then w*h/20
// bytes (4 times as many for a key frame, every 30th) where byte j is
// (n + j) mod 251.
func specTestPattern(w, h int, n uint32) []byte {
	key := n%30 == 0
	b := binary.BigEndian.AppendUint16(nil, uint16(w))
	b = binary.BigEndian.AppendUint16(b, uint16(h))
	b = binary.BigEndian.AppendUint32(b, n)
	size := w * h / 20
	if key {
		b = append(b, 1, 0, 0, 0)
		size *= 4
	} else {
		b = append(b, 0, 0, 0, 0)
	}
	for j := range size {
		b = append(b, byte((uint64(n)+uint64(j))%251))
	}
	return b
}

// specSFrameHeader is the SFrame header of RFC 9605 section 4.3: a config
// byte X|K|Y|C, where a KID or counter below 8 sits in its 3 bits, and a
// larger one follows in the fewest bytes (X or Y set, the bits holding the
// length minus 1).
func specSFrameHeader(kid, ctr uint64) []byte {
	field := func(v uint64) (bits byte, extra []byte) {
		if v < 8 {
			return byte(v), nil
		}
		b := binary.BigEndian.AppendUint64(nil, v)
		for len(b) > 1 && b[0] == 0 {
			b = b[1:]
		}
		return 0x08 | byte(len(b)-1), b
	}
	kb, ke := field(kid)
	cb, ce := field(ctr)
	return append(append([]byte{kb<<4 | cb}, ke...), ce...)
}

func encodeCallsSFrame(t *testing.T) []byte {
	var b bytes.Buffer
	e := json.NewEncoder(&b)
	e.SetEscapeHTML(false)
	e.SetIndent("", "  ")
	if err := e.Encode(makeCallsSFrameVectors(t)); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestGenerateVectorsCallsSFrame(t *testing.T) {
	if os.Getenv("XCHAT_GEN_VECTORS") != "1" {
		t.Skip("set XCHAT_GEN_VECTORS=1 to regenerate the vectors")
	}
	if err := os.WriteFile(callsSFramePath, encodeCallsSFrame(t), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestVectorsUpToDateCallsSFrame fails when the committed calls-sframe.json
// differs from what the generator makes now.
func TestVectorsUpToDateCallsSFrame(t *testing.T) {
	if os.Getenv("XCHAT_GEN_VECTORS") == "1" {
		t.Skip("regenerating")
	}
	t.Parallel()
	const fix = "if the change is intended, regenerate with XCHAT_GEN_VECTORS=1 go test -run TestGenerateVectors ./spec/vectors/ and commit the vectors with the spec change"
	got, err := os.ReadFile(callsSFramePath)
	if errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("%s: generated but not committed; %s", callsSFramePath, fix)
	}
	if err != nil {
		t.Fatal(err)
	}
	if want := encodeCallsSFrame(t); !bytes.Equal(got, want) {
		t.Errorf("%s: committed file differs from the generator's output at line %d; %s", callsSFramePath, firstDiffLine(got, want), fix)
	}
}

// TestCallsSFrameVectors checks client/sframe against calls-sframe.json:
// the KIDs, the keys (by sealing with them), each frame as a Key, an
// MLSSender and an MLSReceiver make and open it, and the media frame
// inside.
func TestCallsSFrameVectors(t *testing.T) {
	t.Parallel()
	var v callsSFrameVectors
	readFileVectors(t, callsSFramePath, &v)
	if len(v.Members) != 2 || sframe.CipherSuite(v.CipherSuite) != sframe.AES128GCMSHA256_128 {
		t.Fatalf("%d members, suite %d", len(v.Members), v.CipherSuite)
	}
	baseKey := unhex(t, v.BaseKey)
	now := time.Unix(1_700_000_000, 0)
	r := sframe.NewMLSReceiver()
	r.AddEpoch(v.Epoch, baseKey, now)
	for _, m := range v.Members {
		f := m.Frame
		if kid := sframe.MLSKeyID(m.Leaf, v.Epoch); kid != m.KID {
			t.Fatalf("leaf %d: KID %d, want %d", m.Leaf, kid, m.KID)
		}
		if leaf, low, err := sframe.SplitMLSKeyID(m.KID); err != nil || leaf != m.Leaf || uint64(low) != v.Epoch%256 {
			t.Fatalf("SplitMLSKeyID(%d) = %d, %d, %v", m.KID, leaf, low, err)
		}
		metadata, pt, ct := unhex(t, f.Metadata), unhex(t, f.Plaintext), unhex(t, f.Ciphertext)
		if !bytes.Equal(wire.FrameMetadata(f.Source, f.Sequence), metadata) {
			t.Fatalf("leaf %d: metadata differs from wire.FrameMetadata", m.Leaf)
		}
		if !bytes.Equal(sframe.AppendHeader(nil, m.KID, f.Counter), unhex(t, f.Header)) {
			t.Fatalf("leaf %d: header differs", m.Leaf)
		}
		// The vector's key and nonce seal to the vector's ciphertext.
		block, err := aes.NewCipher(unhex(t, m.SFrameKey))
		if err != nil {
			t.Fatal(err)
		}
		gcm, err := cipher.NewGCM(block)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gcm.Seal(unhex(t, f.Header), unhex(t, f.Nonce), pt, unhex(t, f.AAD)), ct) {
			t.Fatalf("leaf %d: sealing with the vector's key and nonce differs", m.Leaf)
		}
		// client/sframe derives the same key and seals the same frame.
		k, err := sframe.DeriveKey(sframe.AES128GCMSHA256_128, m.KID, baseKey)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := k.Seal(f.Counter, metadata, pt); err != nil || !bytes.Equal(got, ct) {
			t.Fatalf("leaf %d: Key.Seal differs (%v)", m.Leaf, err)
		}
		if ctr, got, err := k.Open(metadata, ct); err != nil || ctr != f.Counter || !bytes.Equal(got, pt) {
			t.Fatalf("leaf %d: Key.Open = %d, %v", m.Leaf, ctr, err)
		}
		s := sframe.NewMLSSender(m.Leaf)
		if err := s.SetEpoch(v.Epoch, baseKey); err != nil {
			t.Fatal(err)
		}
		for range f.Counter {
			if _, err := s.Protect(nil, nil); err != nil {
				t.Fatal(err)
			}
		}
		if got, err := s.Protect(metadata, pt); err != nil || !bytes.Equal(got, ct) {
			t.Fatalf("leaf %d: MLSSender's frame %d differs (%v)", m.Leaf, f.Counter, err)
		}
		leaf, epoch, got, err := r.Unprotect(metadata, ct, now)
		if err != nil || leaf != m.Leaf || epoch != v.Epoch || !bytes.Equal(got, pt) {
			t.Fatalf("leaf %d: Unprotect = %d, %d, %v", m.Leaf, leaf, epoch, err)
		}
		if _, _, _, err := r.Unprotect(metadata, ct, now); !errors.Is(err, sframe.ErrReplay) {
			t.Fatalf("leaf %d: second Unprotect: %v", m.Leaf, err)
		}
		other := wire.FrameMetadata(f.Source+1, f.Sequence)
		if _, _, err := k.Open(other, ct); !errors.Is(err, sframe.ErrAuth) {
			t.Fatalf("leaf %d: frame moved to another source: %v", m.Leaf, err)
		}
		mf, err := wire.DecodeMediaFrame(pt)
		if err != nil || mf.Kind != f.Kind || mf.Codec != f.Codec || mf.Timestamp != f.Timestamp {
			t.Fatalf("leaf %d: media frame %+v, %v", m.Leaf, mf, err)
		}
	}
}
