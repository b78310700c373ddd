package media

import (
	"slices"
	"time"
)

// Percentile returns the p-th percentile (p in 0..100, clamped) of values,
// interpolating linearly between the two nearest ranks; 0 for no values.
// values is not modified.
func Percentile(values []float64, p float64) float64 {
	return Percentiles(values, p)[0]
}

// Percentiles returns the percentiles ps (each in 0..100, clamped) of
// values, as Percentile does, sorting values once.
func Percentiles(values []float64, ps ...float64) []float64 {
	out := make([]float64, len(ps))
	if len(values) == 0 {
		return out
	}
	s := slices.Clone(values)
	slices.Sort(s)
	for i, p := range ps {
		out[i] = rank(s, p)
	}
	return out
}

// DurationPercentile returns the p-th percentile of ds as Percentile does.
func DurationPercentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	f := make([]float64, len(ds))
	for i, d := range ds {
		f[i] = float64(d)
	}
	return time.Duration(Percentile(f, p))
}

// rank interpolates the p-th percentile of sorted values s.
func rank(s []float64, p float64) float64 {
	if p != p { // NaN
		p = 0
	}
	p = max(0, min(100, p))
	r := p / 100 * float64(len(s)-1)
	lo := int(r)
	if lo >= len(s)-1 {
		return s[len(s)-1]
	}
	f := r - float64(lo)
	return s[lo]*(1-f) + s[lo+1]*f
}
