package store

import (
	"math/rand/v2"
	"time"
)

// ReceivedAtJitter bounds the random delay ReceivedAt subtracts.
const ReceivedAtJitter = time.Second

// ReceivedAt returns the received-at time to record for an envelope that a
// device submitted at now: now less a delay drawn uniformly at random from
// 0 to 999 ms, freshly for each envelope, in whole milliseconds
// (spec/07-envelopes.md section 7.12, step 8). The copies of one send, for
// several mailboxes or for another domain's outbound queue, thus do not
// share a time that links them (spec/16-security.md section 16.11).
func ReceivedAt(now time.Time) time.Time {
	ms := now.UnixMilli() - rand.Int64N(ReceivedAtJitter.Milliseconds())
	return time.UnixMilli(ms)
}
