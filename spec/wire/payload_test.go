package wire_test

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/xchat-im/xchat/spec/wire"
)

func TestPayloadEncoding(t *testing.T) {
	p := wire.MLSPayload{Mode: wire.PayloadMLS, Message: []byte{0, 1}, Meta: &wire.GroupMeta{Kind: wire.GroupKindDirect}}
	if b := mustMarshal(t, &p); !bytes.Equal(b, unhex(t, "a3 00 01 01 42 0001 03 a1 01 01")) {
		t.Fatalf("payload %x", b)
	}
	got, err := wire.DecodePayload(unhex(t, "a3 00 01 01 42 0001 03 a1 01 01"))
	if err != nil {
		t.Fatal(err)
	}
	if q := got.(*wire.MLSPayload); !bytes.Equal(q.Message, p.Message) || q.Meta == nil || q.Meta.Kind != 1 || q.Token != nil {
		t.Fatalf("decoded %+v", q)
	}
	lp := mustMarshal(t, &wire.LinkProofPayload{Mode: wire.PayloadLinkProof, Token: make([]byte, 16), Proof: make([]byte, 32)})
	if got, err := wire.DecodePayload(lp); err != nil {
		t.Fatal(err)
	} else if _, ok := got.(*wire.LinkProofPayload); !ok {
		t.Fatalf("decoded %T", got)
	}
	for name, h := range map[string]string{
		"mode 0 (withdrawn direct content)": "a4 00 00 01 01 02 01 03 626869",
		"unknown mode":                      "a2 00 03 01 41 00",
		"empty MLS message":                 "a2 00 01 01 40",
		"no MLS message":                    "a1 00 01",
		"short token":                       "a3 00 01 01 41 00 02 41 00",
		"group kind 2":                      "a3 00 01 01 41 00 03 a1 01 02",
		"null meta":                         "a3 00 01 01 41 00 03 f6",
		"duplicate key":                     "a3 00 01 01 41 00 01 41 00",
		"short link proof":                  "a3 00 02 01 50 00000000000000000000000000000000 02 41 00",
		"not a map":                         "01",
	} {
		if _, err := wire.DecodePayload(unhex(t, h)); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			wantCode(t, err, wire.CodeOf(err)) // always a *wire.Error
			if c := wire.CodeOf(err); c != wire.CodeMalformed && c != wire.CodeNoncanonical {
				t.Errorf("%s: code %s", name, c)
			}
		}
	}
}

func TestContent(t *testing.T) {
	text := "hi"
	c := wire.Content{Type: wire.ContentText, SentAt: 1, Text: &text}
	b := mustMarshal(t, &c)
	if !bytes.Equal(b, unhex(t, "a3 00 01 01 01 02 626869")) {
		t.Fatalf("content %x", b)
	}
	if _, err := wire.DecodeContent(b); err != nil {
		t.Fatal(err)
	}
	empty := ""
	two, big := uint64(2), uint64(3)
	ref := make([]byte, 32)
	for name, tc := range map[string]struct {
		c  wire.Content
		ok bool
	}{
		"text without text":      {wire.Content{Type: wire.ContentText}, false},
		"empty text":             {wire.Content{Type: wire.ContentText, Text: &empty}, true},
		"reply without ref":      {wire.Content{Type: wire.ContentReply, Text: &text}, false},
		"reply":                  {wire.Content{Type: wire.ContentReply, Text: &text, Ref: ref}, true},
		"short ref":              {wire.Content{Type: wire.ContentDelete, Ref: ref[:5]}, false},
		"withdrawn reaction":     {wire.Content{Type: wire.ContentReaction, Ref: ref, Reaction: &empty}, true},
		"read receipt":           {wire.Content{Type: wire.ContentReceipt, IDs: [][]byte{ref}, State: &two}, true},
		"receipt bad state":      {wire.Content{Type: wire.ContentReceipt, IDs: [][]byte{ref}, State: &big}, false},
		"typing 2":               {wire.Content{Type: wire.ContentTyping, State: &two}, false},
		"unknown type is passed": {wire.Content{Type: 99}, true},
		// Files (spec 11.5).
		"file without reference":      {wire.Content{Type: wire.ContentFile, Text: &text}, false},
		"file":                        {wire.Content{Type: wire.ContentFile, File: fileRef(nil)}, true},
		"file with caption":           {wire.Content{Type: wire.ContentFile, Text: &text, File: fileRef(nil)}, true},
		"empty file":                  {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Size = 0 })}, true},
		"largest file":                {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Size = wire.MaxFileSize })}, true},
		"file over 4 GiB":             {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Size = wire.MaxFileSize + 1 })}, false},
		"file domain not normal":      {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Domain = "B.example" })}, false},
		"file blob id 15 bytes":       {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.BlobID = f.BlobID[:15] })}, false},
		"file key 31 bytes":           {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Key = f.Key[:31] })}, false},
		"file hash 33 bytes":          {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Hash = append(f.Hash, 0) })}, false},
		"file media type empty":       {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.MediaType = "" })}, false},
		"file media type 127 bytes":   {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.MediaType = strings.Repeat("a", 127) })}, true},
		"file media type 128 bytes":   {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.MediaType = strings.Repeat("a", 128) })}, false},
		"file name 255 bytes":         {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Name = strings.Repeat("é", 127) + "a" })}, true},
		"file name 256 bytes":         {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Name = strings.Repeat("é", 128) })}, false},
		"file name empty":             {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Name = "" })}, false},
		"file name ..":                {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Name = ".." })}, false},
		"file name with a directory":  {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Name = "a/b" })}, false},
		"file name with a backslash":  {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Name = `a\b` })}, false},
		"file name with a newline":    {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Name = "a\nb" })}, false},
		"file name with DEL":          {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Name = "a\x7fb" })}, false},
		"file name invalid UTF-8":     {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Name = "a\xffb" })}, false},
		"file name with dots, spaces": {wire.Content{Type: wire.ContentFile, File: fileRef(func(f *wire.FileRef) { f.Name = "...a b.tar.gz" })}, true},
	} {
		_, err := wire.DecodeContent(mustMarshal(t, &tc.c))
		if (err == nil) != tc.ok {
			t.Errorf("%s: error %v", name, err)
		}
	}
	long := string(bytes.Repeat([]byte("a"), wire.MaxContentText+1))
	if _, err := wire.DecodeContent(mustMarshal(t, &wire.Content{Type: 1, Text: &long})); err == nil {
		t.Error("text over the limit accepted")
	}
}

