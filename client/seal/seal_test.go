package seal_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/seal"
	"github.com/xchat-im/xchat/spec/wire"
)

// fixture is a sender, a recipient device and the domain key that
// certifies the sender.
type fixture struct {
	domainKey ed25519.PrivateKey
	sender    seal.Sender
	from      wire.Mailbox
	body      wire.SenderCertBody
	priv      hpke.PrivateKey
	keys      wire.DeviceKeys
	pub       hpke.PublicKey
	to        wire.Mailbox
	id        []byte
	now       time.Time
}

var (
	testNow     = time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	testKEMPriv hpke.PrivateKey // generated once: X-Wing key generation is slow under -race
)

func init() {
	var err error
	testKEMPriv, err = hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		panic(err)
	}
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	f := &fixture{
		domainKey: ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xd0}, 32)),
		from:      wire.Mailbox{Address: "alice@example.org", Device: 2},
		priv:      testKEMPriv,
		to:        wire.Mailbox{Address: "bob@example.org", Device: 1},
		id:        bytes.Repeat([]byte{0x1d}, 16),
		now:       testNow,
	}
	sigKey := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5a}, 32))
	f.body = wire.SenderCertBody{Address: f.from.Address, Device: f.from.Device,
		SigKey: sigKey.Public().(ed25519.PublicKey), Expires: uint64(testNow.Add(time.Hour).Unix())}
	cert, err := wire.IssueSenderCert(f.domainKey, f.body)
	if err != nil {
		t.Fatal(err)
	}
	f.sender = seal.Sender{Cert: cert, SigKey: sigKey}
	f.pub = f.priv.PublicKey()
	f.keys = wire.DeviceKeys{SigKey: make([]byte, 32), KEM: wire.KEMXWing, HPKEKey: f.pub.Bytes()}
	if err := f.keys.Validate(); err != nil {
		t.Fatal(err)
	}
	return f
}

// domainKeys knows example.org only.
func (f *fixture) domainKeys(domain string) (ed25519.PublicKey, error) {
	if domain != "example.org" {
		return nil, errors.New("unknown domain")
	}
	return f.domainKey.Public().(ed25519.PublicKey), nil
}

