package sframe

import (
	"bytes"
	"crypto/hkdf"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// The RFC 9605 test vectors of the SFrame working group are read from
// ../shared/vectors/sframe beside the repository's root, or from the
// directory in XCHAT_SFRAME_VECTORS. They are not copied into the project.

// vectorFile is test-vectors.json and test-vectors-aes256.json.
type vectorFile struct {
	Header []struct {
		KID     uint64 `json:"kid"`
		CTR     uint64 `json:"ctr"`
		Encoded string `json:"encoded"`
	} `json:"header"`
	AESCTRHMAC    []aeadVector   `json:"aes_ctr_hmac"`
	AES256CTRHMAC []aeadVector   `json:"aes_256_ctr_hmac"`
	SFrame        []sframeVector `json:"sframe"`
	SFrameAES256  []sframeVector `json:"sframe_aes_256_ctr_hmac"`
}

// aeadVector checks the AES-CTR with HMAC construction on its own.
type aeadVector struct {
	CipherSuite CipherSuite `json:"cipher_suite"`
	Key         string      `json:"key"`
	EncKey      string      `json:"enc_key"`
	AuthKey     string      `json:"auth_key"`
	Nonce       string      `json:"nonce"`
	AAD         string      `json:"aad"`
	PT          string      `json:"pt"`
	CT          string      `json:"ct"`
}

// sframeVector is a whole SFrame encryption.
type sframeVector struct {
	CipherSuite     CipherSuite `json:"cipher_suite"`
	KID             uint64      `json:"kid"`
	CTR             uint64      `json:"ctr"`
	BaseKey         string      `json:"base_key"`
	SFrameKeyLabel  string      `json:"sframe_key_label"`
	SFrameSaltLabel string      `json:"sframe_salt_label"`
	SFrameSecret    string      `json:"sframe_secret"`
	SFrameKey       string      `json:"sframe_key"`
	SFrameSalt      string      `json:"sframe_salt"`
	Metadata        string      `json:"metadata"`
	Nonce           string      `json:"nonce"`
	AAD             string      `json:"aad"`
	PT              string      `json:"pt"`
	CT              string      `json:"ct"`
}

// vectorDir returns the directory of the RFC 9605 vectors. It skips the
// test when there is none, and fails it when CI=true.
func vectorDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("XCHAT_SFRAME_VECTORS")
	if dir == "" {
		root, err := repoRoot()
		if err == nil {
			dir = filepath.Join(root, "..", "shared", "vectors", "sframe")
		}
	}
	if dir != "" {
		if _, err := os.Stat(filepath.Join(dir, "test-vectors.json")); err == nil {
			return dir
		}
	}
	msg := fmt.Sprintf("RFC 9605 vectors not found (looked in %q; set XCHAT_SFRAME_VECTORS)", dir)
	if os.Getenv("CI") == "true" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// repoRoot walks up from the working directory to the directory of go.mod.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for range 32 {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		up := filepath.Dir(dir)
		if up == dir {
			break
		}
		dir = up
	}
	return "", errors.New("no go.mod above the working directory")
}

// readVectors decodes one vector file, refusing unknown fields.
func readVectors(t testing.TB, name string) *vectorFile {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir(t), name))
	if err != nil {
		t.Fatal(err)
	}
	var v vectorFile
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &v
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVectorsHeader(t *testing.T) {
	t.Parallel()
	v := readVectors(t, "test-vectors.json")
	if len(v.Header) == 0 {
		t.Fatal("no header vectors")
	}
	for _, h := range v.Header {
		want := unhex(t, h.Encoded)
		if got := AppendHeader(nil, h.KID, h.CTR); !bytes.Equal(got, want) {
			t.Errorf("AppendHeader(%d, %d) = %x, want %x", h.KID, h.CTR, got, want)
		}
		kid, ctr, n, err := ParseHeader(append(want, 0xaa, 0xbb))
		if err != nil || kid != h.KID || ctr != h.CTR || n != len(want) {
			t.Errorf("ParseHeader(%x) = %d, %d, %d, %v", want, kid, ctr, n, err)
		}
		if _, _, _, err := ParseHeader(want[:len(want)-1]); len(want) > 1 && !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseHeader of %x cut short: %v, want ErrMalformed", want, err)
		}
	}
}

