package bench

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// histSub is the number of buckets below histSub µs, one a microsecond;
// above, each power of two has histSub/2 buckets, so latencies are kept to
// within 1/(histSub/2) of their value (0.2 %), exactly below about 1 ms.
const (
	histSubBits = 10
	histSub     = 1 << histSubBits
	histBuckets = histSub + (64-histSubBits)*(histSub/2)
)

// histogram counts latencies in microseconds, in log-linear buckets. It is
// safe for concurrent use and takes constant memory however long a run is.
type histogram struct {
	counts [histBuckets]atomic.Int64
	n      atomic.Int64
	max    atomic.Int64
}

func histIndex(us uint64) int {
	if us < histSub {
		return int(us)
	}
	s := bits.Len64(us) - histSubBits // us>>s is in [histSub/2, histSub)
	return histSub + (s-1)*(histSub/2) + int(us>>s) - histSub/2
}

// histLow returns the smallest value of bucket i.
func histLow(i int) uint64 {
	if i < histSub {
		return uint64(i)
	}
	j := i - histSub
	s := j/(histSub/2) + 1
	return uint64(j%(histSub/2)+histSub/2) << s
}

func (h *histogram) record(d time.Duration) {
	us := max(d.Microseconds(), 0)
	h.counts[histIndex(uint64(us))].Add(1)
	h.n.Add(1)
	for {
		m := h.max.Load()
		if us <= m || h.max.CompareAndSwap(m, us) {
			return
		}
	}
}

// quantile returns the latency below or at which a fraction q of the
// recorded ones lie (the middle of its bucket), or 0 when none were
// recorded.
func (h *histogram) quantile(q float64) time.Duration {
	n := h.n.Load()
	if n == 0 {
		return 0
	}
	rank := int64(q*float64(n) + 0.999999)
	rank = min(max(rank, 1), n)
	var seen int64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			lo, hi := histLow(i), histLow(i+1)
			v := lo + (hi-lo)/2
			return min(time.Duration(v)*time.Microsecond, h.maxDuration())
		}
	}
	return h.maxDuration()
}

func (h *histogram) maxDuration() time.Duration {
	return time.Duration(h.max.Load()) * time.Microsecond
}
