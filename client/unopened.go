package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/xchat-im/xchat/client/internal/profile"
	"github.com/xchat-im/xchat/spec/wire"
)

// The client's rule for envelopes it cannot open because a domain's key
// cannot be had (spec/07-envelopes.md section 7.16, spec/15-limits.md).
const (
	// unopenedMaxTries is how many receive runs may fail to open an
	// envelope before it is acknowledged without being opened.
	unopenedMaxTries = 3
	// unopenedMaxAge is how long after it was first seen an envelope that
	// still does not open is acknowledged, whatever its tries.
	unopenedMaxAge = 10 * time.Minute
	// unopenedKeep bounds the records kept for the user; they are kept
	// for processedFor after they were last seen.
	unopenedKeep = 1000
)

// Unopened is the record of an envelope this device could not open because
// the sender-certificate key of a domain could not be had (its homeserver
// did not answer). The envelope stays in the mailbox for a later try until
// the client gives up on it (spec/07-envelopes.md section 7.16): then it is
// acknowledged without being opened, and its message is lost.
type Unopened struct {
	ID        [16]byte  // the envelope
	Domain    string    // the domain whose key was missing (the sender's, or a group member's); empty when unknown
	Reason    string    // why the key could not be had
	FirstSeen time.Time // the first failed try
	LastSeen  time.Time // the last failed try
	Tries     int       // receive runs that failed to open it
	GivenUp   bool      // acknowledged without being opened
}

// Unopened returns the records of envelopes this device could not open
// (pending and given up), the most recently seen first. Records are kept
// for 31 days after they were last seen, at most 1000.
func (p *Profile) Unopened(ctx context.Context) ([]Unopened, error) {
	var rows []*profile.Unopened
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		rows, err = tx.UnopenedList()
		return err
	})
	if err != nil {
		return nil, err
	}
	out := make([]Unopened, 0, len(rows))
	for _, r := range rows {
		u := Unopened{Domain: r.Domain, Reason: r.Reason, FirstSeen: r.FirstSeen, LastSeen: r.LastSeen, Tries: r.Tries, GivenUp: r.GivenUp}
		copy(u.ID[:], r.EnvelopeID)
		out = append(out, u)
	}
	return out, nil
}

// forgetUnopened drops old records of unopened envelopes.
func (p *Profile) forgetUnopened(ctx context.Context) error {
	return p.update(ctx, func(tx *profile.Tx) error {
		return tx.ForgetUnopened(time.Now().Add(-processedFor), unopenedKeep)
	})
}

// pendingUnopened returns the envelopes this device failed to open and
// has not given up on.
func (p *Profile) pendingUnopened(ctx context.Context) (map[[16]byte]bool, error) {
	var ids [][]byte
	err := p.view(ctx, func(tx *profile.Tx) (err error) {
		ids, err = tx.PendingUnopened()
		return err
	})
	out := make(map[[16]byte]bool, len(ids))
	for _, b := range ids {
		var id [16]byte
		copy(id[:], b)
		out[id] = true
	}
	return out, err
}

// ErrGivenUp wraps the error reported (through ReceiveOptions.OnDrop) for
// an envelope acknowledged without being opened, after it failed to open
// for too long.
var ErrGivenUp = errors.New("given up on an envelope that could not be opened")

// unopened records a failed try to open an envelope because a domain key
// could not be had, and reports whether the client gives up on it now:
// then it is marked processed and must be acknowledged. A try that was not
// made (the lookup was skipped) and a second failure in the same receive
// run do not count.
func (cl *Client) unopened(ctx context.Context, d wire.Delivery, cause error) (giveUp bool, err error) {
	var id [16]byte
	copy(id[:], d.ID)
	var dk *domainKeyError
	domain := ""
	if errors.As(cause, &dk) {
		if dk.skipped {
			return false, nil
		}
		domain = dk.domain
	}
	cl.keysMu.Lock()
	if cl.tried == nil {
		cl.tried = make(map[[16]byte]bool)
	}
	again := cl.tried[id]
	cl.tried[id] = true
	cl.keysMu.Unlock()
	if again {
		return false, nil
	}
	now := time.Now()
	err = cl.p.update(ctx, func(tx *profile.Tx) error {
		u, err := tx.NoteUnopened(d.ID, domain, cause.Error(), now)
		if err != nil {
			return err
		}
		giveUp = u.Tries >= unopenedMaxTries || now.Sub(u.FirstSeen) >= unopenedMaxAge
		if !giveUp {
			return nil
		}
		if err := tx.GiveUpUnopened(d.ID); err != nil {
			return err
		}
		return tx.MarkProcessed(d.ID)
	})
	if err != nil {
		return false, fmt.Errorf("record an envelope that did not open: %w", err)
	}
	return giveUp, nil
}

// opened deletes the record of an envelope that failed to open before and
// was processed now.
func (cl *Client) opened(ctx context.Context, id [16]byte, pending map[[16]byte]bool) error {
	if !pending[id] {
		return nil
	}
	delete(pending, id)
	return cl.p.update(ctx, func(tx *profile.Tx) error { return tx.DeleteUnopened(id[:]) })
}
