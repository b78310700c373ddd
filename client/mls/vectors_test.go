package mls

import (
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

// vectorDir returns the directory holding the official MLS test vectors,
// skipping the test (or failing it in CI) when it is missing.
func vectorDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("XCHAT_MLS_VECTORS")
	if dir == "" {
		dir = findShared()
	}
	if _, err := os.Stat(dir); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("MLS test vectors not found at %s: %v", dir, err)
		}
		t.Skipf("MLS test vectors not found at %s (set XCHAT_MLS_VECTORS): %v", dir, err)
	}
	return dir
}

// findShared returns shared/vectors/mls in the nearest directory above
// the package that has one (the repository's parent holds shared/), or
// the conventional relative path when none does.
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

// loadVectors decodes the named vector file into v.
func loadVectors(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir(t), name))
	if err != nil {
		t.Fatalf("read %s: %v", name, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", name, err)
	}
}

// hexBytes is a JSON string of hex digits.
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
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

// suiteOrSkip returns the suite for id, or false after logging that the
// vector case is skipped because xchat does not implement that suite.
func suiteOrSkip(t *testing.T, id uint16) (*CipherSuite, bool) {
	t.Helper()
	cs, err := LookupSuite(CipherSuiteID(id))
	if err != nil {
		t.Logf("skipping cipher suite 0x%04x: %v", id, err)
		return nil, false
	}
	return cs, true
}