func (f *fixture) seal(t testing.TB, payload []byte) []byte {
	t.Helper()
	sealed, err := seal.Seal(f.sender, f.id, f.to, f.keys, payload)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

func (f *fixture) open(sealed []byte) (*seal.Opened, error) {
	return seal.Open(f.priv, f.id, f.to, sealed, f.domainKeys, f.now)
}

// textPayload returns an encoded MLS payload whose (opaque) message is the
// text.
func textPayload(t testing.TB, text string) []byte {
	t.Helper()
	b, err := wire.Marshal(&wire.MLSPayload{Mode: wire.PayloadMLS, Message: []byte(text)})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// innerLen returns the length of the encoded inner item for a payload.
func innerLen(t testing.TB, f *fixture, payload []byte) int {
	b, err := wire.Marshal(&wire.Inner{Cert: f.sender.Cert, Signature: make([]byte, 64), Payload: payload})
	if err != nil {
		t.Fatal(err)
	}
	return len(b)
}

func TestXWingKEMID(t *testing.T) {
	if id := hpke.MLKEM768X25519().ID(); id != wire.KEMXWing {
		t.Fatalf("X-Wing KEM id %#x, want %#x", id, wire.KEMXWing)
	}
	if n := len(testKEMPriv.PublicKey().Bytes()); n != wire.XWingPublicKeyLen {
		t.Fatalf("X-Wing public key of %d bytes", n)
	}
}

func TestSealOpen(t *testing.T) {
	f := newFixture(t)
	payload := textPayload(t, "hello, bob")
	sealed := f.seal(t, payload)
	o, err := f.open(sealed)
	if err != nil {
		t.Fatal(err)
	}
	if o.From != f.from {
		t.Errorf("from %+v, want %+v", o.From, f.from)
	}
	if !bytes.Equal(o.Payload, payload) {
		t.Errorf("payload %x, want %x", o.Payload, payload)
	}
	if o.Cert.Address != f.body.Address || o.Cert.Device != f.body.Device ||
		!bytes.Equal(o.Cert.SigKey, f.body.SigKey) || o.Cert.Expires != f.body.Expires {
		t.Errorf("certificate %+v, want %+v", o.Cert, f.body)
	}
	if p, err := wire.DecodePayload(o.Payload); err != nil || string(p.(*wire.MLSPayload).Message) != "hello, bob" {
		t.Errorf("payload %+v, %v", p, err)
	}
	// Sealing is randomised.
	if again := f.seal(t, payload); bytes.Equal(again, sealed) {
		t.Error("two seals of the same payload are equal")
	}
}

// The sealed length is always len(enc) + the smallest bucket + 16.
func TestSealedLength(t *testing.T) {
	f := newFixture(t)
	base := innerLen(t, f, textPayload(t, ""))
	for _, want := range []int{256, 512, 1024, 2048, 65536} {
		// The longest text whose inner item (plus 0x80) fits the bucket,
		// and one byte more. The text length changes its own length
		// prefix at 24, 256 and 65536 bytes; search around the estimate.
		for _, target := range []int{want - 1, want} {
			n := target - base
			for innerLen(t, f, textPayload(t, strings.Repeat("x", n))) > target && n > 0 {
				n--
			}
			for innerLen(t, f, textPayload(t, strings.Repeat("x", n+1))) <= target {
				n++
			}
			for _, text := range []string{strings.Repeat("x", n), strings.Repeat("x", n+1)} {
				payload := textPayload(t, text)
				il := innerLen(t, f, payload)
				bucket := wire.Bucket(il + 1)
				sealed, err := seal.Seal(f.sender, f.id, f.to, f.keys, payload)
				if bucket == 0 {
					if !errors.Is(err, seal.ErrTooLarge) {
						t.Fatalf("inner of %d bytes: %v, want ErrTooLarge", il, err)
					}
					continue
				}
				if err != nil {
					t.Fatalf("inner of %d bytes: %v", il, err)
				}
				if len(sealed) != wire.XWingEncLen+bucket+wire.AEADTagLen {
					t.Fatalf("inner of %d bytes: sealed %d bytes, want %d", il, len(sealed), wire.XWingEncLen+bucket+wire.AEADTagLen)
				}
				if !wire.SealedLenOK(len(sealed), wire.XWingEncLen) {
					t.Fatalf("sealed length %d not valid", len(sealed))
				}
				if il+1 <= 256 && bucket != 256 || il+1 > 256 && bucket < il+1 || bucket >= 2*(il+1) && bucket > 256 {
					t.Fatalf("inner of %d bytes in bucket %d", il, bucket)
				}
			}
		}
	}
}

func TestSealTooLarge(t *testing.T) {
	f := newFixture(t)
	_, err := seal.Seal(f.sender, f.id, f.to, f.keys, textPayload(t, strings.Repeat("x", 64<<10)))
	if !errors.Is(err, seal.ErrTooLarge) {
		t.Fatalf("64 KiB text: %v, want ErrTooLarge", err)
	}
	// The largest inner item, 65535 bytes, still fits.
	n := 65535 - innerLen(t, f, textPayload(t, ""))
	for innerLen(t, f, textPayload(t, strings.Repeat("x", n))) > 65535 {
		n--
	}
	p := textPayload(t, strings.Repeat("x", n))
	if il := innerLen(t, f, p); il != 65535 {
		t.Fatalf("could not build an inner item of 65535 bytes (%d)", il)
	}
	sealed := f.seal(t, p)
	if len(sealed) != 66672 {
		t.Fatalf("largest envelope of %d bytes", len(sealed))
	}
	if o, err := f.open(sealed); err != nil || !bytes.Equal(o.Payload, p) {
		t.Fatalf("largest envelope: %v", err)
	}
	_, err = seal.Seal(f.sender, f.id, f.to, f.keys, textPayload(t, strings.Repeat("x", n+1)))
	if !errors.Is(err, seal.ErrTooLarge) {
		t.Fatalf("inner of 65536 bytes: %v, want ErrTooLarge", err)
	}
}

func TestSealBadRecipientKey(t *testing.T) {
	f := newFixture(t)
	for _, keys := range []wire.DeviceKeys{
		{KEM: 0x9999, HPKEKey: f.keys.HPKEKey},
		{KEM: wire.KEMXWing, HPKEKey: f.keys.HPKEKey[:100]},
	} {
		if _, err := seal.Seal(f.sender, f.id, f.to, keys, []byte{0xa0}); err == nil {
			t.Errorf("sealed to %#x key of %d bytes", keys.KEM, len(keys.HPKEKey))
		}
	}
}

// Any change to the sealed bytes makes them undecryptable.
func TestOpenTampered(t *testing.T) {
	f := newFixture(t)
	sealed := f.seal(t, textPayload(t, "x"))
	step := 1
	if testing.Short() {
		step = 97
	}
	for i := 0; i < len(sealed); i += step {
		for _, mask := range []byte{0x01, 0x80} {
			c := bytes.Clone(sealed)
			c[i] ^= mask
			if _, err := f.open(c); !errors.Is(err, seal.ErrDecrypt) {
				t.Fatalf("byte %d ^ %#x: %v, want ErrDecrypt", i, mask, err)
			}
		}
	}
	for _, c := range [][]byte{sealed[:len(sealed)-1], append(bytes.Clone(sealed), 0), sealed[:wire.XWingEncLen], nil} {
		if _, err := f.open(c); !errors.Is(err, seal.ErrDecrypt) {
			t.Fatalf("sealed of %d bytes: %v, want ErrDecrypt", len(c), err)
		}
	}
}

// The envelope id and recipient mailbox are bound through the HPKE info.
func TestOpenWrongBinding(t *testing.T) {
	f := newFixture(t)
	sealed := f.seal(t, textPayload(t, "x"))
	otherID := bytes.Clone(f.id)
	otherID[15] ^= 1
	tests := []struct {
		name string
		id   []byte
		to   wire.Mailbox
	}{
		{"other id", otherID, f.to},
		{"other device", f.id, wire.Mailbox{Address: f.to.Address, Device: f.to.Device + 1}},
		{"other address", f.id, wire.Mailbox{Address: "carol@example.org", Device: f.to.Device}},
		{"sender's own mailbox", f.id, f.from},
	}
	for _, tt := range tests {
		if _, err := seal.Open(f.priv, tt.id, tt.to, sealed, f.domainKeys, f.now); !errors.Is(err, seal.ErrDecrypt) {
			t.Errorf("%s: %v, want ErrDecrypt", tt.name, err)
		}
	}
	other, err := hpke.MLKEM768X25519().GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := seal.Open(other, f.id, f.to, sealed, f.domainKeys, f.now); !errors.Is(err, seal.ErrDecrypt) {
		t.Errorf("other private key: %v, want ErrDecrypt", err)
	}
}

func TestOpenCertificate(t *testing.T) {
	f := newFixture(t)
	payload := textPayload(t, "x")

	// Signed by another domain's key.
	g := newFixture(t)
	g.domainKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0xd1}, 32))
	cert, err := wire.IssueSenderCert(g.domainKey, f.body)
	if err != nil {
		t.Fatal(err)
	}
	g.sender.Cert = cert
	g.domainKey = f.domainKey // the recipient knows the real one
	if _, err := g.open(g.seal(t, payload)); !errors.Is(err, seal.ErrCertificate) {
		t.Errorf("certificate by another key: %v, want ErrCertificate", err)
	}

	// A domain whose key is unknown.
	h := newFixture(t)
	h.body.Address = "alice@elsewhere.example"
	h.sender.Cert, _ = wire.IssueSenderCert(h.domainKey, h.body)
	if _, err := h.open(h.seal(t, payload)); !errors.Is(err, seal.ErrNoDomainKey) {
		t.Errorf("unknown domain: %v, want ErrNoDomainKey", err)
	}

	// A certificate whose signature bytes are damaged.
	var sc wire.SenderCert
	if err := wire.Unmarshal(f.sender.Cert, &sc); err != nil {
		t.Fatal(err)
	}
	sc.Signature[0] ^= 1
	bad := newFixture(t)
	bad.sender.Cert, _ = wire.Marshal(&sc)
	if _, err := bad.open(bad.seal(t, payload)); !errors.Is(err, seal.ErrCertificate) {
		t.Errorf("damaged certificate signature: %v, want ErrCertificate", err)
	}
}

