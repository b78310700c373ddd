package sqlite_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/xchat-im/xchat/server/store"
	"github.com/xchat-im/xchat/server/store/sqlite"
)

// Export yields every kind of record, in the documented order.
func TestExport(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "x.db"), store.DefaultLimits(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.UnixMilli(time.Now().UnixMilli())
	dev := store.Device{Address: "a@x.test", ID: 1, SigKey: make([]byte, 32), KEM: 0x647a, HPKEKey: make([]byte, 1216), CreatedAt: now}
	if err := s.CreateAccount(ctx, dev, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.SetPolicy(ctx, dev.Address, store.Policy{Verifiers: [][]byte{make([]byte, 32)}, RequestLaneOpen: false}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateInvite(ctx, []byte("hash"), now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	mb := store.Mailbox{Address: dev.Address, Device: 1}
	if _, err := s.PublishKeyPackages(ctx, mb, [][]byte{[]byte("kp1"), []byte("kp2")}, []byte("last")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enqueue(ctx, []store.Envelope{{ID: store.EnvelopeID{1}, To: mb, Sealed: []byte("s"), Lane: store.LaneRequest, ReceivedAt: now}}); err != nil {
		t.Fatal(err)
	}
	out := store.Outbound{Domain: "y.test", Envelope: store.Envelope{ID: store.EnvelopeID{2}, To: store.Mailbox{Address: "b@y.test", Device: 1},
		Sealed: []byte("t"), ReceivedAt: now}, Token: []byte("tok"), From: mb, NextTry: now}
	if err := s.EnqueueOutbound(ctx, []store.Outbound{out}); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	err = s.Export(ctx, func(r store.Record) error {
		switch {
		case r.Account != nil:
			kinds = append(kinds, "account")
			if r.Account.Policy.RequestLaneOpen || len(r.Account.Policy.Verifiers) != 1 {
				t.Errorf("policy %+v", r.Account.Policy)
			}
		case r.Device != nil:
			kinds = append(kinds, "device")
			if !r.Device.CreatedAt.Equal(now) || r.Device.KEM != 0x647a {
				t.Errorf("device %+v", r.Device)
			}
		case r.Invite != nil:
			kinds = append(kinds, "invite")
		case r.KeyPackage != nil:
			kinds = append(kinds, "kp:"+string(r.KeyPackage.Data))
		case r.Envelope != nil:
			kinds = append(kinds, "envelope")
			if r.Envelope.Lane != store.LaneRequest || !r.Envelope.ReceivedAt.Equal(now) || r.Envelope.ID != (store.EnvelopeID{1}) {
				t.Errorf("envelope %+v", r.Envelope)
			}
		case r.Outbound != nil:
			kinds = append(kinds, "outbound")
			if string(r.Outbound.Token) != "tok" || r.Outbound.From != mb || r.Outbound.Domain != "y.test" {
				t.Errorf("outbound %+v", r.Outbound)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"account", "device", "invite", "kp:kp1", "kp:kp2", "kp:last", "envelope", "outbound"}
	if len(kinds) != len(want) {
		t.Fatalf("exported %v, want %v", kinds, want)
	}
	for i := range want {
		if kinds[i] != want[i] {
			t.Fatalf("exported %v, want %v", kinds, want)
		}
	}
}