func TestVectorsAESCTRHMAC(t *testing.T) {
	t.Parallel()
	v := readVectors(t, "test-vectors.json")
	all := append(v.AESCTRHMAC, v.AES256CTRHMAC...)
	if len(v.AESCTRHMAC) == 0 || len(v.AES256CTRHMAC) == 0 {
		t.Fatal("no AES-CTR-HMAC vectors")
	}
	for _, c := range all {
		t.Run(c.CipherSuite.String(), func(t *testing.T) {
			p, ok := c.CipherSuite.params()
			if !ok {
				t.Fatalf("unknown suite %d", c.CipherSuite)
			}
			key := unhex(t, c.Key)
			if !bytes.Equal(key[:p.encLen], unhex(t, c.EncKey)) || !bytes.Equal(key[p.encLen:], unhex(t, c.AuthKey)) {
				t.Fatal("key split differs")
			}
			a, err := newAEAD(p, key)
			if err != nil {
				t.Fatal(err)
			}
			nonce, aad, pt, ct := unhex(t, c.Nonce), unhex(t, c.AAD), unhex(t, c.PT), unhex(t, c.CT)
			if got := a.Seal(nil, nonce, pt, aad); !bytes.Equal(got, ct) {
				t.Fatalf("Seal = %x, want %x", got, ct)
			}
			got, err := a.Open(nil, nonce, ct, aad)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("Open = %x, %v", got, err)
			}
			bad := bytes.Clone(ct)
			bad[len(bad)-1] ^= 1
			if _, err := a.Open(nil, nonce, bad, aad); !errors.Is(err, ErrAuth) {
				t.Fatalf("Open of a bad tag: %v", err)
			}
		})
	}
}

func TestVectorsSFrame(t *testing.T) {
	t.Parallel()
	v := readVectors(t, "test-vectors.json")
	v256 := readVectors(t, "test-vectors-aes256.json")
	all := append(v.SFrame, v256.SFrameAES256...)
	if len(v.SFrame) == 0 || len(v256.SFrameAES256) == 0 {
		t.Fatal("no SFrame vectors")
	}
	seen := map[CipherSuite]bool{}
	for _, c := range all {
		seen[c.CipherSuite] = true
		t.Run(c.CipherSuite.String(), func(t *testing.T) { checkSFrameVector(t, c) })
	}
	for cs := AES128CTRHMACSHA256_80; cs <= AES256CTRHMACSHA512_32; cs++ {
		if !seen[cs] {
			t.Errorf("no vector for %v", cs)
		}
	}
}

// checkSFrameVector checks every intermediate value of one vector, then
// DeriveKey, Seal and Open.
func checkSFrameVector(t *testing.T, c sframeVector) {
	p, ok := c.CipherSuite.params()
	if !ok {
		t.Fatalf("unknown suite %d", c.CipherSuite)
	}
	baseKey := unhex(t, c.BaseKey)
	secret, err := hkdf.Extract(p.hash, baseKey, nil)
	if err != nil || !bytes.Equal(secret, unhex(t, c.SFrameSecret)) {
		t.Fatalf("sframe_secret = %x, %v", secret, err)
	}
	key, salt, err := deriveKeySalt(p, c.CipherSuite, c.KID, baseKey)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(key, unhex(t, c.SFrameKey)) || !bytes.Equal(salt, unhex(t, c.SFrameSalt)) {
		t.Fatalf("key %x salt %x differ", key, salt)
	}
	// The labels, recomputed from the RFC's text.
	if got := labelBytes("SFrame 1.0 Secret key ", c.KID, c.CipherSuite); !bytes.Equal(got, unhex(t, c.SFrameKeyLabel)) {
		t.Fatalf("key label %x", got)
	}
	if got := labelBytes("SFrame 1.0 Secret salt ", c.KID, c.CipherSuite); !bytes.Equal(got, unhex(t, c.SFrameSaltLabel)) {
		t.Fatalf("salt label %x", got)
	}
	k, err := DeriveKey(c.CipherSuite, c.KID, baseKey)
	if err != nil {
		t.Fatal(err)
	}
	if n := k.nonce(c.CTR); !bytes.Equal(n[:], unhex(t, c.Nonce)) {
		t.Fatalf("nonce %x", n)
	}
	metadata, pt, ct := unhex(t, c.Metadata), unhex(t, c.PT), unhex(t, c.CT)
	hdr := AppendHeader(nil, c.KID, c.CTR)
	if aad := append(bytes.Clone(hdr), metadata...); !bytes.Equal(aad, unhex(t, c.AAD)) {
		t.Fatalf("aad %x", aad)
	}
	got, err := k.Seal(c.CTR, metadata, pt)
	if err != nil || !bytes.Equal(got, ct) {
		t.Fatalf("Seal = %x, %v; want %x", got, err, ct)
	}
	ctr, opened, err := k.Open(metadata, ct)
	if err != nil || ctr != c.CTR || !bytes.Equal(opened, pt) {
		t.Fatalf("Open = %d, %x, %v", ctr, opened, err)
	}
	if _, _, err := k.Open(metadata[1:], ct); !errors.Is(err, ErrAuth) {
		t.Fatalf("Open with other metadata: %v, want ErrAuth", err)
	}
	bad := bytes.Clone(ct)
	bad[len(hdr)] ^= 0x80
	if _, _, err := k.Open(metadata, bad); !errors.Is(err, ErrAuth) {
		t.Fatalf("Open of a changed ciphertext: %v, want ErrAuth", err)
	}
}

// labelBytes is a derivation label: the text, the KID (8 bytes) and the
// suite (2 bytes), big-endian.
func labelBytes(s string, kid uint64, cs CipherSuite) []byte {
	b := []byte(s)
	for i := 7; i >= 0; i-- {
		b = append(b, byte(kid>>(8*i)))
	}
	return append(b, byte(cs>>8), byte(cs))
}
