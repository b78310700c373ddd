package wire

import (
	"crypto/sha256"
	"unicode/utf8"
)

// Content types of application messages (spec/10-content.md).
const (
	ContentText     = 1
	ContentReply    = 2
	ContentReaction = 3
	ContentEdit     = 4
	ContentDelete   = 5
	ContentReceipt  = 6
	ContentTyping   = 7
	ContentFile     = 8
	ContentCall     = 9
)

// Content limits (spec/10-content.md).
const (
	MaxContentText   = 32768 // bytes of text
	MaxReaction      = 64    // bytes of a reaction
	MaxReceiptIDs    = 256   // message identifiers in a receipt
	MessageIDSize    = 32
	ContextMessageID = "xchat/1 message-id"
)

// Content is the application data of an MLS application message.
type Content struct {
	Type     uint64      `cbor:"0,keyasint"`
	SentAt   uint64      `cbor:"1,keyasint"` // Unix milliseconds, sender's clock
	Text     *string     `cbor:"2,keyasint,omitempty"`
	Ref      []byte      `cbor:"3,keyasint,omitempty"`
	Reaction *string     `cbor:"4,keyasint,omitempty"`
	IDs      [][]byte    `cbor:"5,keyasint,omitempty"`
	State    *uint64     `cbor:"6,keyasint,omitempty"`
	File     *FileRef    `cbor:"7,keyasint,omitempty"` // ContentFile; Text is the caption
	Call     *CallSignal `cbor:"8,keyasint,omitempty"` // ContentCall
}

// FileRef is a file shared by reference (spec/11-files.md): where its
// encrypted blob is and what opens it. It travels only inside MLS
// application messages.
type FileRef struct {
	Domain    string `cbor:"1,keyasint"` // the homeserver holding the blob
	BlobID    []byte `cbor:"2,keyasint"` // BlobIDLen bytes
	Key       []byte `cbor:"3,keyasint"` // FileKeyLen bytes
	Hash      []byte `cbor:"4,keyasint"` // SHA-256 of the padded blob
	Size      uint64 `cbor:"5,keyasint"` // plaintext bytes
	MediaType string `cbor:"6,keyasint"` // e.g. "image/png"; "application/octet-stream" when unknown
	Name      string `cbor:"7,keyasint"` // file name without directories
}

// BlobSize returns the padded size of the reference's blob.
func (f *FileRef) BlobSize() uint64 { return PaddedBlobSize(EncryptedFileSize(f.Size)) }

// Validate checks the reference's fields (spec/11-files.md section 11.5).
func (f *FileRef) Validate() error {
	switch {
	case ValidateDomain(f.Domain) != nil:
		return Errorf(CodeMalformed, "file domain %q", f.Domain)
	case len(f.BlobID) != BlobIDLen:
		return Errorf(CodeMalformed, "blob identifier of %d bytes", len(f.BlobID))
	case len(f.Key) != FileKeyLen:
		return Errorf(CodeMalformed, "file key of %d bytes", len(f.Key))
	case len(f.Hash) != FileHashLen:
		return Errorf(CodeMalformed, "file hash of %d bytes", len(f.Hash))
	case f.Size > MaxFileSize:
		return Errorf(CodeMalformed, "file of %d bytes", f.Size)
	case len(f.MediaType) == 0 || len(f.MediaType) > MaxMediaType || !utf8.ValidString(f.MediaType):
		return Errorf(CodeMalformed, "media type of %d bytes", len(f.MediaType))
	case !ValidFileName(f.Name):
		return Errorf(CodeMalformed, "file name %q", f.Name)
	}
	return nil
}

// ValidFileName reports whether name is a file name a reference may carry:
// 1 to MaxFileName bytes of UTF-8, not "." or "..", without "/", "\\" or
// control characters.
func ValidFileName(name string) bool {
	if len(name) == 0 || len(name) > MaxFileName || !utf8.ValidString(name) || name == "." || name == ".." {
		return false
	}
	for _, r := range name {
		if r < 0x20 || r == 0x7f || r == '/' || r == '\\' {
			return false
		}
	}
	return true
}

// DecodeContent decodes and checks a content item. Unknown content types
// are returned without error (the caller shows them as unsupported); a
// known type with a required key missing, or any field out of range, gives
// a *Error with CodeMalformed.
func DecodeContent(b []byte) (*Content, error) {
	var c Content
	if err := Unmarshal(b, &c); err != nil {
		return nil, err
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate checks the keys a content type requires and the ranges of all
// fields (spec/10-content.md section 10.1).
func (c *Content) Validate() error {
	if c.Text != nil && (len(*c.Text) > MaxContentText || !utf8.ValidString(*c.Text)) {
		return Errorf(CodeMalformed, "text of %d bytes", len(*c.Text))
	}
	if c.Ref != nil && len(c.Ref) != MessageIDSize {
		return Errorf(CodeMalformed, "message reference of %d bytes", len(c.Ref))
	}
	if c.Reaction != nil && (len(*c.Reaction) > MaxReaction || !utf8.ValidString(*c.Reaction)) {
		return Errorf(CodeMalformed, "reaction of %d bytes", len(*c.Reaction))
	}
	if c.IDs != nil {
		if len(c.IDs) == 0 || len(c.IDs) > MaxReceiptIDs {
			return Errorf(CodeMalformed, "receipt of %d messages", len(c.IDs))
		}
		for _, id := range c.IDs {
			if len(id) != MessageIDSize {
				return Errorf(CodeMalformed, "message identifier of %d bytes", len(id))
			}
		}
	}
	if c.File != nil {
		if err := c.File.Validate(); err != nil {
			return err
		}
	}
	if c.Call != nil {
		if err := c.Call.Validate(); err != nil {
			return err
		}
	}
	need := func(ok bool, what string) error {
		if !ok {
			return Errorf(CodeMalformed, "content type %d without %s", c.Type, what)
		}
		return nil
	}
	switch c.Type {
	case ContentText:
		return need(c.Text != nil, "text")
	case ContentReply, ContentEdit:
		return need(c.Text != nil && c.Ref != nil, "text and reference")
	case ContentReaction:
		return need(c.Ref != nil && c.Reaction != nil, "reference and reaction")
	case ContentDelete:
		return need(c.Ref != nil, "reference")
	case ContentReceipt:
		if err := need(c.IDs != nil && c.State != nil, "messages and state"); err != nil {
			return err
		}
		return need(*c.State == 1 || *c.State == 2, "state 1 or 2")
	case ContentTyping:
		if err := need(c.State != nil, "state"); err != nil {
			return err
		}
		return need(*c.State <= 1, "state 0 or 1")
	case ContentFile:
		return need(c.File != nil, "file reference")
	case ContentCall:
		return need(c.Call != nil, "call signal")
	}
	return nil
}

// Known reports whether the content type is one this version defines.
func (c *Content) Known() bool { return c.Type >= ContentText && c.Type <= ContentCall }

// MessageID returns the identifier of the application message carried by
// an MLSMessage (spec/10-content.md section 10.2).
func MessageID(mlsMessage []byte) [32]byte {
	return sha256.Sum256(withContext(ContextMessageID, mlsMessage))
}
