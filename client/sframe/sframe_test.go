package sframe

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"
)

var allSuites = []CipherSuite{
	AES128CTRHMACSHA256_80, AES128CTRHMACSHA256_64, AES128CTRHMACSHA256_32,
	AES128GCMSHA256_128, AES256GCMSHA512_128,
	AES256CTRHMACSHA512_80, AES256CTRHMACSHA512_64, AES256CTRHMACSHA512_32,
}

func TestHeaderRoundTrip(t *testing.T) {
	t.Parallel()
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 5000 {
		kid, ctr := r.Uint64()>>(r.IntN(64)), r.Uint64()>>(r.IntN(64))
		if i < 64 {
			kid, ctr = uint64(i/8), uint64(i%8)
		}
		h := AppendHeader([]byte{0xee}, kid, ctr)[1:]
		gk, gc, n, err := ParseHeader(h)
		if err != nil || gk != kid || gc != ctr || n != len(h) {
			t.Fatalf("(%d, %d) -> %x -> %d, %d, %d, %v", kid, ctr, h, gk, gc, n, err)
		}
		if len(h) > MaxHeaderLen {
			t.Fatalf("header of %d bytes", len(h))
		}
	}
}

func TestHeaderNonMinimal(t *testing.T) {
	t.Parallel()
	// KID 5 in two bytes, counter 1 in one: accepted as the values.
	kid, ctr, n, err := ParseHeader([]byte{0x98, 0x00, 0x05, 0x01})
	if err != nil || kid != 5 || ctr != 1 || n != 4 {
		t.Fatalf("got %d, %d, %d, %v", kid, ctr, n, err)
	}
	if _, _, _, err := ParseHeader(nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty: %v", err)
	}
	if _, _, _, err := ParseHeader([]byte{0xf0, 1, 2}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("short KID: %v", err)
	}
}

func TestSealOpenAllSuites(t *testing.T) {
	t.Parallel()
	base := []byte("0123456789abcdef")
	meta := []byte{0, 0, 0, 7, 0, 0, 1, 0}
	for _, cs := range allSuites {
		t.Run(cs.String(), func(t *testing.T) {
			t.Parallel()
			k, err := DeriveKey(cs, 1234, base)
			if err != nil {
				t.Fatal(err)
			}
			if k.KID() != 1234 || k.Suite() != cs || k.Overhead() != cs.Overhead() {
				t.Fatal("accessors differ")
			}
			for _, size := range []int{0, 1, 15, 16, 17, 160, 4096} {
				pt := bytes.Repeat([]byte{byte(size)}, size)
				ct, err := k.Seal(uint64(size)*1000, meta, pt)
				if err != nil {
					t.Fatal(err)
				}
				if len(ct) != len(AppendHeader(nil, 1234, uint64(size)*1000))+size+cs.Overhead() {
					t.Fatalf("ciphertext of %d bytes for %d", len(ct), size)
				}
				ctr, got, err := k.Open(meta, ct)
				if err != nil || ctr != uint64(size)*1000 || !bytes.Equal(got, pt) {
					t.Fatalf("size %d: %d, %v", size, ctr, err)
				}
				if _, _, err := k.Open(meta[:7], ct); !errors.Is(err, ErrAuth) {
					t.Fatalf("other metadata: %v", err)
				}
				if _, _, err := k.Open(meta, ct[:len(ct)-1]); !errors.Is(err, ErrAuth) && !errors.Is(err, ErrMalformed) {
					t.Fatalf("cut: %v", err)
				}
			}
			other, err := DeriveKey(cs, 1235, base)
			if err != nil {
				t.Fatal(err)
			}
			ct, _ := k.Seal(1, nil, []byte("x"))
			if _, _, err := other.Open(nil, ct); !errors.Is(err, ErrUnknownKey) {
				t.Fatalf("other KID: %v", err)
			}
			// A header with no room for the tag.
			if _, _, err := k.Open(nil, AppendHeader(nil, 1234, 9)); !errors.Is(err, ErrMalformed) {
				t.Fatalf("no tag: %v", err)
			}
		})
	}
}

func TestDeriveKeyErrors(t *testing.T) {
	t.Parallel()
	if _, err := DeriveKey(0, 1, []byte("k")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("suite 0: %v", err)
	}
	if _, err := DeriveKey(9, 1, []byte("k")); !errors.Is(err, ErrMalformed) {
		t.Fatalf("suite 9: %v", err)
	}
	if _, err := DeriveKey(AES128GCMSHA256_128, 1, nil); !errors.Is(err, ErrMalformed) {
		t.Fatalf("empty base key: %v", err)
	}
	if CipherSuite(9).String() != "CipherSuite(0x0009)" || CipherSuite(9).Overhead() != 0 {
		t.Fatal("unknown suite's name or overhead")
	}
}

func TestKeysDifferByKIDAndSuite(t *testing.T) {
	t.Parallel()
	base := []byte("0123456789abcdef")
	seen := map[string]bool{}
	for _, cs := range allSuites {
		for kid := range uint64(4) {
			k, err := DeriveKey(cs, kid, base)
			if err != nil {
				t.Fatal(err)
			}
			ct, err := k.Seal(0, nil, make([]byte, 16))
			if err != nil {
				t.Fatal(err)
			}
			s := string(ct[1:17])
			if seen[s] {
				t.Fatalf("%v KID %d: same keystream as another key", cs, kid)
			}
			seen[s] = true
		}
	}
}
