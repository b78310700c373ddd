package vectors_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hpke"
	"testing"
)

func aesGCMSeal(key, nonce, plain []byte) ([]byte, error) {
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	g, err := cipher.NewGCM(b)
	if err != nil {
		return nil, err
	}
	return g.Seal(nil, nonce, plain, nil), nil
}

// checkXWing recomputes an xwing/ vector from its inputs, with the
// construction written out in xwing_gen_test.go, and checks the values
// that crypto/hpke can reach (public keys, derived key pairs, decapsulation,
// opening) with crypto/hpke as well.
func checkXWing(t *testing.T, f *file) {
	expectOutcome(t, f, nil)
	same := func(key string, got []byte) {
		t.Helper()
		if !bytes.Equal(got, f.hex(t, key)) {
			t.Fatalf("%s %x, want %s", key, got, f.get(t, key))
		}
	}
	public := func(seed []byte) []byte {
		t.Helper()
		pk, err := xwingPublic(seed)
		if err != nil {
			t.Fatal(err)
		}
		same("public-key", pk)
		if !bytes.Equal(xwingKey(t, seed).PublicKey().Bytes(), pk) {
			t.Fatal("crypto/hpke derives another public key from the seed")
		}
		return pk
	}
	switch op := f.get(t, "operation"); op {
	case "keygen":
		seed := f.hex(t, "seed")
		same("expanded", xwingExpand(seed))
		if pk := public(seed); len(pk) != xwingPublicLen {
			t.Fatalf("public key of %d bytes", len(pk))
		}
	case "derive-key-pair":
		ikm := f.hex(t, "ikm")
		seed := xwingDeriveSeed(ikm)
		same("seed", seed)
		public(seed)
		k, err := hpke.MLKEM768X25519().DeriveKeyPair(ikm)
		if err != nil {
			t.Fatal(err)
		}
		if sk, _ := k.Bytes(); !bytes.Equal(sk, seed) {
			t.Fatal("crypto/hpke derives another seed")
		}
	case "encapsulate":
		seed := f.hex(t, "seed")
		ct, ss, err := xwingEncapsulate(public(seed), f.hex(t, "eseed"))
		if err != nil {
			t.Fatal(err)
		}
		same("ciphertext", ct)
		same("shared-secret", ss)
		if len(ct) != xwingCipherLen {
			t.Fatalf("ciphertext of %d bytes", len(ct))
		}
		if err := goDecapsulates(seed, ct, ss); err != nil {
			t.Fatal(err)
		}
	case "seal":
		seed, info, plain := f.hex(t, "seed"), f.hex(t, "info"), f.hex(t, "plaintext")
		if len(f.hex(t, "aad")) != 0 {
			t.Fatal("seal vectors use an empty aad")
		}
		enc, ss, err := xwingEncapsulate(public(seed), f.hex(t, "eseed"))
		if err != nil {
			t.Fatal(err)
		}
		same("enc", enc)
		same("shared-secret", ss)
		key, nonce, _, err := hpkeSchedule(ss, info)
		if err != nil {
			t.Fatal(err)
		}
		same("key", key)
		same("base-nonce", nonce)
		ct, err := aesGCMSeal(key, nonce, plain)
		if err != nil {
			t.Fatal(err)
		}
		same("ciphertext", ct)
		same("sealed", append(enc, ct...))
		got, err := hpke.Open(xwingKey(t, seed), hpke.HKDFSHA256(), hpke.AES128GCM(), info, f.hex(t, "sealed"))
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("crypto/hpke does not open the sealed value: %v", err)
		}
	default:
		t.Fatalf("unknown operation %q", op)
	}
}
