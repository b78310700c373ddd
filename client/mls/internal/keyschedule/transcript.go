package keyschedule

import (
	"crypto/hmac"
	"fmt"

	"github.com/xchat-im/xchat/client/mls/internal/ciphersuite"
	"github.com/xchat-im/xchat/client/mls/internal/codec"
)

// ConfirmedTranscriptHash returns Hash(interim_transcript_hash_[n-1] ||
// ConfirmedTranscriptHashInput_[n]) (RFC 9420 section 8.2).
// confirmedInput is the encoded wire_format, FramedContent and signature
// of the Commit.
func ConfirmedTranscriptHash(cs *ciphersuite.CipherSuite, interimBefore, confirmedInput []byte) []byte {
	buf := make([]byte, 0, len(interimBefore)+len(confirmedInput))
	buf = append(buf, interimBefore...)
	buf = append(buf, confirmedInput...)
	return cs.Hash(buf)
}

// InterimTranscriptHash returns Hash(confirmed_transcript_hash_[n] ||
// InterimTranscriptHashInput_[n]), the input being the confirmation tag as
// an opaque vector.
func InterimTranscriptHash(cs *ciphersuite.CipherSuite, confirmed, confirmationTag []byte) ([]byte, error) {
	var w codec.Writer
	w.Raw(confirmed)
	w.Opaque(confirmationTag)
	b, err := w.Bytes()
	if err != nil {
		return nil, fmt.Errorf("mls: interim transcript hash: %w", err)
	}
	return cs.Hash(b), nil
}

// ConfirmationTag returns MAC(confirmation_key, confirmed_transcript_hash).
func ConfirmationTag(cs *ciphersuite.CipherSuite, confirmationKey, confirmedTranscriptHash []byte) []byte {
	return cs.MAC(confirmationKey, confirmedTranscriptHash)
}

// VerifyConfirmationTag checks tag in constant time.
func VerifyConfirmationTag(cs *ciphersuite.CipherSuite, confirmationKey, confirmedTranscriptHash, tag []byte) bool {
	return hmac.Equal(ConfirmationTag(cs, confirmationKey, confirmedTranscriptHash), tag)
}
