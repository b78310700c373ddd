package message

import (
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/vectortest"
)

// loadVectors decodes the named official MLS vector file into v.
func loadVectors(t *testing.T, name string, v any) { vectortest.Load(t, name, v) }

// hexBytes is a JSON string of hex digits.
type hexBytes = vectortest.Hex