func TestLinkProofAndMessageID(t *testing.T) {
	// Fixed inputs; the values are checked by the vectors in spec/vectors.
	p := wire.LinkProof(make([]byte, 16), "alice@example.org", 2, make([]byte, 32))
	if len(p) != 32 || bytes.Equal(p, wire.LinkProof(make([]byte, 16), "alice@example.org", 3, make([]byte, 32))) {
		t.Fatalf("proof %x", p)
	}
	id := wire.MessageID([]byte{1})
	if hex.EncodeToString(id[:]) == hex.EncodeToString(make([]byte, 32)) {
		t.Fatal("zero id")
	}
}

func FuzzDecodePayload(f *testing.F) {
	f.Add(unhex(f, "a3 00 01 01 42 0001 03 a1 01 01"))
	f.Add(unhex(f, "a3 00 02 01 50 00000000000000000000000000000000 02 58 20 0000000000000000000000000000000000000000000000000000000000000000"))
	f.Add(unhex(f, "a4 00 00 01 01 02 01 03 626869"))
	f.Add(unhex(f, "a5 00 03 01 58 20 0000000000000000000000000000000000000000000000000000000000000000 02 00 03 02 04 41 00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := wire.DecodePayload(b)
		if err != nil {
			if wire.CodeOf(err) == wire.CodeInternal {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if mp, ok := p.(*wire.MLSPayload); ok && (len(mp.Message) == 0 || len(mp.Message) > wire.MaxMLSMessage) {
			t.Fatalf("accepted message of %d bytes", len(mp.Message))
		}
		if fp, ok := p.(*wire.FragmentPayload); ok && (fp.Index >= fp.Count || len(fp.Data) > wire.MaxFragmentData) {
			t.Fatalf("accepted fragment %d of %d, %d bytes", fp.Index, fp.Count, len(fp.Data))
		}
	})
}

// fileRef returns a valid file reference, changed by change if not nil.
func fileRef(change func(*wire.FileRef)) *wire.FileRef {
	f := &wire.FileRef{Domain: "example.org", BlobID: repeat(0xb1, wire.BlobIDLen), Key: repeat(0x4b, wire.FileKeyLen),
		Hash: repeat(0x48, wire.FileHashLen), Size: 1000, MediaType: "image/png", Name: "cat.png"}
	if change != nil {
		change(f)
	}
	return f
}

func FuzzDecodeContent(f *testing.F) {
	f.Add(unhex(f, "a3 00 01 01 01 02 626869"))
	f.Add(mustMarshal(f, &wire.Content{Type: wire.ContentFile, SentAt: 1, File: fileRef(nil)}))
	f.Add(mustMarshal(f, &wire.Content{Type: wire.ContentFile, SentAt: 1, File: fileRef(func(r *wire.FileRef) { r.Name = "../x" })}))
	f.Add(unhex(f, "a3 00 06 01 01 05 81 58 20 0000000000000000000000000000000000000000000000000000000000000000"))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := wire.DecodeContent(b)
		if err != nil {
			if wire.CodeOf(err) == wire.CodeInternal {
				t.Fatalf("untyped error %v", err)
			}
			return
		}
		if c.Text != nil && len(*c.Text) > wire.MaxContentText {
			t.Fatal("long text accepted")
		}
		if c.Type == wire.ContentFile && (!wire.ValidFileName(c.File.Name) || c.File.Size > wire.MaxFileSize || len(c.File.Key) != wire.FileKeyLen) {
			t.Fatalf("invalid file reference accepted: %+v", c.File)
		}
	})
}

