package mls

import (
	"errors"
	"fmt"
)

// Errors callers decide on (see the package documentation for where each
// is returned). Callers test them with errors.Is; an error also wraps its
// precise cause (a rejected credential matches ErrInvalidCredential and
// the validator's error).
var (
	// ErrNotMember reports a message whose sender is not a member of the
	// group in the message's epoch (a blank or out-of-range leaf, or an
	// unknown external sender).
	ErrNotMember = errors.New("mls: sender is not a member")
	// ErrReplay reports a PrivateMessage whose key generation was already
	// used, or a proposal or commit that was already processed.
	ErrReplay = errors.New("mls: replayed message")
	// ErrTampered reports a message that does not authenticate: an AEAD
	// failure, a bad signature, membership tag or confirmation tag.
	ErrTampered = errors.New("mls: message does not authenticate")
	// ErrWrongEpoch reports a message for an epoch the group does not hold
	// (a future epoch, or one older than every retained epoch).
	ErrWrongEpoch = errors.New("mls: message for an unknown epoch")
	// ErrWrongGroup reports a message for another group.
	ErrWrongGroup = errors.New("mls: message for another group")
	// ErrInvalidProposal reports a proposal, or a list of proposals, that
	// breaks RFC 9420 section 12.2 or 12.4 (or a KeyPackage or LeafNode
	// that fails validation).
	ErrInvalidProposal = errors.New("mls: invalid proposal")
	// ErrInvalidCommit reports a commit that cannot be applied: a missing
	// or invalid path, an unknown proposal reference, a bad external
	// commit.
	ErrInvalidCommit = errors.New("mls: invalid commit")
	// ErrStaleCommit reports a commit for an earlier epoch that loses
	// against the commit applied there (see the package documentation on
	// concurrent commits), or whose epoch is older than every retained one.
	// The group may still have changed (it keeps a valid losing commit's
	// epoch read-only for application messages sent in it): persist its
	// state after this error too.
	ErrStaleCommit = errors.New("mls: stale commit")
	// ErrRemoved reports an operation on a group the member was removed
	// from.
	ErrRemoved = errors.New("mls: removed from the group")
	// ErrNoCredentialValidator reports a Config without the
	// ValidateCredential hook: a group cannot be created, joined or loaded
	// without one.
	ErrNoCredentialValidator = errors.New("mls: no credential validator in Config")
	// ErrInvalidCredential reports a credential the Config's
	// ValidateCredential hook rejected; the hook's error is wrapped too.
	ErrInvalidCredential = errors.New("mls: credential rejected")
	// ErrTooManyMembers reports a group that would exceed the member
	// limit.
	ErrTooManyMembers = errors.New("mls: too many members")
	// ErrInvalidKeyPackage reports a KeyPackage that fails validation.
	ErrInvalidKeyPackage = errors.New("mls: invalid key package")
)

// errBadConfirmationTag reports a commit whose confirmation tag does not
// match the epoch it leads to; it is returned wrapped with ErrTampered.
var errBadConfirmationTag = errors.New("mls: invalid confirmation tag")

// tampered wraps err so that it matches ErrTampered as well.
func tampered(err error) error {
	if errors.Is(err, ErrTampered) {
		return err
	}
	return fmt.Errorf("%w: %w", ErrTampered, err)
}