func TestOpenExpired(t *testing.T) {
	f := newFixture(t)
	sealed := f.seal(t, textPayload(t, "x"))
	expires := time.Unix(int64(f.body.Expires), 0)
	tests := []struct {
		now  time.Time
		want error
	}{
		{expires, nil},
		{expires.Add(seal.ClockSkew), nil}, // received-at ≤ expires×1000 + 300000
		{expires.Add(seal.ClockSkew + time.Millisecond), seal.ErrExpired},
		{expires.Add(seal.ClockSkew + time.Second), seal.ErrExpired},
		{expires.Add(30 * 24 * time.Hour), seal.ErrExpired},
	}
	for _, tt := range tests {
		_, err := seal.Open(f.priv, f.id, f.to, sealed, f.domainKeys, tt.now)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("at expiry %+v: %v, want %v", tt.now.Sub(expires), err, tt.want)
		}
	}
}

func TestOpenWrongSigner(t *testing.T) {
	f := newFixture(t)
	f.sender.SigKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x5b}, 32)) // not the cert's key
	if _, err := f.open(f.seal(t, textPayload(t, "x"))); !errors.Is(err, seal.ErrSignature) {
		t.Fatalf("signature by another key: %v, want ErrSignature", err)
	}
}

// A certificate swapped for another one of the same signature key, which
// the domain issued for another address (a colluding or careless domain),
// must not make the envelope open as that address: the sender signature
// covers the certificate (spec/07-envelopes.md section 7.6).
func TestOpenSwappedCertificate(t *testing.T) {
	f := newFixture(t)
	payload := textPayload(t, "x")
	var in wire.Inner
	plain, err := hpke.Open(f.priv, hpke.HKDFSHA256(), hpke.AES128GCM(), wire.EnvelopeInfo(f.id, f.to), f.seal(t, payload))
	if err != nil {
		t.Fatal(err)
	}
	unpadded := bytes.TrimRight(plain, "\x00")
	if err := wire.Unmarshal(unpadded[:len(unpadded)-1], &in); err != nil {
		t.Fatal(err)
	}
	for _, b := range []wire.SenderCertBody{
		{Address: "mallory@example.org", Device: 7, SigKey: f.body.SigKey, Expires: f.body.Expires},
		{Address: f.body.Address, Device: f.body.Device + 1, SigKey: f.body.SigKey, Expires: f.body.Expires},
		{Address: f.body.Address, Device: f.body.Device, SigKey: f.body.SigKey, Expires: f.body.Expires + 1},
	} {
		other, err := wire.IssueSenderCert(f.domainKey, b)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := seal.VerifyCert(other, f.domainKeys, f.now); err != nil {
			t.Fatalf("the other certificate does not verify on its own: %v", err)
		}
		swapped := in
		swapped.Cert = other
		inner := mustMarshal(t, &swapped)
		o, err := f.open(f.sealPlain(t, pad(inner, 0x80, wire.Bucket(len(inner)+1))))
		if !errors.Is(err, seal.ErrSignature) {
			t.Errorf("certificate swapped for one of %s device %d expiring %d: opened as %+v, %v; want ErrSignature",
				b.Address, b.Device, b.Expires, o, err)
		}
	}
}

