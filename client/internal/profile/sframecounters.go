package profile

import (
	"errors"
	"math"
)

// ReserveSFrameCounters reserves n SFrame counters of this device's key in
// a group's epoch (spec/12-calls.md section 12.7) and returns the first:
// the counters from it up to it+n-1 are the caller's, and no later
// reservation of the epoch, in this process or another, returns them again.
func (t *Tx) ReserveSFrameCounters(group []byte, epoch, n uint64) (uint64, error) {
	if n == 0 || n > math.MaxInt32 || epoch > math.MaxInt64 {
		return 0, errors.New("profile: reserve SFrame counters: bad arguments")
	}
	var next int64
	err := t.get("reserve SFrame counters", `INSERT INTO sframe_counters (group_id, epoch, next) VALUES (?, ?, ?)
		ON CONFLICT (group_id, epoch) DO UPDATE SET next = next + excluded.next RETURNING next`,
		[]any{group, int64(epoch), int64(n)}, &next)
	if err != nil {
		return 0, err
	}
	if next < int64(n) {
		return 0, errors.New("profile: reserve SFrame counters: counters of the epoch exhausted")
	}
	return uint64(next) - n, nil
}
