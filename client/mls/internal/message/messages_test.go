package message

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
	"github.com/xchat-im/xchat/client/mls/internal/keyschedule"
	"github.com/xchat-im/xchat/client/mls/internal/vectortest"
)

// wireValue is a structure with Marshal and Unmarshal.
type wireValue interface {
	Marshal(*codec.Writer)
	Unmarshal(*codec.Reader) error
}

// messagesFields maps each messages.json field to a constructor of the
// structure it holds (test-vectors.md, "Messages").
var messagesFields = map[string]func() wireValue{
	"mls_welcome":                       func() wireValue { return new(MLSMessage) },
	"mls_group_info":                    func() wireValue { return new(MLSMessage) },
	"mls_key_package":                   func() wireValue { return new(MLSMessage) },
	"ratchet_tree":                      func() wireValue { return new(RatchetTree) },
	"group_secrets":                     func() wireValue { return new(GroupSecrets) },
	"add_proposal":                      func() wireValue { return new(Add) },
	"update_proposal":                   func() wireValue { return new(Update) },
	"remove_proposal":                   func() wireValue { return new(Remove) },
	"pre_shared_key_proposal":           func() wireValue { return new(PreSharedKey) },
	"re_init_proposal":                  func() wireValue { return new(ReInit) },
	"external_init_proposal":            func() wireValue { return new(ExternalInit) },
	"group_context_extensions_proposal": func() wireValue { return new(GroupContextExtensions) },
	"commit":                            func() wireValue { return new(Commit) },
	"public_message_application":        func() wireValue { return new(MLSMessage) },
	"public_message_proposal":           func() wireValue { return new(MLSMessage) },
	"public_message_commit":             func() wireValue { return new(MLSMessage) },
	"private_message":                   func() wireValue { return new(MLSMessage) },
}

// wantWireFormat is the wire format each MLSMessage field must carry.
var wantWireFormat = map[string]WireFormat{
	"mls_welcome":                WireFormatWelcome,
	"mls_group_info":             WireFormatGroupInfo,
	"mls_key_package":            WireFormatKeyPackage,
	"public_message_application": WireFormatPublicMessage,
	"public_message_proposal":    WireFormatPublicMessage,
	"public_message_commit":      WireFormatPublicMessage,
	"private_message":            WireFormatPrivateMessage,
}

func roundTrip(b []byte, v wireValue) ([]byte, error) {
	if err := codec.UnmarshalAll(b, v); err != nil {
		return nil, err
	}
	return codec.MarshalAll(v)
}

func TestMessagesVectors(t *testing.T) {
	var cases []map[string]hexBytes
	loadVectors(t, "messages.json", &cases)
	if len(cases) == 0 {
		t.Fatal("no cases in messages.json")
	}
	fields := 0
	for i, c := range cases {
		names := make([]string, 0, len(c))
		for name := range c {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			mk, ok := messagesFields[name]
			if !ok {
				t.Errorf("case %d: unknown field %q", i, name)
				continue
			}
			v := mk()
			got, err := roundTrip(c[name], v)
			if err != nil {
				t.Errorf("case %d %s: %v", i, name, err)
				continue
			}
			if !bytes.Equal(got, c[name]) {
				t.Errorf("case %d %s: re-encoding differs\n got %x\nwant %x", i, name, got, []byte(c[name]))
				continue
			}
			if wf, ok := wantWireFormat[name]; ok {
				if m := v.(*MLSMessage); m.WireFormat != wf {
					t.Errorf("case %d %s: wire format %d, want %d", i, name, m.WireFormat, wf)
				}
			}
			fields++
		}
	}
	t.Logf("%d cases, %d fields round-tripped", len(cases), fields)
}

// TestMessagesTruncated checks that every strict prefix of each vector
// message fails to decode without panicking, and that an extra trailing
// byte is rejected.
func TestMessagesTruncated(t *testing.T) {
	var cases []map[string]hexBytes
	loadVectors(t, "messages.json", &cases)
	n := 20
	if testing.Short() {
		n = 3
	}
	for i, c := range cases[:min(len(cases), n)] {
		for name, b := range c {
			mk := messagesFields[name]
			if mk == nil {
				continue
			}
			for n := 0; n < len(b); n++ {
				if err := codec.UnmarshalAll(b[:n], mk()); err == nil {
					t.Errorf("case %d %s: prefix of %d/%d bytes decoded", i, name, n, len(b))
					break
				}
			}
			if err := codec.UnmarshalAll(append(bytes.Clone(b), 0), mk()); err == nil {
				t.Errorf("case %d %s: trailing byte accepted", i, name)
			}
		}
	}
}

