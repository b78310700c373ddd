package vectors_test

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/hpke"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/seal"
	"github.com/xchat-im/xchat/spec/wire"
)

// file is a parsed vector file.
type file struct {
	path   string
	fields map[string]string
}

func (f *file) get(t *testing.T, key string) string {
	t.Helper()
	v, ok := f.fields[key]
	if !ok {
		t.Fatalf("%s: no %q line", f.path, key)
	}
	return v
}

func (f *file) hex(t *testing.T, key string) []byte {
	t.Helper()
	b, err := hex.DecodeString(f.get(t, key))
	if err != nil {
		t.Fatalf("%s: %s: %v", f.path, key, err)
	}
	return b
}

func (f *file) uint(t *testing.T, key string) uint64 {
	t.Helper()
	n, err := strconv.ParseUint(f.get(t, key), 10, 64)
	if err != nil {
		t.Fatalf("%s: %s: %v", f.path, key, err)
	}
	return n
}

// parse reads the format of spec/vectors/README.md.
func parse(path string) (*file, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	f := &file{path: path, fields: make(map[string]string)}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<22)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		key, value, ok := strings.Cut(line, ": ")
		if !ok {
			if k, found := strings.CutSuffix(line, ":"); found { // empty value
				key, value, ok = k, "", true
			}
		}
		if !ok || key == "" || strings.ContainsAny(key, " \t") {
			return nil, fmt.Errorf("%s:%d: not a key: value line", path, n)
		}
		if _, dup := f.fields[key]; dup {
			return nil, fmt.Errorf("%s:%d: second %q line", path, n, key)
		}
		f.fields[key] = value
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, k := range []string{"description", "spec", "expect"} {
		if _, ok := f.fields[k]; !ok {
			return nil, fmt.Errorf("%s: no %q line", path, k)
		}
	}
	return f, nil
}

// outcome turns a result into the words of an expect line.
func outcome(err error) string {
	if err == nil {
		return "valid"
	}
	return "invalid " + wire.CodeOf(err).String()
}

// The failures of envelope vectors (section 7.8 steps) and the seal
// errors they are.
var failureErr = map[string]error{
	"decrypt":               seal.ErrDecrypt,
	"unpad":                 seal.ErrPadding,
	"inner":                 seal.ErrMalformed,
	"certificate":           seal.ErrMalformed,
	"certificate-signature": seal.ErrCertificate,
	"expiry":                seal.ErrExpired,
	"signature":             seal.ErrSignature,
}

func failureOf(err error) error {
	for _, e := range []error{seal.ErrDecrypt, seal.ErrPadding, seal.ErrMalformed, seal.ErrCertificate, seal.ErrExpired, seal.ErrSignature} {
		if errors.Is(err, e) {
			return e
		}
	}
	return err
}

// minimum counts guard against vectors lost by accident.
var minimum = map[string]int{"framing": 15, "cbor": 25, "requests": 20, "envelope": 10, "token": 3, "address": 20, "derivations": 10, "xwing": 10}

func TestVectors(t *testing.T) {
	for _, dir := range generatedDirs {
		paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
		if err != nil {
			t.Fatal(err)
		}
		if len(paths) < minimum[dir] {
			t.Errorf("%s: %d vectors, want at least %d", dir, len(paths), minimum[dir])
		}
		for _, path := range paths {
			t.Run(path, func(t *testing.T) {
				f, err := parse(path)
				if err != nil {
					t.Fatal(err)
				}
				// The file name starts with the section of its spec line.
				spec := strings.Fields(f.get(t, "spec"))
				if len(spec) != 2 || !strings.HasPrefix(filepath.Base(path), spec[1]+"-") {
					t.Fatalf("spec %q does not match the file name", f.get(t, "spec"))
				}
				switch dir {
				case "framing":
					checkFraming(t, f)
				case "cbor":
					checkCBOR(t, f)
				case "requests":
					checkRequest(t, f)
				case "envelope":
					checkEnvelope(t, f)
				case "token":
					checkToken(t, f)
				case "address":
					checkAddress(t, f)
				case "derivations":
					checkDerivation(t, f)
				case "xwing":
					checkXWing(t, f)
				}
			})
		}
	}
}

func expectOutcome(t *testing.T, f *file, got error) {
	t.Helper()
	if want := f.get(t, "expect"); outcome(got) != want {
		t.Fatalf("%s: got %q (%v), want %q", f.get(t, "description"), outcome(got), got, want)
	}
}

// readRequestStream reads a request stream (section 3.2): exactly one
// frame, then the end of the stream.
func readRequestStream(stream []byte) ([]byte, error) {
	r := bytes.NewReader(stream)
	p, err := wire.ReadFrame(r, wire.MaxFrame)
	if errors.Is(err, wire.ErrEndOfStream) {
		return nil, wire.Errorf(wire.CodeMalformed, "stream ended without a frame")
	}
	if err != nil {
		return nil, err
	}
	if r.Len() > 0 {
		return nil, wire.Errorf(wire.CodeMalformed, "bytes after the frame")
	}
	return p, nil
}