// sealPlain seals a padded plaintext directly, as a broken or malicious
// sender could.
func (f *fixture) sealPlain(t testing.TB, plain []byte) []byte {
	t.Helper()
	sealed, err := hpke.Seal(f.pub, hpke.HKDFSHA256(), hpke.AES128GCM(), wire.EnvelopeInfo(f.id, f.to), plain)
	if err != nil {
		t.Fatal(err)
	}
	return sealed
}

// innerBytes returns a correctly signed encoded inner item.
func innerBytes(t testing.TB, f *fixture, payload []byte) []byte {
	b, err := wire.Marshal(&wire.Inner{
		Cert:      f.sender.Cert,
		Signature: ed25519.Sign(f.sender.SigKey, wire.SealedMessage(f.id, f.to, f.sender.Cert, payload)),
		Payload:   payload,
	})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func pad(inner []byte, marker byte, size int) []byte {
	p := make([]byte, size)
	copy(p, inner)
	if len(inner) < size {
		p[len(inner)] = marker
	}
	return p
}

func TestOpenPadding(t *testing.T) {
	f := newFixture(t)
	payload := textPayload(t, "x")
	inner := innerBytes(t, f, payload)
	tests := []struct {
		name  string
		plain []byte
		want  error
	}{
		{"correct", pad(inner, 0x80, 256), nil},
		{"larger bucket than needed", pad(inner, 0x80, 1024), nil},
		{"no 0x80", pad(inner, 0x00, 256), seal.ErrPadding},
		{"0x81 instead of 0x80", pad(inner, 0x81, 256), seal.ErrPadding},
		{"all zeros", make([]byte, 256), seal.ErrPadding},
		{"non-zero after 0x80", func() []byte { p := pad(inner, 0x80, 256); p[255] = 1; return p }(), seal.ErrPadding},
		{"nothing but 0x80", pad(nil, 0x80, 256), seal.ErrMalformed},
		{"two 0x80", pad(append(bytes.Clone(inner), 0x80), 0x80, 256), seal.ErrMalformed},
		{"not a bucket length", pad(inner, 0x80, 300), seal.ErrPadding},
		{"garbage inner", pad([]byte{0xff, 0x00}, 0x80, 256), seal.ErrMalformed},
		{"noncanonical inner", pad(append([]byte{0xb8, 0x03}, inner[1:]...), 0x80, 256), seal.ErrMalformed},
		{"inner missing the signature", pad(mustMarshal(t, map[uint64][]byte{1: f.sender.Cert, 3: payload}), 0x80, 256), seal.ErrMalformed},
		{"inner with a float", pad(append(bytes.Clone(inner), 0xf9, 0, 0), 0x80, 256), seal.ErrMalformed},
	}
	for _, tt := range tests {
		_, err := f.open(f.sealPlain(t, tt.plain))
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

func mustMarshal(t testing.TB, v any) []byte {
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestVerifyCert(t *testing.T) {
	f := newFixture(t)
	if _, err := seal.VerifyCert(f.sender.Cert, f.domainKeys, f.now); err != nil {
		t.Fatal(err)
	}
	issue := func(body wire.SenderCertBody) []byte {
		b, err := wire.IssueSenderCert(f.domainKey, body)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	body := func(fn func(*wire.SenderCertBody)) wire.SenderCertBody { b := f.body; fn(&b); return b }
	tests := []struct {
		name string
		cert []byte
		want error
	}{
		{"not CBOR", []byte{0xff}, seal.ErrMalformed},
		{"empty", nil, seal.ErrMalformed},
		{"body not CBOR", mustMarshal(t, &wire.SenderCert{Body: []byte{0x18}, Signature: make([]byte, 64)}), seal.ErrMalformed},
		{"invalid address", issue(body(func(b *wire.SenderCertBody) { b.Address = "Alice@example.org" })), seal.ErrMalformed},
		{"device 0", issue(body(func(b *wire.SenderCertBody) { b.Device = 0 })), seal.ErrMalformed},
		{"short signature key", issue(body(func(b *wire.SenderCertBody) { b.SigKey = b.SigKey[:31] })), seal.ErrMalformed},
		{"short signature", mustMarshal(t, &wire.SenderCert{Body: mustMarshal(t, &f.body), Signature: make([]byte, 63)}), seal.ErrCertificate},
		{"expired", issue(body(func(b *wire.SenderCertBody) { b.Expires = uint64(testNow.Add(-time.Hour).Unix()) })), seal.ErrExpired},
		{"expiry beyond int64", issue(body(func(b *wire.SenderCertBody) { b.Expires = 1 << 63 })), nil},
	}
	for _, tt := range tests {
		_, err := seal.VerifyCert(tt.cert, f.domainKeys, f.now)
		if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
			t.Errorf("%s: %v, want %v", tt.name, err, tt.want)
		}
	}
}

// openErrors are the errors Open wraps; each failure wraps exactly one.
var openErrors = []error{seal.ErrDecrypt, seal.ErrPadding, seal.ErrMalformed, seal.ErrNoDomainKey,
	seal.ErrCertificate, seal.ErrExpired, seal.ErrSignature}

// checkOpenError fails unless err wraps exactly one of Open's errors and
// that one is not excluded.
func checkOpenError(t *testing.T, err error, excluded ...error) {
	t.Helper()
	var got []error
	for _, s := range openErrors {
		if errors.Is(err, s) {
			got = append(got, s)
		}
	}
	if len(got) != 1 {
		t.Fatalf("error %v wraps %d of Open's errors, want 1", err, len(got))
	}
	for _, x := range excluded {
		if got[0] == x {
			t.Fatalf("error %v: not expected here", err)
		}
	}
}

// patch returns a copy of base with data written at off (modulo the
// length), truncated there when cut is set. Fuzz inputs stay small, which
// keeps the fuzzer's quadratic minimisation short, yet reach every byte of
// a valid sealed value or plaintext.
func patch(base []byte, off uint16, cut bool, data []byte) []byte {
	o := int(off) % (len(base) + 1)
	out := append(bytes.Clone(base[:o]), data...)
	if !cut && o+len(data) < len(base) {
		out = append(out, base[o+len(data):]...)
	}
	return out
}

// FuzzOpen opens sealed bytes: a valid sealed value patched by the fuzzer
// (mode 1, or cut short: mode 2), or raw fuzzer bytes (mode 0). Open never
// panics, fails only with the package's errors, and opens nothing but the
// untouched value.
func FuzzOpen(f *testing.F) {
	fx := newFixture(f)
	sealed := fx.seal(f, textPayload(f, "x"))
	f.Add(byte(1), uint16(0), []byte{})        // the valid value
	f.Add(byte(1), uint16(0), []byte{0x00})    // first byte of enc
	f.Add(byte(1), uint16(1119), []byte{0x01}) // last byte of enc
	f.Add(byte(1), uint16(1120), []byte{0xff}) // first byte of the ciphertext
	f.Add(byte(1), uint16(1391), []byte{0x00}) // last byte of the tag
	f.Add(byte(2), uint16(1391), []byte{})     // tag cut short
	f.Add(byte(2), uint16(1120), []byte{})     // enc only
	f.Add(byte(2), uint16(1136), bytes.Repeat([]byte{0}, 16))
	f.Add(byte(0), uint16(0), []byte{}) // empty
	f.Add(byte(0), uint16(0), make([]byte, 64))
	f.Fuzz(func(t *testing.T, mode byte, off uint16, data []byte) {
		var b []byte
		switch mode % 3 {
		case 0:
			b = data
		case 1:
			b = patch(sealed, off, false, data)
		case 2:
			b = patch(sealed, off, true, data)
		}
		o, err := fx.open(b)
		if bytes.Equal(b, sealed) {
			if err != nil {
				t.Fatalf("valid value: %v", err)
			}
			return
		}
		if err == nil {
			t.Fatalf("opened forged sealed bytes: %+v", o)
		}
		if !errors.Is(err, seal.ErrDecrypt) {
			t.Fatalf("modified sealed bytes: %v, want ErrDecrypt", err)
		}
	})
}

// FuzzOpenPlaintext seals plaintexts correctly, so that the fuzzer reaches
// unpadding, the inner item and the certificate: the fuzzer's bytes as an
// inner item, correctly padded (mode 0); a valid padded plaintext patched
// (mode 1); or the raw plaintext (mode 2). Open never panics, fails with
// exactly one of its errors, never ErrDecrypt, and what opens names the
// certified sender.
func FuzzOpenPlaintext(f *testing.F) {
	fx := newFixture(f)
	payload := textPayload(f, "x")
	inner := innerBytes(f, fx, payload)
	valid := pad(inner, 0x80, 256)
	f.Add(byte(0), uint16(0), inner)
	f.Add(byte(0), uint16(0), []byte{0xa0})
	f.Add(byte(0), uint16(0), []byte{})
	f.Add(byte(1), uint16(0), []byte{})
	f.Add(byte(1), uint16(len(inner)), []byte{0x00})
	f.Add(byte(1), uint16(len(inner)), []byte{0x81})
	f.Add(byte(1), uint16(255), []byte{0x01})
	f.Add(byte(1), uint16(40), []byte{0x00}) // inside the certificate
	f.Add(byte(2), uint16(0), append(bytes.Clone(inner), 0x80))
	// A certificate of a domain whose key the recipient cannot get.
	elsewhere := newFixture(f)
	elsewhere.body.Address = "alice@elsewhere.example"
	elsewhere.sender.Cert = mustMarshal(f, &wire.SenderCert{Body: mustMarshal(f, &elsewhere.body), Signature: make([]byte, 64)})
	f.Add(byte(0), uint16(0), innerBytes(f, elsewhere, payload))
	f.Fuzz(func(t *testing.T, mode byte, off uint16, data []byte) {
		var plain []byte
		switch mode % 3 {
		case 0:
			if len(data) >= 4096 {
				return
			}
			plain = pad(data, 0x80, wire.Bucket(len(data)+1))
		case 1:
			plain = patch(valid, off, false, data)
		case 2:
			plain = data
		}
		o, err := fx.open(fx.sealPlain(t, plain))
		if err != nil {
			// The plaintext was sealed correctly to the right key.
			checkOpenError(t, err, seal.ErrDecrypt)
			return
		}
		if n := len(plain); n != wire.Bucket(n) {
			t.Fatalf("opened a plaintext of %d bytes", n)
		}
		// Whatever opens names the certified sender.
		if o.From != fx.from {
			t.Fatalf("opened as from %+v", o.From)
		}
	})
}

func BenchmarkSeal(b *testing.B) {
	f := newFixture(b)
	payload := textPayload(b, strings.Repeat("x", 1024))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := seal.Seal(f.sender, f.id, f.to, f.keys, payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkOpen(b *testing.B) {
	f := newFixture(b)
	sealed := f.seal(b, textPayload(b, strings.Repeat("x", 1024)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.open(sealed); err != nil {
			b.Fatal(err)
		}
	}
}

// A relayed envelope's certificate must be of the relaying domain
// (spec/07-envelopes.md section 7.8 step 6); a local one's may be of any.
func TestCheckOrigin(t *testing.T) {
	o := &seal.Opened{Cert: wire.SenderCertBody{Address: "alice@a.example"}}
	for _, tt := range []struct {
		origin string
		ok     bool
	}{{"", true}, {"a.example", true}, {"b.example", false}, {"example", false}} {
		err := seal.CheckOrigin(o, tt.origin)
		if tt.ok && err != nil || !tt.ok && !errors.Is(err, seal.ErrCertificate) {
			t.Errorf("certificate of a.example relayed by %q: %v", tt.origin, err)
		}
	}
}
