package vectors_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/xchat-im/xchat/spec/internal/cddl"
	"github.com/xchat-im/xchat/spec/wire"
)

func loadCDDL(t *testing.T) *cddl.Spec {
	t.Helper()
	src, err := os.ReadFile("../xchat.cddl")
	if err != nil {
		t.Fatal(err)
	}
	s, err := cddl.Parse(string(src))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cddlAccepts checks item against rule.
func cddlAccepts(t *testing.T, s *cddl.Spec, rule string, item []byte) {
	t.Helper()
	if err := s.Validate(rule, item); err != nil {
		t.Errorf("valid vector, but the CDDL rejects it as %s: %v", rule, err)
	}
}

// TestVectorsMatchCDDL checks every vector that carries a CBOR item of a
// rule of spec/xchat.cddl against that rule: items of valid vectors match
// it; request frames that a vector says are malformed, limit_exceeded or
// unknown_request do not match the rule of their connection (request or
// fed-request). Vectors of other codes fail a later step of 03-framing.md
// section 3.3.1 (addresses, device keys) or the CBOR checks of 1.5 to 1.7;
// TestVectors checks that the Go decoder gives each vector's code.
func TestVectorsMatchCDDL(t *testing.T) {
	s := loadCDDL(t)
	checked := 0
	for _, dir := range []string{"requests", "envelope", "derivations"} {
		paths, err := filepath.Glob(filepath.Join(dir, "*.txt"))
		if err != nil {
			t.Fatal(err)
		}
		for _, path := range paths {
			f, err := parse(path)
			if err != nil {
				t.Fatal(err)
			}
			t.Run(path, func(t *testing.T) {
				checked++
				switch dir {
				case "requests":
					cddlRequest(t, s, f)
				case "envelope":
					cddlEnvelope(t, s, f)
				case "derivations":
					cddlDerivation(t, s, f)
				}
			})
		}
	}
	if checked < 100 {
		t.Errorf("checked %d vectors against the CDDL, want at least 100", checked)
	}
}

func cddlRequest(t *testing.T, s *cddl.Spec, f *file) {
	p, err := readRequestStream(f.hex(t, "frame"))
	if err != nil {
		t.Fatalf("frame: %v", err)
	}
	rule := "request"
	if f.get(t, "alpn") == wire.ALPNFederation {
		rule = "fed-request"
	}
	expect := f.get(t, "expect")
	if expect == "valid" {
		cddlAccepts(t, s, rule, p)
		_, name, _ := strings.Cut(f.get(t, "type"), " ")
		cddlAccepts(t, s, name, p)
		return
	}
	switch code := strings.TrimPrefix(expect, "invalid "); code {
	case "malformed", "limit_exceeded", "unknown_request":
		if err := s.Validate(rule, p); err == nil {
			t.Errorf("%s (%s), but the CDDL rule %s accepts it", expect, f.get(t, "description"), rule)
		} else {
			t.Logf("CDDL %s: %v", rule, err)
		}
	}
}

func cddlEnvelope(t *testing.T, s *cddl.Spec, f *file) {
	cert := f.hex(t, "sender-cert")
	failure := f.fields["failure"]
	cddlAccepts(t, s, "sender-cert", cert)
	var c wire.SenderCert
	if err := wire.Unmarshal(cert, &c); err != nil {
		t.Fatal(err)
	}
	// A certificate vector's body is well formed; its address is not in
	// normal form (section 4), which the CDDL checks only as a text string.
	cddlAccepts(t, s, "sender-cert-body", c.Body)
	cddlAccepts(t, s, "payload", f.hex(t, "payload"))
	if _, ok := f.fields["plaintext"]; !ok || failure == "unpad" {
		return
	}
	// The inner item: the plaintext without its 0x80 and zero padding.
	inner := f.hex(t, "plaintext")
	i := len(inner) - 1
	for i >= 0 && inner[i] == 0 {
		i--
	}
	inner = inner[:i]
	if failure == "inner" {
		if wire.CheckDeterministic(inner) == nil && s.Validate("inner", inner) == nil {
			t.Errorf("failure inner, but the inner item is deterministic and matches the CDDL")
		}
		return
	}
	cddlAccepts(t, s, "inner", inner)
}

func cddlDerivation(t *testing.T, s *cddl.Spec, f *file) {
	n := 0
	for key, rule := range map[string]string{"cert": "sender-cert", "body": "sender-cert-body", "mailbox": "mailbox"} {
		if _, ok := f.fields[key]; ok {
			cddlAccepts(t, s, rule, f.hex(t, key))
			n++
		}
	}
	if n == 0 {
		t.Skip("no CBOR item of a CDDL rule")
	}
}