func TestWireStrictness(t *testing.T) {
	bad := map[string]string{
		"version 2":               "0002" + "0001",
		"wire format 0":           "0001" + "0000",
		"wire format 6":           "0001" + "0006",
		"private bad content":     "0001" + "0002" + "00" + "0000000000000000" + "04" + "00" + "00" + "00",
		"public bad sender":       "0001" + "0001" + "00" + "0000000000000000" + "05",
		"public bad content type": "0001" + "0001" + "00" + "0000000000000000" + "01" + "00000000" + "00" + "04",
		"non-minimal varint":      "0001" + "0002" + "4000" + "0000000000000000" + "01" + "00" + "00" + "00",
	}
	for name, h := range bad {
		b, err := hex.DecodeString(h)
		if err != nil {
			t.Fatal(err)
		}
		var m MLSMessage
		if err := m.UnmarshalBinary(b); err == nil {
			t.Errorf("%s: decoded", name)
		}
	}
	good, _ := hex.DecodeString("0001" + "0002" + "00" + "0000000000000000" + "01" + "00" + "00" + "00")
	var m MLSMessage
	if err := m.UnmarshalBinary(good); err != nil {
		t.Fatalf("minimal private message: %v", err)
	}

	// Optional presence octets other than 0 and 1 are rejected.
	if err := codec.UnmarshalAll([]byte{0x00, 0x02}, new(Commit)); err == nil {
		t.Error("commit with presence octet 2 decoded")
	}
	// Ratchet trees must be non-empty, odd-length and end non-blank.
	for _, tree := range [][]byte{{0x00}, {0x01, 0x00}, {0x02, 0x00, 0x00}} {
		if err := codec.UnmarshalAll(tree, new(RatchetTree)); err == nil {
			t.Errorf("tree %x decoded", tree)
		}
	}
	// Unknown credential, proposal and PSK types are rejected.
	if err := codec.UnmarshalAll([]byte{0x00, 0x03, 0x00}, new(Credential)); err == nil {
		t.Error("credential type 3 decoded")
	}
	if err := codec.UnmarshalAll([]byte{0x00, 0x08, 0x00}, new(Proposal)); err == nil {
		t.Error("proposal type 8 decoded")
	}
	if err := codec.UnmarshalAll([]byte{0x03, 0x00, 0x00}, new(keyschedule.PreSharedKeyID)); err == nil {
		t.Error("PSK type 3 decoded")
	}
	// Duplicate extensions are rejected.
	if err := codec.UnmarshalAll([]byte{0x08, 0x00, 0x05, 0x00, 0x00, 0x05, 0x00}, new(GroupContextExtensions)); err == nil {
		t.Error("duplicate extensions decoded")
	}
	// Marshal of an unset variant fails instead of panicking.
	if _, err := codec.MarshalAll(&MLSMessage{Version: 1, WireFormat: WireFormatWelcome}); err == nil {
		t.Error("message without body encoded")
	}
	if _, err := codec.MarshalAll(&Proposal{Type: ProposalTypeAdd}); err == nil {
		t.Error("proposal without body encoded")
	}
}

func FuzzUnmarshalMLSMessage(f *testing.F) {
	// The official messages seed the corpus when they are at hand.
	dir, _ := vectortest.Find()
	if raw, err := os.ReadFile(filepath.Join(dir, "messages.json")); err == nil {
		var cases []map[string]hexBytes
		if err := json.Unmarshal(raw, &cases); err == nil {
			for _, c := range cases {
				for _, b := range c {
					f.Add([]byte(b))
				}
			}
		}
	}
	f.Add([]byte{0x00, 0x01, 0x00, 0x02, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		var m MLSMessage
		if err := m.UnmarshalBinary(b); err != nil {
			return
		}
		got, err := m.MarshalBinary()
		if err != nil {
			t.Fatalf("decoded message does not encode: %v", err)
		}
		if !bytes.Equal(got, b) {
			t.Fatalf("re-encoding differs\n got %x\nwant %x", got, b)
		}
	})
}
