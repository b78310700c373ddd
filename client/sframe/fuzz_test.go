package sframe

import (
	"bytes"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fuzzBaseKey keys the receiver of FuzzOpen; its seeds are frames sealed
// under it.
var fuzzBaseKey = []byte("fuzz base key 16")

// addVectorSeeds adds the headers and ciphertexts of the RFC 9605 vectors
// to f's corpus when they are present.
func addVectorSeeds(f *testing.F, add func(b []byte)) {
	dir := os.Getenv("XCHAT_SFRAME_VECTORS")
	if dir == "" {
		root, err := repoRoot()
		if err != nil {
			return
		}
		dir = filepath.Join(root, "..", "shared", "vectors", "sframe")
	}
	if _, err := os.Stat(filepath.Join(dir, "test-vectors.json")); err != nil {
		return
	}
	v := readVectors(f, "test-vectors.json")
	for _, h := range v.Header {
		if b, err := hex.DecodeString(h.Encoded); err == nil {
			add(b)
		}
	}
	for _, s := range v.SFrame {
		if b, err := hex.DecodeString(s.CT); err == nil {
			add(b)
		}
	}
}

func FuzzParseHeader(f *testing.F) {
	for _, s := range [][]byte{{}, {0x00}, {0x77}, {0x08}, {0x08, 0xff}, {0x80}, {0x80, 0xff}, {0xff},
		bytes.Repeat([]byte{0xff}, 17), {0x98, 0x00, 0x05, 0x01}} {
		f.Add(s)
	}
	f.Add(AppendHeader(nil, MLSKeyID(65535, 255), 1<<40))
	addVectorSeeds(f, func(b []byte) { f.Add(b) })
	f.Fuzz(func(t *testing.T, b []byte) {
		kid, ctr, n, err := ParseHeader(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if n < 1 || n > len(b) || n > MaxHeaderLen {
			t.Fatalf("header length %d of %d bytes", n, len(b))
		}
		h := AppendHeader(nil, kid, ctr)
		if len(h) > n {
			t.Fatalf("shortest encoding %x longer than the parsed %x", h, b[:n])
		}
		k2, c2, n2, err := ParseHeader(h)
		if err != nil || k2 != kid || c2 != ctr || n2 != len(h) {
			t.Fatalf("re-encoding %x parses to %d, %d, %d, %v", h, k2, c2, n2, err)
		}
	})
}

func FuzzOpen(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	s := NewMLSSender(1)
	if err := s.SetEpoch(3, fuzzBaseKey); err != nil {
		f.Fatal(err)
	}
	m := meta(1, 9)
	for _, pt := range [][]byte{nil, []byte("a"), bytes.Repeat([]byte{7}, 200)} {
		ct, err := s.Protect(m, pt)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(m, ct)
		f.Add(m[:4], ct)
		f.Add(m, ct[:len(ct)-1])
	}
	for _, cs := range allSuites {
		k, err := DeriveKey(cs, MLSKeyID(2, 3), fuzzBaseKey)
		if err != nil {
			f.Fatal(err)
		}
		ct, _ := k.Seal(5, m, []byte("seed"))
		f.Add(m, ct)
	}
	f.Add([]byte{}, []byte{})
	f.Add([]byte{}, []byte{0xff})
	addVectorSeeds(f, func(b []byte) { f.Add([]byte("IETF SFrame WG"), b) })

	keys := map[CipherSuite]*Key{}
	for _, cs := range allSuites {
		k, err := DeriveKey(cs, MLSKeyID(1, 3), fuzzBaseKey)
		if err != nil {
			f.Fatal(err)
		}
		keys[cs] = k
	}
	f.Fuzz(func(t *testing.T, metadata, ct []byte) {
		sentinel := func(err error) bool {
			return errors.Is(err, ErrAuth) || errors.Is(err, ErrMalformed) || errors.Is(err, ErrUnknownKey) || errors.Is(err, ErrReplay)
		}
		for cs, k := range keys {
			ctr, pt, err := k.Open(metadata, ct)
			if err != nil {
				if !sentinel(err) {
					t.Fatalf("%v: error %v wraps no sentinel", cs, err)
				}
				continue
			}
			// Only a genuine frame opens: sealing it again gives ct.
			again, err := k.Seal(ctr, metadata, pt)
			if err != nil {
				t.Fatal(err)
			}
			_, _, hl, _ := ParseHeader(ct)
			if !bytes.Equal(again[len(again)-len(ct)+hl:], ct[hl:]) {
				t.Fatalf("%v: opened a frame that does not seal back", cs)
			}
		}
		r := NewMLSReceiver()
		r.AddEpoch(3, fuzzBaseKey, now)
		leaf, epoch, _, err := r.Unprotect(metadata, ct, now)
		if err != nil {
			if !sentinel(err) {
				t.Fatalf("Unprotect: error %v wraps no sentinel", err)
			}
			return
		}
		if (leaf != 1 && leaf != 2) || epoch != 3 { // the seeds' senders
			t.Fatalf("opened as leaf %d epoch %d", leaf, epoch)
		}
		if _, _, _, err := r.Unprotect(metadata, ct, now); !errors.Is(err, ErrReplay) {
			t.Fatalf("second Unprotect: %v", err)
		}
	})
}
