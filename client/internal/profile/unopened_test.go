package profile

import (
	"bytes"
	"testing"
	"time"
)

func TestUnopened(t *testing.T) {
	t.Parallel()
	s, _ := open(t)
	t0 := time.UnixMilli(1_700_000_000_000)
	a, b, c := []byte{0xa}, []byte{0xb}, []byte{0xc}
	update(t, s, func(tx *Tx) error {
		for i, when := range []time.Time{t0, t0.Add(time.Minute)} {
			u, err := tx.NoteUnopened(a, "evil.test", "no answer", when)
			if err != nil {
				return err
			}
			if u.Tries != i+1 || !u.FirstSeen.Equal(t0) || !u.LastSeen.Equal(when) || u.GivenUp || u.Domain != "evil.test" {
				t.Fatalf("try %d: %+v", i+1, u)
			}
		}
		if _, err := tx.NoteUnopened(b, "", "unknown", t0.Add(2*time.Minute)); err != nil {
			return err
		}
		if _, err := tx.NoteUnopened(c, "c.test", "no answer", t0.Add(-40*24*time.Hour)); err != nil {
			return err
		}
		return tx.GiveUpUnopened(a)
	})
	view(t, s, func(tx *Tx) error {
		all, err := tx.UnopenedList()
		if err != nil || len(all) != 3 || !bytes.Equal(all[0].EnvelopeID, b) || !bytes.Equal(all[1].EnvelopeID, a) || !all[1].GivenUp || all[0].GivenUp {
			t.Fatalf("records %+v, %v", all, err)
		}
		pending, err := tx.PendingUnopened()
		if err != nil || len(pending) != 2 {
			t.Fatalf("pending %x, %v", pending, err)
		}
		return nil
	})
	// Old records go, then all but the newest kept.
	update(t, s, func(tx *Tx) error { return tx.ForgetUnopened(t0.Add(-30*24*time.Hour), 1) })
	view(t, s, func(tx *Tx) error {
		all, err := tx.UnopenedList()
		if err != nil || len(all) != 1 || !bytes.Equal(all[0].EnvelopeID, b) {
			t.Fatalf("after forgetting: %+v, %v", all, err)
		}
		return nil
	})
	update(t, s, func(tx *Tx) error { return tx.DeleteUnopened(b) })
	view(t, s, func(tx *Tx) error {
		if all, err := tx.UnopenedList(); err != nil || len(all) != 0 {
			t.Fatalf("after delete: %+v, %v", all, err)
		}
		return nil
	})
}
