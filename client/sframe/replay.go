package sframe

// replayWindow is the window of spec 12.7: the 128 highest counters seen
// under one KID. A counter already accepted in it, or below it, is a
// replay.
type replayWindow struct {
	seen bool
	top  uint64    // highest accepted counter
	bits [2]uint64 // bit i: top-i accepted (i < 128)
}

// windowSize is the number of counters the window remembers.
const windowSize = 128

// check reports whether ctr may be accepted.
func (w *replayWindow) check(ctr uint64) bool {
	if !w.seen || ctr > w.top {
		return true
	}
	d := w.top - ctr
	if d >= windowSize {
		return false
	}
	return w.bits[d/64]&(1<<(d%64)) == 0
}

// accept records ctr, which check allowed.
func (w *replayWindow) accept(ctr uint64) {
	if !w.seen {
		w.seen, w.top, w.bits = true, ctr, [2]uint64{1, 0}
		return
	}
	if ctr > w.top {
		w.shift(ctr - w.top)
		w.top = ctr
		w.bits[0] |= 1
		return
	}
	d := w.top - ctr
	w.bits[d/64] |= 1 << (d % 64)
}

// shift moves the window up by n counters.
func (w *replayWindow) shift(n uint64) {
	switch {
	case n >= windowSize:
		w.bits = [2]uint64{}
	case n >= 64:
		w.bits = [2]uint64{0, w.bits[0] << (n - 64)}
	default:
		if n == 0 {
			return
		}
		w.bits = [2]uint64{w.bits[0] << n, w.bits[1]<<n | w.bits[0]>>(64-n)}
	}
}
