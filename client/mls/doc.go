// Package mls gives an xchat device its MLS groups (RFC 9420, profiled by
// spec/09-mls.md): creating and joining groups, changing them by commits,
// sending and receiving application messages, and saving a group's state.
//
// # Overview
//
// This package is the API: Group, key packages, cipher suites, Config and
// the errors callers decide on. The protocol's parts live in internal
// packages that only this package uses: internal/codec (the TLS-style
// encoding), internal/treemath, internal/ciphersuite (suites and their
// labelled functions), internal/message (the wire structures),
// internal/ratchettree (tree hashes, parent hashes, TreeKEM, tree
// validation), internal/keyschedule (epoch secrets, PSKs, transcript
// hashes), internal/secrettree, internal/framing (PublicMessage and
// PrivateMessage protection) and internal/welcome (Welcome and GroupInfo).
// Some exported types are aliases of internal ones (KeyPackage,
// Credential, Extension, MLSMessage, CipherSuite, LeafIndex,
// PreSharedKeyID): their fields are for reading and building values. Of
// their methods, callers use MLSMessage.UnmarshalBinary (to read a
// message's wire format, group and epoch before Process), CipherSuite.ID
// and CipherSuite.GenerateSignatureKey; the others serve the internal
// packages.
//
// # Groups
//
// CreateGroup starts a group whose only member is the owner of a
// KeyPackageBundle. JoinFromWelcome joins from the Welcome of a commit
// that added one of the member's key packages; JoinExternal joins by
// external commit from a GroupInfo (Group.GroupInfo, with Group.RatchetTree
// when the tree is sent apart). A Group then:
//
//   - changes the group with Commit (adds, removes, an update of the own
//     leaf, PSKs) or proposes with ProposeAdd, ProposeRemove and
//     ProposeUpdate; Commit applies the commit at once and returns it with
//     a Welcome for the added members;
//   - protects application data with Encrypt;
//   - takes every message sent to the group with Process, which returns
//     a Processed saying what it was (application data, a proposal kept
//     for the next commit, or a commit and the members it changed);
//   - tells its state: Epoch, GroupID, Members, OwnLeaf, Removed,
//     WelcomedBy, EpochAuthenticator (to compare out of band for forks)
//     and Export (the MLS exporter);
//   - is saved with MarshalState and restored with UnmarshalGroup.
//
// A Group is safe for concurrent use. Every Group method that changes the
// state (Commit, Propose*, Encrypt, Process) changes what MarshalState
// returns: save the state after each, including after Process returns
// ErrStaleCommit.
//
// # Concurrent commits
//
// xchat has no hub that orders commits, so two members may commit in the
// same epoch (spec/09-mls.md section 9.8). Every member resolves such
// races the same way: for each epoch the winning commit is the one whose
// encoded MLSMessage has the lowest SHA-256 hash. A member applies its own
// commits as soon as it creates them, and applies the first valid commit
// it receives for its current epoch. A Group keeps the state of its last
// Config.MaxRetainedEpochs epochs (default 4), each with the hash of the
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
// winning branch and is rejected with ErrTampered (or ErrStaleCommit when
// it loses anyway). When a member's own commit loses, Process reports it
// in Processed.LostOwnCommit, with the CommitOptions to commit again in
// the new epoch. A message that fails
// authentication may belong to a branch the member has not seen yet: a
// client that keeps such messages a short while and retries them after
// each commit it processes, including commits rejected with
// ErrStaleCommit, reads them too.
//
// # Key packages
//
// NewKeyPackage makes a KeyPackageBundle: a KeyPackage and the private
// keys its owner keeps (init, leaf encryption and signature keys). xchat
// devices pass a Credential of type CredentialTypeXchat and the options of
// XchatKeyPackageOptions. Bundle.Message is the encoded MLSMessage to
// publish; Bundle.Ref is its KeyPackageRef, which JoinFromWelcome's lookup
// receives; MarshalBinary and UnmarshalKeyPackageBundle store a bundle,
// private keys included. ParseKeyPackage decodes a peer's key package and
// checks its signatures; the caller still checks its credential.
//
// # Suites
//
// LookupSuite returns a CipherSuite by its code point. xchat groups use
// XWingAES128GCMSHA256Ed25519 (0xF031, a private-use code point: X-Wing
// KEM, AES-128-GCM, SHA-256, Ed25519). The suites of RFC 9420 with X25519,
// P-256, P-384 and P-521 (0x0001, 0x0002, 0x0003, 0x0005, 0x0007) are
// implemented too; X448 and Ed448 (0x0004, 0x0006) are not.
//
// # Errors
//
// Errors are tested with errors.Is; one error may match several.
//
//   - ErrNoCredentialValidator: CreateGroup, JoinFromWelcome, JoinExternal
//     and UnmarshalGroup with a Config without ValidateCredential.
//   - ErrInvalidCredential: the validator rejected a leaf entering or
//     changing in the tree (CreateGroup, Commit, Process, JoinFromWelcome,
//     JoinExternal); the validator's error is wrapped too.
//   - ErrInvalidKeyPackage: ParseKeyPackage, or Commit adding a key package
//     that does not verify.
//   - ErrTooManyMembers: a commit (own or received) or a joined tree would
//     exceed Config.MaxMembers.
//   - ErrRemoved: any operation on a group the member was removed from.
//   - From Process: ErrWrongGroup (another group's message), ErrWrongEpoch
//     (an epoch the group does not hold), ErrNotMember (a sender that is
//     not a member), ErrReplay (a key generation, proposal or commit seen
//     before), ErrTampered (AEAD, signature, membership tag or
//     confirmation tag failure), ErrInvalidProposal, ErrInvalidCommit and
//     ErrStaleCommit (see Concurrent commits). ErrInvalidProposal also
//     comes from Commit and Propose* with proposals RFC 9420 section 12.2
//     forbids.
//
// Malformed input gives an error wrapping none of these.
//
// # Security: what the caller provides
//
//   - Config.ValidateCredential is required. It is the Authentication
//     Service: it decides whether a credential may sit at a leaf with a
//     given signature key (xchat checks the sender certificate against
//     its domain's key). It is called for every leaf that enters or
//     changes in the tree.
//   - Config.ExternalPSK supplies external pre-shared keys, if any.
//   - Private keys: KeyPackageBundle holds them in clear, and
//     MarshalState's output holds the group's secrets; store both
//     encrypted at rest, and delete a one-time bundle once it was used to
//     join.
//   - The state must be saved after every change (see Groups), or a
//     restarted member reuses keys or misses epochs.
//
// Randomness comes from crypto/rand.
//
// # Test vectors
//
// The tests of this package and of its internal packages check every part
// against the MLS working group's official test vectors, read from the
// directory XCHAT_MLS_VECTORS names or from shared/vectors/mls in the
// nearest parent directory that has one (internal/vectortest). Without
// vectors the tests are skipped, and fail when CI=true. The passive-client
// vectors drive a Group through Welcome and commits; cases of suites 0x0004
// and 0x0006 are skipped.
package mls
