// Package vectortest reads the MLS working group's official test vectors
// for the tests of client/mls and its internal packages.
//
// The vectors are looked up in the directory named by XCHAT_MLS_VECTORS
// or, without it, in shared/vectors/mls of the nearest directory above the
// test's working directory that has one. A test without vectors is
// skipped, or fails when CI=true.
package vectortest

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// Find returns the directory the vectors are looked up in, and whether it
// exists.
func Find() (string, bool) {
	dir := os.Getenv("XCHAT_MLS_VECTORS")
	if dir == "" {
		dir = findShared()
	}
	fi, err := os.Stat(dir)
	return dir, err == nil && fi.IsDir()
}

// Dir returns the directory holding the vectors, skipping the test (or
// failing it in CI) when it is missing.
func Dir(t testing.TB) string {
	t.Helper()
	dir, _ := Find()
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("MLS test vectors not found at %s: %v", dir, err)
		}
		t.Skipf("MLS test vectors not found at %s (set XCHAT_MLS_VECTORS): %v", dir, err)
	}
	return dir
}

// findShared returns shared/vectors/mls in the nearest directory above
// the working directory that has one (the repository's parent holds
// shared/), or the conventional relative path when none does.
func findShared() string {
	if wd, err := os.Getwd(); err == nil {
		for d := wd; ; d = filepath.Dir(d) {
			p := filepath.Join(d, "shared", "vectors", "mls")
			if fi, err := os.Stat(p); err == nil && fi.IsDir() {
				return p
			}
			if filepath.Dir(d) == d {
				break
			}
		}
	}
	return filepath.Join("..", "..", "..", "shared", "vectors", "mls")
}

// Load decodes the named vector file into v.
func Load(t testing.TB, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(Dir(t), name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
}

// Hex is a JSON string of hex digits.
type Hex []byte

// UnmarshalJSON decodes the hex digits of a JSON string.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}
