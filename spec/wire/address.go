package wire

import (
	"strings"
)

// Address limits of spec/04-addressing.md.
const (
	MaxLocalPart = 64
	MaxDomain    = 253
	MaxAddress   = MaxLocalPart + 1 + MaxDomain
)

// NormalizeAddress applies the normalisation of spec/04-addressing.md to
// user input (ASCII letters to lower case) and validates the result.
func NormalizeAddress(s string) (string, error) {
	a := strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, s)
	if err := ValidateAddress(a); err != nil {
		return "", err
	}
	return a, nil
}

// ValidateAddress checks that a is a valid address in normal form. The
// error is CodeInvalidAddress.
func ValidateAddress(a string) error {
	if len(a) > MaxAddress {
		return Errorf(CodeInvalidAddress, "address longer than %d bytes", MaxAddress)
	}
	at := strings.IndexByte(a, '@')
	if at < 0 {
		return Errorf(CodeInvalidAddress, "%q: no @", a)
	}
	if err := validateLocal(a[:at]); err != nil {
		return err
	}
	return ValidateDomain(a[at+1:])
}

// SplitAddress returns the local part and domain of a valid address.
func SplitAddress(a string) (local, domain string) {
	at := strings.IndexByte(a, '@')
	if at < 0 {
		return a, ""
	}
	return a[:at], a[at+1:]
}

func validateLocal(l string) error {
	if l == "" || len(l) > MaxLocalPart {
		return Errorf(CodeInvalidAddress, "user part must be 1 to %d characters", MaxLocalPart)
	}
	for i := 0; i < len(l); i++ {
		c := l[i]
		switch {
		case isLowerAlnum(c):
		case c == '.' || c == '_' || c == '-':
			if i == 0 || i == len(l)-1 {
				return Errorf(CodeInvalidAddress, "user part %q must start and end with a letter or digit", l)
			}
			if c == '.' && l[i-1] == '.' {
				return Errorf(CodeInvalidAddress, "user part %q has two dots in a row", l)
			}
		default:
			return Errorf(CodeInvalidAddress, "user part %q: character %q not allowed (a-z 0-9 . _ -)", l, c)
		}
	}
	return nil
}

// ValidateDomain checks that d is a domain name in normal form.
func ValidateDomain(d string) error {
	if d == "" || len(d) > MaxDomain {
		return Errorf(CodeInvalidAddress, "domain must be 1 to %d characters", MaxDomain)
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 {
			return Errorf(CodeInvalidAddress, "domain %q: labels must be 1 to 63 characters", d)
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return Errorf(CodeInvalidAddress, "domain %q: a label must not start or end with '-'", d)
		}
		for i := 0; i < len(label); i++ {
			if c := label[i]; !isLowerAlnum(c) && c != '-' {
				return Errorf(CodeInvalidAddress, "domain %q: character %q not allowed (a-z 0-9 -)", d, c)
			}
		}
	}
	return nil
}

func isLowerAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || '0' <= c && c <= '9'
}
