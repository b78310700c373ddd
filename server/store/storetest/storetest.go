// Package storetest is a conformance suite for implementations of
// [store.Store]. A backend's tests call [Run] and, if the backend keeps its
// state across a close, [RunReopen] and [RunBlobsReopen].
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
)

// Opener opens a new, empty store with the given limits for t and closes it
// when t ends (t.Cleanup). The suite may close the store itself first, so
// closing it again must be harmless.
type Opener func(t *testing.T, limits store.Limits) store.Store

// Limits the suite opens its stores with unless a test needs others.
var testLimits = store.Limits{
	MailboxMaxEnvelopes: 5,
	MailboxMaxBytes:     1000,
	MaxOneTimeKeys:      60,
	MaxDevices:          4,
	MaxLinkTokens:       5,
}

// Run runs the conformance suite. Every subtest opens its own store and
// runs in parallel with the others.
func Run(t *testing.T, open Opener) {
	tests := []namedTest{
		{"CreateAccount", testCreateAccount},
		{"CreateAccountFirstDeviceID", testCreateAccountFirstDeviceID},
		{"InviteConsumedOnce", testInviteConsumedOnce},
		{"InviteExpired", testInviteExpired},
		{"InviteUnknown", testInviteUnknown},
		{"InviteKeptWhenAccountExists", testInviteKeptWhenAccountExists},
		{"UnknownDevice", testUnknownDevice},
		{"PolicyDefault", testPolicyDefault},
		{"PolicyReplace", testPolicyReplace},
		{"PublishKeyPackages", testPublishKeyPackages},
		{"KeyPackageLimit", testKeyPackageLimit},
		{"ClaimKeyPackage", testClaimKeyPackage},
		{"ClaimKeyPackageConcurrent", testClaimKeyPackageConcurrent},
		{"LastResortKeyPackage", testLastResortKeyPackage},
		{"Enqueue", testEnqueue},
		{"EnqueueDuplicate", testEnqueueDuplicate},
		{"EnqueueUnknownDevice", testEnqueueUnknownDevice},
		{"MailboxFullByCount", testMailboxFullByCount},
		{"MailboxFullByBytes", testMailboxFullByBytes},
		{"MailboxOriginShare", testMailboxOriginShare},
		{"EnqueueMixedBatch", testEnqueueMixedBatch},
		{"EnqueueCanceled", testEnqueueCanceled},
		{"SeqOrder", testSeqOrder},
		{"SeqNotReused", testSeqNotReused},
		{"Pending", testPending},
		{"Ack", testAck},
		{"Expire", testExpire},
		{"ExpireMany", testExpireMany},
		{"ConcurrentEnqueue", testConcurrentEnqueue},
		{"Closed", testClosed},
		{"EnqueueNotice", testEnqueueNotice},
		{"OutboundClaimOrder", testOutboundClaimOrder},
		{"OutboundDuplicate", testOutboundDuplicate},
		{"OutboundLease", testOutboundLease},
		{"OutboundDue", testOutboundDue},
		{"OutboundLimit", testOutboundLimit},
		{"OutboundLimitMixed", testOutboundLimitMixed},
		{"OutboundDomainsIndependent", testOutboundDomainsIndependent},
		{"OutboundConcurrentClaims", testOutboundConcurrentClaims},
		{"OutboundDelete", testOutboundDelete},
		{"OutboundRetry", testOutboundRetry},
		{"OutboundDomains", testOutboundDomains},
		{"OutboundToken", testOutboundToken},
		{"OutboundRoundTrip", testOutboundRoundTrip},
		{"OutboundCanceled", testOutboundCanceled},
		{"OutboundClosed", testOutboundClosed},
		{"OutboundUsage", testOutboundUsage},
		{"LinkDevice", testLinkDevice},
		{"LinkExpiry", testLinkExpiry},
		{"LinkWrongAccount", testLinkWrongAccount},
		{"DeleteExpiredLinks", testDeleteExpiredLinks},
		{"LinkTokenLimit", testLinkTokenLimit},
		{"LinkDeviceLimit", testLinkDeviceLimit},
		{"LinkConcurrent", testLinkConcurrent},
		{"RemoveDevice", testRemoveDevice},
		{"RemoveDeviceNotReused", testRemoveDeviceNotReused},
	}
	for _, tt := range append(tests, blobTests...) {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// namedTest is one test of the suite.
type namedTest struct {
	name string
	fn   func(t *testing.T, open Opener)
}

// now is a time with the millisecond precision stores keep.
func now() time.Time { return time.Now().Truncate(time.Millisecond) }

// device returns a first device for address with keys derived from it.
func device(address string) store.Device {
	return store.Device{
		Address:   address,
		ID:        1,
		SigKey:    bytes.Repeat([]byte{byte(len(address))}, 32),
		KEM:       0x0020,
		HPKEKey:   append([]byte("hpke:"), address...),
		CreatedAt: now(),
	}
}

// newAccount creates an account without an invite and returns its mailbox.
func newAccount(t *testing.T, s store.Store, address string) store.Mailbox {
	t.Helper()
	if err := s.CreateAccount(t.Context(), device(address), nil); err != nil {
		t.Fatalf("CreateAccount(%s): %v", address, err)
	}
	return store.Mailbox{Address: address, Device: 1}
}

// id returns an envelope ID made from n.
func id(n int) store.EnvelopeID {
	var e store.EnvelopeID
	copy(e[:], fmt.Sprintf("env-%012d", n))
	return e
}

// sealed returns size bytes derived from seed.
func sealed(seed, size int) []byte {
	b := make([]byte, size)
	for i := range b {
		b[i] = byte(seed + i)
	}
	return b
}

// env returns an envelope to mb with ID id(n) and a sealed payload of size
// bytes.
func env(mb store.Mailbox, n, size int) store.Envelope {
	return store.Envelope{
		ID:         id(n),
		To:         mb,
		Sealed:     sealed(n, size),
		Lane:       store.Lane(n % 2),
		ReceivedAt: now(),
	}
}

// enqueue enqueues envs and fails the test unless every one was stored.
func enqueue(t *testing.T, s store.Store, envs ...store.Envelope) {
	t.Helper()
	res, err := s.Enqueue(t.Context(), envs)
	if err != nil {
		t.Fatalf("Enqueue: %v", err)
	}
	if len(res) != len(envs) {
		t.Fatalf("Enqueue returned %d results for %d envelopes", len(res), len(envs))
	}
	for i, err := range res {
		if err != nil {
			t.Fatalf("Enqueue: envelope %d: %v", i, err)
		}
	}
}

// pending returns everything waiting in mb.
func pending(t *testing.T, s store.Store, mb store.Mailbox) []store.Stored {
	t.Helper()
	got, err := s.Pending(t.Context(), mb, 0, 1<<30)
	if err != nil {
		t.Fatalf("Pending(%v): %v", mb, err)
	}
	return got
}

// pendingIDs returns the IDs waiting in mb, in Seq order.
func pendingIDs(t *testing.T, s store.Store, mb store.Mailbox) []store.EnvelopeID {
	t.Helper()
	var ids []store.EnvelopeID
	for _, st := range pending(t, s, mb) {
		ids = append(ids, st.ID)
	}
	return ids
}

// wantIDs fails the test unless got lists the IDs id(n) for ns, in order.
func wantIDs(t *testing.T, what string, got []store.EnvelopeID, ns ...int) {
	t.Helper()
	want := make([]store.EnvelopeID, len(ns))
	for i, n := range ns {
		want[i] = id(n)
	}
	if len(got) != len(want) {
		t.Fatalf("%s: %d envelopes %q, want %d %q", what, len(got), got, len(want), want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: envelope %d is %q, want %q", what, i, got[i], want[i])
		}
	}
}

// wantErr fails the test unless errors.Is(err, want); want nil means no
// error.
func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if want == nil {
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return
	}
	if !errors.Is(err, want) {
		t.Fatalf("%s: error %v, want %v", what, err, want)
	}
}

// sameEnvelope fails the test unless got is want as stored.
func sameEnvelope(t *testing.T, got store.Stored, want store.Envelope) {
	t.Helper()
	if got.ID != want.ID || got.To != want.To || got.Lane != want.Lane || got.Origin != want.Origin ||
		!bytes.Equal(got.Sealed, want.Sealed) || !got.ReceivedAt.Equal(want.ReceivedAt) {
		t.Fatalf("stored envelope\n  %q to %v lane %d at %v from %q, %d bytes\nwant\n  %q to %v lane %d at %v from %q, %d bytes",
			got.ID, got.To, got.Lane, got.ReceivedAt, got.Origin, len(got.Sealed),
			want.ID, want.To, want.Lane, want.ReceivedAt, want.Origin, len(want.Sealed))
	}
}

// canceled returns a context that is already canceled.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
