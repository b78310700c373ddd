package postgres_test

import (
	"testing"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/postgres"
)

// TestUpgradeToSeqPerMailbox migrates a schema of version 3, whose
// envelopes were numbered by one counter for every mailbox, to the current
// version: the waiting envelopes keep their order, and a new envelope of
// any mailbox, even an empty one, is numbered after every old number.
func TestUpgradeToSeqPerMailbox(t *testing.T) {
	t.Parallel()
	u := newSchema(t, false)
	ctx := t.Context()
	if err := postgres.MigrateTo(ctx, u, 3); err != nil {
		t.Fatal(err)
	}
	conn := connect(t, u)
	if _, err := conn.Exec(ctx, `INSERT INTO accounts (address, created_at_ms) VALUES ('alice@example.org', 1), ('bob@example.org', 1);
		INSERT INTO devices (address, id, sig_key, kem, hpke_key, created_at_ms, mb_count, mb_bytes)
		VALUES ('alice@example.org', 1, '\x00', 32, '\x00', 1, 2, 2), ('bob@example.org', 1, '\x00', 32, '\x00', 1, 0, 0);
		INSERT INTO mailbox (address, device, envelope_id, lane, received_at_ms, size, sealed) VALUES
			('alice@example.org', 1, '\x01000000000000000000000000000000', 0, 1, 1, '\x01'),
			('bob@example.org', 1, '\x02000000000000000000000000000000', 0, 1, 1, '\x02'),
			('alice@example.org', 1, '\x03000000000000000000000000000000', 0, 1, 1, '\x03');
		DELETE FROM mailbox WHERE envelope_id = '\x02000000000000000000000000000000'`); err != nil {
		t.Fatal(err)
	}
	if err := postgres.Migrate(ctx, u); err != nil {
		t.Fatalf("Migrate from version 3: %v", err)
	}
	s := open(t, u, store.DefaultLimits())
	alice := store.Mailbox{Address: "alice@example.org", Device: 1}
	bob := store.Mailbox{Address: "bob@example.org", Device: 1}
	old, err := s.Pending(ctx, alice, 0, 10)
	if err != nil || len(old) != 2 || old[0].ID != (store.EnvelopeID{1}) || old[1].ID != (store.EnvelopeID{3}) {
		t.Fatalf("Pending after the upgrade = %+v, %v; want envelopes 1 and 3", old, err)
	}
	res, err := s.Enqueue(ctx, []store.Envelope{
		{ID: store.EnvelopeID{4}, To: alice, Sealed: []byte{4}},
		{ID: store.EnvelopeID{5}, To: bob, Sealed: []byte{5}},
	})
	if err != nil || res[0] != nil || res[1] != nil {
		t.Fatalf("Enqueue after the upgrade: %v %v", res, err)
	}
	for _, mb := range []store.Mailbox{alice, bob} {
		got, err := s.Pending(ctx, mb, 0, 10)
		if err != nil || len(got) == 0 {
			t.Fatalf("Pending(%s) = %d, %v", mb.Address, len(got), err)
		}
		if last := got[len(got)-1]; last.Seq <= old[1].Seq {
			t.Errorf("%s: the new envelope has seq %d, not after the old %d", mb.Address, last.Seq, old[1].Seq)
		}
	}
}
