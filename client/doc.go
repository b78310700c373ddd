// Package client is the xchat reference client library: a device's local
// profile, its registration with a homeserver, and sending and receiving
// end-to-end encrypted messages in MLS groups (spec/09-mls.md) through
// sealed-sender envelopes (spec/07-envelopes.md).
//
// # Profiles and registration
//
// A Profile is the local state of one device, in a directory: OpenProfile
// opens or creates it, OpenExistingProfile returns ErrNoIdentity when there
// is none. Register creates an account with the profile's device as its
// first device, or, given a link code (RegisterOptions.Link), adds the device
// to an existing account. The device's keys are saved before the homeserver
// sees them: an interrupted Register is resumed by calling it again, and one
// the homeserver refused drops the keys so that another address can be
// tried. Connect connects a registered profile's device and authenticates
// it; it also keeps the device's key packages stocked on the homeserver and
// sends what an earlier run left in the outbox.
//
// # Sending and receiving
//
// Every conversation is an MLS group: Client.Send writes to the one-to-one
// chat with a user (creating it at the first message) and Client.SendGroup to
// a group. A message is encrypted once in the group and sealed for each
// other member device, with the delivery token of its account when there is
// one (else through the request lane); copies for this user's other devices
// carry no token and need none (spec/07-envelopes.md section 7.12, step 4).
// Payloads too large for one envelope are sent in fragments. A *SendError
// names the devices the homeserver refused. A copy for another device of
// this user that the homeserver refuses for a while (a full mailbox) does
// not fail the send: it waits in the outbox, Client.Pending lists its
// device, and it is sent again with the next send or connection.
//
// Client.Receive reads the push stream of a connection: each message is
// stored in the profile before its envelope is acknowledged, and reported
// through ReceiveOptions.OnMessage. A redelivered envelope (its
// acknowledgement was lost) is acknowledged and not reported again; one that
// does not open, verify or process is dropped and acknowledged (OnDrop); one
// whose sender's domain key cannot be had now is left for a later delivery
// (OnDefer), without holding up the rest, and given up on (acknowledged,
// OnDrop with ErrGivenUp) after 3 connections or 10 minutes; Profile.Unopened
// lists those envelopes for the user. A message of a group or epoch the device does not have yet is
// held until the Welcome or commit arrives. Client.CatchUp processes what
// waits without reporting it, so that a command acts on current group states;
// Profile.Unshown returns what it stored. A connection has one push stream:
// Receive or CatchUp runs once per Client.
//
// # Groups
//
// Client.CreateGroup, AddMembers and RemoveMember change groups by MLS
// commits. A user is added with each of its devices that has a key package
// published; a new group also holds the own account's other trusted devices.
// ProfileGroups lists the groups of a profile
// without connecting. When two members commit at once, the losing device
// makes its commit again on the winning branch (spec/09-mls.md section 9.8).
//
// # Files
//
// Client.SendFile and SendGroupFile share a file by reference
// (spec/11-files.md): the file is encrypted under a fresh key (package
// client/filecrypt), uploaded as a padded blob to this device's homeserver,
// several parts at a time, and its reference (where the blob is, its key
// and hash, the file's name, size and media type) travels with the caption
// in one MLS message to the conversation. An upload is recorded in the
// profile before its first part leaves and resumes when the same file is
// sent to the same conversation again; the upload is marked done in the
// transaction that queues the message. A received file message is a
// Message with File set; Client.Files lists the files of all
// conversations, and Client.DownloadFile fetches, verifies and writes one,
// through this device's homeserver, resuming an interrupted download from
// the verified part kept next to the output. The library never downloads a
// file by itself.
//
// # Calls
//
// A call is signalled in its conversation's MLS group as content of type 9
// (spec/12-calls.md section 12.2) and carried as media through the
// homeserver's relay in QUIC datagrams (sections 12.3 to 12.6).
// Client.StartCall calls a user in the one-to-one chat, StartGroupCall starts
// a call in a group: each joins a new room at the homeserver (call-join,
// naming the other domains of the group's members) and sends the invite,
// which carries the room and its token. Receive must run for calls: every
// call signal is stored (Message.Call) and reported through
// ReceiveOptions.OnCall as a CallUpdate. An invite rings (CallRinging, with
// the IncomingCall) and the device answers ringing, or busy when it is in
// another call; Client.AnswerCall joins the room and accepts (or joins a
// group call), DeclineCall declines, JoinCall joins the newest running call
// of a group. Another device of the account that sees an accept stops
// ringing (CallAnsweredElsewhere); when two devices accept, the one of the
// lower MLS leaf keeps the call and the other hangs up. A call nobody
// accepts ends at the ring timeout (Client.SetRingTimeout, 60 s by default):
// the caller hangs up with reason no answer and every callee device reports
// CallMissed.
//
// A Call sends media frames with Send: each frame is encrypted with SFrame
// (package client/sframe) under the key of this device's leaf in the group's
// current epoch, derived from the MLS exporter (section 12.7), split into
// packets and sent as datagrams; the call takes the new epoch's keys when a
// commit is processed or made, and a device removed from the group leaves
// its calls. One reader per connection gives each arriving packet to the
// call its room handle names; frames are reassembled (packets of one source
// and sequence, dropped after 1 s or 32 newer frames), decrypted, checked
// for replay and delivered on Frames. Updates, Connected and Done report the
// call's signalling; Stats counts frames by kind, losses, frames that did
// not decrypt, and round-trip times from echoes (section 12.8.3), which Send
// adds by itself.
//
// # Linked devices
//
// Client.CreateLink returns a LinkCode to show on a new device, which passes
// it to Register. The new device proves it knows the code's secret; the
// existing device then trusts it, adds it to its groups and gives it the
// account's delivery token (spec/09-mls.md section 9.5). ReceiveOptions.OnLinked
// reports it. Client.RemoveDevice removes a device from the account and from
// the groups.
//
// # Local state and durability
//
// A profile is one SQLite file, ProfileFile, with mode 0600 in a directory
// of mode 0700 (package client/internal/profile holds its schema and
// queries). Every change is one transaction, committed to disk before the
// client acts on it: a group's new state is saved together with what it
// sends (in the outbox) before anything leaves, so that no key is used twice
// and nothing committed is lost; what a received envelope brings is saved
// together with the record that the envelope was processed, before it is
// acknowledged. Several processes may use one profile: a group changed by
// another process meanwhile is loaded again and the change made again.
//
// # Errors
//
// ErrNoIdentity, ErrNoGroup, ErrNotInGroup and ErrUnknownFile are returned
// for a profile, group, membership or file that is not there. A download
// of a blob that is not the referenced file fails with ErrFileCorrupt, and
// one to an existing output with ErrFileExists. A refusal by the homeserver wraps a
// *wire.Error (test it with errors.Is against the wire.Err* values); a
// *SendError unwraps to one per refused device. While an envelope is
// received, an error of the profile store stops Receive without
// acknowledging the envelope, so that it is delivered and processed again;
// an envelope that cannot be processed at all is dropped instead (OnDrop).
package client
