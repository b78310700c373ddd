package secrettree

import (
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/vectortest"
)

// loadVectors decodes the named official MLS vector file into v.
func loadVectors(t *testing.T, name string, v any) { vectortest.Load(t, name, v) }

// hexBytes is a JSON string of hex digits.
type hexBytes = vectortest.Hex

// suiteOrSkip returns the suite for id, or false after logging that the
// vector case is skipped because xchat does not implement that suite.
func suiteOrSkip(t *testing.T, id uint16) (*ciphersuite.CipherSuite, bool) {
	t.Helper()
	cs, err := ciphersuite.LookupSuite(ciphersuite.CipherSuiteID(id))
	if err != nil {
		t.Logf("skipping cipher suite 0x%04x: %v", id, err)
		return nil, false
	}
	return cs, true
}
