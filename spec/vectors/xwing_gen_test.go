package vectors_test

import (
	"bytes"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/hpke"
	"crypto/mlkem"
	"crypto/mlkem/mlkemtest"
	"crypto/sha256"
	"crypto/sha3"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

// ------------------------------------------------------------------ xwing

// The X-Wing KEM of spec/01-conventions.md section 1.11, written out from
// its definition (draft-connolly-cfrg-xwing-kem-10 section 5, with the HPKE
// DeriveKeyPair of draft-ietf-hpke-pq-03 section 4) on top of crypto/mlkem
// and crypto/ecdh. Encapsulation takes its randomness as an argument, so the
// vectors fix it; crypto/hpke, which draws it itself, checks every value
// these functions produce.

const (
	xwingID         = 0x647a
	xwingSeedLen    = 32
	xwingESeedLen   = 64
	xwingPublicLen  = mlkem.EncapsulationKeySize768 + 32
	xwingCipherLen  = mlkem.CiphertextSize768 + 32
	hpkeKDFSHA256   = 0x0001
	hpkeAEADAES128  = 0x0001
	hpkeAES128Key   = 16
	hpkeNonceLen    = 12
	hpkeSHA256Len   = 32
	xwingLabelASCII = `\.//^\`
)

// xwingExpand is SHAKE256(seed, 96 bytes): the ML-KEM-768 seed d || z
// (64 bytes), then the X25519 private key (32 bytes).
func xwingExpand(seed []byte) []byte {
	return sha3.SumSHAKE256(seed, 96)
}

// xwingPublic returns the public key of a private key (its seed):
// the ML-KEM-768 encapsulation key, then the X25519 public key.
func xwingPublic(seed []byte) ([]byte, error) {
	if len(seed) != xwingSeedLen {
		return nil, fmt.Errorf("x-wing seed of %d bytes", len(seed))
	}
	x := xwingExpand(seed)
	dk, err := mlkem.NewDecapsulationKey768(x[:64])
	if err != nil {
		return nil, err
	}
	sk, err := ecdh.X25519().NewPrivateKey(x[64:])
	if err != nil {
		return nil, err
	}
	return append(dk.EncapsulationKey().Bytes(), sk.PublicKey().Bytes()...), nil
}

// xwingEncapsulate is the derandomised encapsulation: eseed[:32] is the
// ML-KEM-768 randomness m, eseed[32:] the X25519 ephemeral private key.
func xwingEncapsulate(pk, eseed []byte) (ct, ss []byte, err error) {
	if len(pk) != xwingPublicLen || len(eseed) != xwingESeedLen {
		return nil, nil, fmt.Errorf("x-wing encapsulation: public key of %d bytes, eseed of %d", len(pk), len(eseed))
	}
	ek, err := mlkem.NewEncapsulationKey768(pk[:mlkem.EncapsulationKeySize768])
	if err != nil {
		return nil, nil, err
	}
	ssM, ctM, err := mlkemtest.Encapsulate768(ek, eseed[:32])
	if err != nil {
		return nil, nil, err
	}
	pkX, err := ecdh.X25519().NewPublicKey(pk[mlkem.EncapsulationKeySize768:])
	if err != nil {
		return nil, nil, err
	}
	ekX, err := ecdh.X25519().NewPrivateKey(eseed[32:])
	if err != nil {
		return nil, nil, err
	}
	ssX, err := ekX.ECDH(pkX)
	if err != nil {
		return nil, nil, err
	}
	ctX := ekX.PublicKey().Bytes()
	return append(ctM, ctX...), xwingCombine(ssM, ssX, ctX, pkX.Bytes()), nil
}

// xwingCombine is the X-Wing combiner: SHA3-256 of the two shared secrets,
// the X25519 ciphertext and public key, and the label last.
func xwingCombine(ssM, ssX, ctX, pkX []byte) []byte {
	h := sha3.New256()
	h.Write(ssM)
	h.Write(ssX)
	h.Write(ctX)
	h.Write(pkX)
	h.Write([]byte(xwingLabelASCII))
	return h.Sum(nil)
}

// xwingDeriveSeed is the first step of HPKE DeriveKeyPair for X-Wing:
// SHAKE256.LabeledDerive(ikm, "DeriveKeyPair", "", 32) with the KEM's
// suite_id "KEM" || I2OSP(0x647a, 2). The key pair is that of the seed.
func xwingDeriveSeed(ikm []byte) []byte {
	const label = "DeriveKeyPair"
	in := append([]byte(nil), ikm...)
	in = append(in, "HPKE-v1"...)
	in = append(in, "KEM"...)
	in = binary.BigEndian.AppendUint16(in, xwingID)
	in = binary.BigEndian.AppendUint16(in, uint16(len(label)))
	in = append(in, label...)
	in = binary.BigEndian.AppendUint16(in, xwingSeedLen)
	return sha3.SumSHAKE256(in, xwingSeedLen)
}

// hpkeSchedule is the RFC 9180 base-mode key schedule of the suite
// (X-Wing, HKDF-SHA256, AES-128-GCM) for a KEM shared secret and an info.
func hpkeSchedule(ss, info []byte) (key, nonce, exporter []byte, err error) {
	suite := []byte("HPKE")
	suite = binary.BigEndian.AppendUint16(suite, xwingID)
	suite = binary.BigEndian.AppendUint16(suite, hpkeKDFSHA256)
	suite = binary.BigEndian.AppendUint16(suite, hpkeAEADAES128)
	extract := func(salt []byte, label string, ikm []byte) ([]byte, error) {
		in := append(append(append([]byte("HPKE-v1"), suite...), label...), ikm...)
		return hkdf.Extract(sha256.New, in, salt)
	}
	expand := func(prk []byte, label string, info []byte, n int) ([]byte, error) {
		in := binary.BigEndian.AppendUint16(nil, uint16(n))
		in = append(append(append(append(in, "HPKE-v1"...), suite...), label...), info...)
		return hkdf.Expand(sha256.New, prk, string(in), n)
	}
	pskIDHash, err1 := extract(nil, "psk_id_hash", nil)
	infoHash, err2 := extract(nil, "info_hash", info)
	context := append(append([]byte{0x00}, pskIDHash...), infoHash...) // mode_base
	secret, err3 := extract(ss, "secret", nil)
	key, err4 := expand(secret, "key", context, hpkeAES128Key)
	nonce, err5 := expand(secret, "base_nonce", context, hpkeNonceLen)
	exporter, err6 := expand(secret, "exp", context, hpkeSHA256Len)
	return key, nonce, exporter, errors.Join(err1, err2, err3, err4, err5, err6)
}

// hpkeExport is Context.Export(exporter_context, n) of RFC 9180 for the
// suite.
func hpkeExport(exporter []byte, exporterContext string, n int) ([]byte, error) {
	suite := []byte("HPKE")
	suite = binary.BigEndian.AppendUint16(suite, xwingID)
	suite = binary.BigEndian.AppendUint16(suite, hpkeKDFSHA256)
	suite = binary.BigEndian.AppendUint16(suite, hpkeAEADAES128)
	in := binary.BigEndian.AppendUint16(nil, uint16(n))
	in = append(append(append(append(in, "HPKE-v1"...), suite...), "sec"...), exporterContext...)
	return hkdf.Expand(sha256.New, exporter, string(in), n)
}

// goDecapsulates checks with crypto/hpke that the private key seed opens
// the X-Wing ciphertext ct to the shared secret ss: both sides' exporter
// output for the same info must agree.
func goDecapsulates(seed, ct, ss []byte) error {
	k, err := hpke.MLKEM768X25519().NewPrivateKey(seed)
	if err != nil {
		return err
	}
	r, err := hpke.NewRecipient(ct, k, hpke.HKDFSHA256(), hpke.AES128GCM(), nil)
	if err != nil {
		return err
	}
	got, err := r.Export("xchat vectors", 32)
	if err != nil {
		return err
	}
	_, _, exporter, err := hpkeSchedule(ss, nil)
	if err != nil {
		return err
	}
	want, err := hpkeExport(exporter, "xchat vectors", 32)
	if err != nil {
		return err
	}
	if !bytes.Equal(got, want) {
		return errors.New("crypto/hpke decapsulates to another shared secret")
	}
	return nil
}

// xwingVectors are the vectors of the default suite's KEM: a private key
// (seed) to its public key, HPKE DeriveKeyPair as MLS uses it, encapsulation
// with fixed randomness, and an HPKE seal with fixed randomness, each
// checked against crypto/hpke while generating.
func xwingVectors(t *testing.T) []*vector {
	seq := func(n int, start, step byte) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = start + byte(i)*step
		}
		return b
	}
	var vs []*vector
	const conv, mls, env = "01-conventions.md", "09-mls.md", "07-envelopes.md"

	seeds := []struct {
		desc string
		seed []byte
	}{
		{"x-wing key from seed 00 to 1f", seq(32, 0x00, 1)},
		{"x-wing key from a seed of ff bytes", bytes.Repeat([]byte{0xff}, 32)},
		{"x-wing key from seed 7f 7d 7b", seq(32, 0x7f, 0xfe)},
	}
	for _, c := range seeds {
		pk, err := xwingPublic(c.seed)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pk, xwingKey(t, c.seed).PublicKey().Bytes()) {
			t.Fatalf("%s: crypto/hpke derives another public key", c.desc)
		}
		vs = append(vs, newVector("xwing", "1.11", conv, c.desc, "valid").
			add("operation", "keygen").hex("seed", c.seed).hex("expanded", xwingExpand(c.seed)).hex("public-key", pk))
	}

	for _, c := range []struct {
		desc string
		ikm  []byte
	}{
		{"derive key pair from 32 bytes", seq(32, 0x20, 1)},
		{"derive key pair from 64 bytes", seq(64, 0x80, 1)},
	} {
		seed := xwingDeriveSeed(c.ikm)
		pk, err := xwingPublic(seed)
		if err != nil {
			t.Fatal(err)
		}
		k, err := hpke.MLKEM768X25519().DeriveKeyPair(c.ikm)
		if err != nil {
			t.Fatal(err)
		}
		if sk, _ := k.Bytes(); !bytes.Equal(sk, seed) || !bytes.Equal(k.PublicKey().Bytes(), pk) {
			t.Fatalf("%s: crypto/hpke derives another key pair", c.desc)
		}
		vs = append(vs, newVector("xwing", "9.2", mls, c.desc, "valid").
			add("operation", "derive-key-pair").hex("ikm", c.ikm).hex("seed", seed).hex("public-key", pk))
	}

	for _, c := range []struct {
		desc  string
		seed  []byte
		eseed []byte
	}{
		{"encapsulation with eseed 40 to 7f", seeds[0].seed, seq(64, 0x40, 1)},
		{"encapsulation with an eseed of zeros", seeds[0].seed, make([]byte, 64)},
		{"encapsulation to the ff key", seeds[1].seed, seq(64, 0xc0, 1)},
	} {
		pk, err := xwingPublic(c.seed)
		if err != nil {
			t.Fatal(err)
		}
		ct, ss, err := xwingEncapsulate(pk, c.eseed)
		if err != nil {
			t.Fatal(err)
		}
		if err := goDecapsulates(c.seed, ct, ss); err != nil {
			t.Fatalf("%s: %v", c.desc, err)
		}
		vs = append(vs, newVector("xwing", "1.11", conv, c.desc, "valid").
			add("operation", "encapsulate").hex("seed", c.seed).hex("public-key", pk).
			hex("eseed", c.eseed).hex("ciphertext", ct).hex("shared-secret", ss))
	}

	id := seq(16, 0x10, 1)
	for _, c := range []struct {
		desc  string
		to    wire.Mailbox
		text  string
		size  int
		eseed []byte
	}{
		{"hpke seal of a 256-byte plaintext", wire.Mailbox{Address: "bob@example.org", Device: 1}, "hello, bob", 256, seq(64, 0x01, 3)},
		{"hpke seal of a 1024-byte plaintext", wire.Mailbox{Address: "carol@c.example", Device: 4294967295}, "hello, carol", 1024, seq(64, 0xa0, 1)},
	} {
		seed := seeds[2].seed
		pk, err := xwingPublic(seed)
		if err != nil {
			t.Fatal(err)
		}
		// A padded plaintext as section 7.5 builds one; its content is
		// opaque to HPKE.
		plain := make([]byte, c.size)
		copy(plain, c.text)
		plain[len(c.text)] = 0x80
		info := wire.EnvelopeInfo(id, c.to)
		enc, ss, err := xwingEncapsulate(pk, c.eseed)
		if err != nil {
			t.Fatal(err)
		}
		key, nonce, _, err := hpkeSchedule(ss, info)
		if err != nil {
			t.Fatal(err)
		}
		ct, err := aesGCMSeal(key, nonce, plain)
		if err != nil {
			t.Fatal(err)
		}
		sealed := append(append([]byte(nil), enc...), ct...)
		if got, err := hpke.Open(xwingKey(t, seed), hpke.HKDFSHA256(), hpke.AES128GCM(), info, sealed); err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("%s: crypto/hpke cannot open it: %v", c.desc, err)
		}
		vs = append(vs, newVector("xwing", "7.4", env, c.desc, "valid").
			add("operation", "seal").hex("seed", seed).hex("public-key", pk).hex("info", info).hex("aad", nil).
			hex("plaintext", plain).hex("eseed", c.eseed).hex("enc", enc).hex("shared-secret", ss).
			hex("key", key).hex("base-nonce", nonce).hex("ciphertext", ct).hex("sealed", sealed))
	}
	return vs
}
