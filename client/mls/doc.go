// Package mls implements the Messaging Layer Security protocol (RFC 9420)
// that xchat conversations use: the wire codec, the cipher suites and
// their labelled cryptographic functions, tree math, the secret tree, the
// key schedule, the transcript hashes, the wire structures (key packages,
// leaf nodes, ratchet trees, proposals, commits, framing, Welcome and
// GroupInfo), and on top of them the group state machine Group.
//
// # Groups
//
// A member makes a KeyPackageBundle with NewKeyPackage (xchat leaves use
// CredentialTypeXchat and XchatKeyPackageOptions), starts a group with
// CreateGroup or joins one with JoinFromWelcome or JoinExternal, and then
// uses Commit (adds, removes, updates, PSKs), Propose*, Encrypt and
// Process. MarshalState and UnmarshalGroup persist the state. Config holds
// the policy: the ValidateCredential hook, called for every leaf that
// enters or changes in the tree, and the limits (members, retained epochs,
// out-of-order generations per sender).
//
// Everything a peer sends is validated as RFC 9420 sections 6, 7.3, 10.1,
// 12.2 and 12.4 require. Errors are typed (errors.Is): ErrNotMember,
// ErrReplay, ErrTampered with ErrBadSignature, ErrBadMembershipTag and
// ErrBadConfirmationTag, ErrWrongEpoch, ErrWrongGroup, ErrInvalidProposal,
// ErrInvalidCommit, ErrStaleCommit, ErrRemoved, ErrInvalidCredential,
// ErrTooManyMembers and ErrInvalidKeyPackage.
//
// # Concurrent commits
//
// xchat has no hub that orders commits, so two members may commit in the
// same epoch. Every member resolves such races the same way: for each
// epoch N the winning commit is the one whose encoded MLSMessage has the
// lowest SHA-256 hash (bytes compared lexicographically). A member applies
// its own commits as soon as it creates them, and applies the first valid
// commit it receives for its current epoch. A Group keeps the state of its
// last MaxRetainedEpochs epochs (default 4), each with the hash of the
// commit that moved the group on from it. When a commit for an earlier
// epoch e arrives:
//
//   - if no state of epoch e is retained, Process returns ErrStaleCommit;
//   - if its hash is higher than that of the commit applied in epoch e, it
//     loses: ErrStaleCommit (an equal hash is a duplicate: ErrReplay); if it
//     is valid, the epoch it leads to is kept read-only all the same, so
//     that application messages its sender sent there can be read;
//   - if its hash is lower, it is validated against the state of epoch e
//     and, when valid, the group returns to epoch e and applies it. The
//     epochs of the losing branch leave the live state but their keys stay
//     (read-only, bounded by MaxRetainedEpochs) so that application
//     messages already sent in them still decrypt.
//
// A commit built on a losing branch does not authenticate against the
// winning branch and is rejected with a typed error (ErrTampered, or
// ErrStaleCommit when it loses anyway). When a member's own commit loses,
// Process reports it in Processed.LostOwnCommit, with the proposals it
// carried and CommitOptions to commit again in the new epoch. Application
// messages sent in an undone epoch stay readable (within the retention
// bound) by every member that received the losing commit. A message that
// fails authentication may belong to a branch the member has not seen
// yet (a winning commit or a losing one still on its way): a client that
// keeps such messages a short while and retries them after each commit it
// processes, including commits rejected with ErrStaleCommit, reads them
// too.
//
// Each part is checked against the MLS working group's official test
// vectors (see ../../../shared/vectors/mls or the XCHAT_MLS_VECTORS
// variable), including the passive-client vectors that drive a Group.
package mls