func checkFraming(t *testing.T, f *file) {
	p, err := readRequestStream(f.hex(t, "stream"))
	expectOutcome(t, f, err)
	if err == nil && !bytes.Equal(p, f.hex(t, "payload")) {
		t.Fatalf("payload %x, want %s", p, f.get(t, "payload"))
	}
}

func checkCBOR(t *testing.T, f *file) {
	b := f.hex(t, "item")
	err := wire.CheckDeterministic(b)
	expectOutcome(t, f, err)
	if err == nil {
		var v any
		if err := wire.Unmarshal(b, &v); err != nil {
			t.Fatalf("accepted, but Unmarshal fails: %v", err)
		}
	}
}

func checkRequest(t *testing.T, f *file) {
	p, err := readRequestStream(f.hex(t, "frame"))
	if err != nil {
		t.Fatalf("frame: %v", err)
	}
	decode := wire.DecodeRequest
	if f.get(t, "alpn") == wire.ALPNFederation {
		decode = wire.DecodeFedRequest
	}
	r, err := decode(p)
	expectOutcome(t, f, err)
	if err != nil {
		return
	}
	typ, _, _ := strings.Cut(f.get(t, "type"), " ")
	if strconv.FormatUint(wire.RequestType(r), 10) != typ {
		t.Fatalf("decoded a %T, want type %s", r, typ)
	}
}

func checkEnvelope(t *testing.T, f *file) {
	priv, err := hpke.MLKEM768X25519().NewPrivateKey(f.hex(t, "recipient-hpke-seed"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(priv.PublicKey().Bytes(), f.hex(t, "recipient-hpke-public")) {
		t.Fatal("recipient-hpke-public is not the public key of recipient-hpke-seed")
	}
	domain, domainKey := f.get(t, "domain"), ed25519.PublicKey(f.hex(t, "domain-public-key"))
	keys := func(d string) (ed25519.PublicKey, error) {
		if d != domain {
			return nil, fmt.Errorf("no key for %s", d)
		}
		return domainKey, nil
	}
	to := wire.Mailbox{Address: f.get(t, "recipient-address"), Device: uint32(f.uint(t, "recipient-device"))}
	received := time.UnixMilli(int64(f.uint(t, "received-at")))
	o, err := seal.Open(priv, f.hex(t, "envelope-id"), to, f.hex(t, "sealed"), keys, received)

	if f.get(t, "expect") == "valid" {
		if err != nil {
			t.Fatalf("%s: %v", f.get(t, "description"), err)
		}
		from := wire.Mailbox{Address: f.get(t, "sender-address"), Device: uint32(f.uint(t, "sender-device"))}
		if o.From != from {
			t.Fatalf("opened from %+v, want %+v", o.From, from)
		}
		if !bytes.Equal(o.Payload, f.hex(t, "payload")) {
			t.Fatalf("opened payload %x, want %s", o.Payload, f.get(t, "payload"))
		}
		if p, err := wire.DecodePayload(o.Payload); err != nil {
			t.Fatalf("payload %x: %v", o.Payload, err)
		} else if _, ok := p.(*wire.MLSPayload); !ok {
			t.Fatalf("payload %T", p)
		}
		return
	}
	if f.get(t, "expect") != "invalid drop" {
		t.Fatalf("envelope vector expects %q", f.get(t, "expect"))
	}
	want, ok := failureErr[f.get(t, "failure")]
	if !ok {
		t.Fatalf("unknown failure %q", f.get(t, "failure"))
	}
	if err == nil || failureOf(err) != want {
		t.Fatalf("%s: got %v, want %v", f.get(t, "description"), err, want)
	}
}

func checkToken(t *testing.T, f *file) {
	v := wire.TokenVerifier(f.hex(t, "token"))
	if !bytes.Equal(v[:], f.hex(t, "verifier")) {
		t.Fatalf("verifier %x, want %s", v, f.get(t, "verifier"))
	}
	expectOutcome(t, f, nil)
}

func checkAddress(t *testing.T, f *file) {
	in := string(f.hex(t, "input"))
	switch op := f.get(t, "operation"); op {
	case "validate":
		expectOutcome(t, f, wire.ValidateAddress(in))
	case "normalize":
		out, err := wire.NormalizeAddress(in)
		expectOutcome(t, f, err)
		if err == nil && out != string(f.hex(t, "normalized")) {
			t.Fatalf("normalised to %q, want %q", out, f.hex(t, "normalized"))
		}
	default:
		t.Fatalf("unknown operation %q", op)
	}
}

// Every vector file is in a known directory.
func TestNoStrayVectors(t *testing.T) {
	known := make(map[string]bool)
	for _, d := range generatedDirs {
		known[d] = true
	}
	err := filepath.WalkDir(".", func(path string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(path, ".txt") && !known[filepath.Dir(path)] {
			t.Errorf("vector %s is in no known directory", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
