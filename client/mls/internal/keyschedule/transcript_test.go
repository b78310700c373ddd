package keyschedule

import (
	"bytes"
	"testing"

	"github.com/xchat-im/xchat/client/mls/internal/codec"
)

func TestTranscriptHashVectors(t *testing.T) {
	var cases []struct {
		CipherSuite          uint16   `json:"cipher_suite"`
		ConfirmationKey      hexBytes `json:"confirmation_key"`
		AuthenticatedContent hexBytes `json:"authenticated_content"`
		InterimBefore        hexBytes `json:"interim_transcript_hash_before"`
		ConfirmedAfter       hexBytes `json:"confirmed_transcript_hash_after"`
		InterimAfter         hexBytes `json:"interim_transcript_hash_after"`
	}
	loadVectors(t, "transcript-hashes.json", &cases)
	checked := 0
	for ci, c := range cases {
		cs, ok := suiteOrSkip(t, c.CipherSuite)
		if !ok {
			continue
		}
		checked++
		// The AuthenticatedContent of a Commit ends with its confirmation
		// tag, an opaque vector of Nh bytes; what precedes it is the
		// ConfirmedTranscriptHashInput.
		ac := c.AuthenticatedContent
		tagLen, _ := codec.AppendVarint(nil, uint64(cs.Nh()))
		n := len(tagLen) + cs.Nh()
		if len(ac) < n || !bytes.Equal(ac[len(ac)-n:len(ac)-cs.Nh()], tagLen) {
			t.Errorf("case %d: authenticated content does not end with a %d-byte tag", ci, cs.Nh())
			continue
		}
		input, tag := ac[:len(ac)-n], ac[len(ac)-cs.Nh():]
		confirmed := ConfirmedTranscriptHash(cs, c.InterimBefore, input)
		if !bytes.Equal(confirmed, c.ConfirmedAfter) {
			t.Errorf("case %d confirmed = %x, want %x", ci, confirmed, c.ConfirmedAfter)
		}
		if !VerifyConfirmationTag(cs, c.ConfirmationKey, c.ConfirmedAfter, tag) {
			t.Errorf("case %d: confirmation tag does not verify", ci)
		}
		interim, err := InterimTranscriptHash(cs, c.ConfirmedAfter, tag)
		if err != nil || !bytes.Equal(interim, c.InterimAfter) {
			t.Errorf("case %d interim = %x, %v; want %x", ci, interim, err, c.InterimAfter)
		}
	}
	t.Logf("%d of %d cases checked", checked, len(cases))
}
