package wire_test

import (
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

// unhex decodes hex written with optional spaces.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// sentinel returns the sentinel error of a code.
func sentinel(c wire.Code) error { return &wire.Error{Code: c} }

// wantCode fails unless err is an *Error with code want (CodeOK: err is
// nil), checked with errors.Is against the sentinel.
func wantCode(t testing.TB, err error, want wire.Code) {
	t.Helper()
	if want == wire.CodeOK {
		if err != nil {
			t.Errorf("unexpected error: %v", err)
		}
		return
	}
	if err == nil {
		t.Errorf("no error, want %s", want)
		return
	}
	if !errors.Is(err, sentinel(want)) {
		t.Errorf("error %v (code %s), want %s", err, wire.CodeOf(err), want)
	}
	var e *wire.Error
	if !errors.As(err, &e) {
		t.Errorf("error %v is not a *wire.Error", err)
	}
}

// mustMarshal encodes v deterministically.
func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := wire.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func repeat(b byte, n int) []byte {
	s := make([]byte, n)
	for i := range s {
		s[i] = b
	}
	return s
}
