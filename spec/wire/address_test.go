package wire_test

import (
	"strings"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

// addressCase is one ValidateAddress input; the table also seeds
// FuzzNormalizeAddress and the address vectors.
type addressCase struct {
	in    string
	valid bool
}

var (
	local64   = strings.Repeat("l", 64)
	label63   = strings.Repeat("d", 63)
	domain253 = label63 + "." + label63 + "." + label63 + "." + strings.Repeat("e", 61) // 63*3+3+61 = 253
)

var addressCases = []addressCase{
	// spec/04-addressing.md section 4.1.
	{"alice@example.org", true},
	{"a.b_c-d@chat.example.org", true},
	{"bob@localhost", true},
	{"Alice@example.org", false},
	{".alice@example.org", false},
	{"al..ice@example.org", false},
	{"alice@example.org.", false},
	{"alice@-example.org", false},
	{"alice@exa_mple.org", false},
	{"alice@example..org", false},
	{"alice", false},
	{"josé@example.org", false},
	// More.
	{"a@b", true},
	{"0@1", true},
	{"a__b@x", true},
	{"a--b@x", true},
	{"a.-b@x", true},
	{"a-.b@x", true},
	{"a@xn--bcher-kva.example", true},
	{"a@1.2.3.4", true},
	{"a@b-c.d", true},
	{"a@b--c", true},
	{"", false},
	{"@", false},
	{"@b", false},
	{"a@", false},
	{"a@b@c", false},
	{"alice.@example.org", false},
	{"-alice@example.org", false},
	{"alice_@example.org", false},
	{"_alice@example.org", false},
	{"al ice@example.org", false},
	{" alice@example.org", false},
	{"alice@example.org ", false},
	{"alice@example-.org", false},
	{"alice@.example.org", false},
	{"alice@EXAMPLE.org", false},
	{"alice@exam\x00ple.org", false},
	{"ali\xffce@example.org", false},
	{"alice@[127.0.0.1]", false},
	{"alice+tag@example.org", false},
	{"a@b.", false},
	// Length limits.
	{local64 + "@x", true},
	{local64 + "l@x", false},
	{"a@" + label63, true},
	{"a@" + label63 + "d", false},
	{"a@" + domain253, true},
	{"a@" + domain253 + "e", false},
	{local64 + "@" + domain253, true}, // 318 bytes, the longest address
	{local64 + "l@" + domain253, false},
	{local64 + "@" + domain253 + "e", false},
}

func TestValidateAddress(t *testing.T) {
	if n := len(local64 + "@" + domain253); n != wire.MaxAddress || len(domain253) != wire.MaxDomain {
		t.Fatalf("test data: longest address %d bytes, domain %d", n, len(domain253))
	}
	for _, tt := range addressCases {
		err := wire.ValidateAddress(tt.in)
		if tt.valid {
			wantCode(t, err, wire.CodeOK)
		} else {
			wantCode(t, err, wire.CodeInvalidAddress)
		}
	}
}

func TestValidateDomain(t *testing.T) {
	for _, d := range []string{"localhost", "example.org", "a", "1", domain253} {
		if err := wire.ValidateDomain(d); err != nil {
			t.Errorf("ValidateDomain(%q): %v", d, err)
		}
	}
	for _, d := range []string{"", ".", "a.", ".a", "a..b", "-a", "a-", "A", "a_b", "a b", domain253 + "e", label63 + "d"} {
		wantCode(t, wire.ValidateDomain(d), wire.CodeInvalidAddress)
	}
}

func TestNormalizeAddress(t *testing.T) {
	tests := []struct {
		in, want string // want "": invalid
	}{
		{"alice@example.org", "alice@example.org"},
		{"Alice@Example.ORG", "alice@example.org"},
		{"ALICE@EXAMPLE.ORG", "alice@example.org"},
		{"A.B_C-D@CHAT.EXAMPLE.ORG", "a.b_c-d@chat.example.org"},
		{"AZ@AZ", "az@az"},
		{"@A", ""},
		{" Alice@example.org", ""},      // no trimming
		{"JOSÉ@example.org", ""},        // no Unicode case folding
		{"\u212aelvin@example.org", ""}, // KELVIN SIGN is not K
		{"alice@example.org.", ""},      // no trailing-dot removal
		{"ALICE@-EXAMPLE.ORG", ""},
		{strings.ToUpper(local64) + "@X", local64 + "@x"},
		{strings.ToUpper(local64) + "L@X", ""},
	}
	for _, tt := range tests {
		got, err := wire.NormalizeAddress(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("NormalizeAddress(%q) = %q, want an error", tt.in, got)
			}
			wantCode(t, err, wire.CodeInvalidAddress)
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("NormalizeAddress(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

func TestSplitAddress(t *testing.T) {
	tests := []struct{ in, local, domain string }{
		{"alice@example.org", "alice", "example.org"},
		{"a@b", "a", "b"},
		{"noat", "noat", ""},
		{"a@b@c", "a", "b@c"},
	}
	for _, tt := range tests {
		l, d := wire.SplitAddress(tt.in)
		if l != tt.local || d != tt.domain {
			t.Errorf("SplitAddress(%q) = %q, %q", tt.in, l, d)
		}
	}
}