func TestFragment(t *testing.T) {
	big := mustMarshal(t, &wire.MLSPayload{Mode: wire.PayloadMLS, Message: bytes.Repeat([]byte{7}, 150000)})
	frags, err := wire.Fragment(big)
	if err != nil || len(frags) != 3 {
		t.Fatalf("%d fragments, %v", len(frags), err)
	}
	var joined []byte
	for i, f := range frags {
		p, err := wire.DecodePayload(f)
		if err != nil {
			t.Fatal(err)
		}
		fp := p.(*wire.FragmentPayload)
		if fp.Index != uint64(i) || fp.Count != 3 {
			t.Fatalf("fragment %+v", fp)
		}
		joined = append(joined, fp.Data...)
	}
	if !bytes.Equal(joined, big) {
		t.Fatal("fragments do not join to the payload")
	}
	if small, err := wire.Fragment([]byte{1, 2}); err != nil || len(small) != 1 {
		t.Fatalf("small payload: %d, %v", len(small), err)
	}
	if _, err := wire.Fragment(make([]byte, wire.MaxFragments*wire.MaxFragmentData+1)); err == nil {
		t.Fatal("a payload needing 65 fragments was split")
	}
	if _, err := wire.Fragment(bytes.Repeat([]byte{0x40}, 70000)); wire.CodeOf(err) != wire.CodeMalformed {
		t.Fatalf("70,000 bytes that are no payload: %v, want malformed", err)
	}
	h := make([]byte, 32)
	for name, f := range map[string]wire.FragmentPayload{
		"index = count": {Mode: 3, Hash: h, Index: 2, Count: 2, Data: []byte{1}},
		"one fragment":  {Mode: 3, Hash: h, Index: 0, Count: 1, Data: []byte{1}},
		"65 fragments":  {Mode: 3, Hash: h, Index: 0, Count: 65, Data: []byte{1}},
		"short hash":    {Mode: 3, Hash: h[:31], Index: 0, Count: 2, Data: []byte{1}},
		"empty":         {Mode: 3, Hash: h, Index: 0, Count: 2},
	} {
		if _, err := wire.DecodePayload(mustMarshal(t, &f)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// The largest mls-payload (an MLSMessage of MaxMLSMessage bytes, a token and
// a group name of 128 bytes) fills exactly 64 fragments, and one byte more
// of MLSMessage is refused on both sides (spec/09-mls.md section 9.6).
func TestFragmentLargestPayload(t *testing.T) {
	t.Parallel()
	if wire.MaxMLSMessage != 3839821 || wire.MaxMLSPayload != 3840000 {
		t.Fatalf("MaxMLSMessage %d, MaxMLSPayload %d", wire.MaxMLSMessage, wire.MaxMLSPayload)
	}
	largest := func(n int) *wire.MLSPayload {
		return &wire.MLSPayload{Mode: wire.PayloadMLS, Message: bytes.Repeat([]byte{7}, n), Token: make([]byte, 32),
			Meta: &wire.GroupMeta{Kind: wire.GroupKindGroup, Name: strings.Repeat("n", wire.MaxGroupName)}}
	}
	b := mustMarshal(t, largest(wire.MaxMLSMessage))
	if len(b) != wire.MaxMLSPayload {
		t.Fatalf("largest mls-payload encodes to %d bytes, want %d", len(b), wire.MaxMLSPayload)
	}
	frags, err := wire.Fragment(b)
	if err != nil || len(frags) != wire.MaxFragments {
		t.Fatalf("%d fragments, %v", len(frags), err)
	}
	if _, err := wire.DecodePayload(b); err != nil {
		t.Fatalf("largest mls-payload refused: %v", err)
	}
	over := mustMarshal(t, largest(wire.MaxMLSMessage+1))
	if _, err := wire.Fragment(over); wire.CodeOf(err) != wire.CodeLimitExceeded {
		t.Fatalf("65 fragments: %v, want limit_exceeded", err)
	}
	// Without token and name, one byte more still fits in 64 fragments,
	// but the recipient would refuse the MLSMessage: so does the sender.
	short := mustMarshal(t, &wire.MLSPayload{Mode: wire.PayloadMLS, Message: bytes.Repeat([]byte{7}, wire.MaxMLSMessage+1)})
	if len(short) > wire.MaxMLSPayload {
		t.Fatalf("%d bytes", len(short))
	}
	if _, err := wire.DecodePayload(short); wire.CodeOf(err) != wire.CodeMalformed {
		t.Fatalf("MLSMessage of %d bytes decoded: %v", wire.MaxMLSMessage+1, err)
	}
	if _, err := wire.Fragment(short); wire.CodeOf(err) != wire.CodeLimitExceeded {
		t.Fatalf("MLSMessage of %d bytes fragmented: %v, want limit_exceeded", wire.MaxMLSMessage+1, err)
	}
}
