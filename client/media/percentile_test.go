package media_test

import (
	"math"
	"slices"
	"testing"
	"time"

	"github.com/xchat-im/xchat/client/media"
)

func TestPercentiles(t *testing.T) {
	t.Parallel()
	var v []float64
	for i := 100; i >= 1; i-- {
		v = append(v, float64(i))
	}
	orig := slices.Clone(v)
	got := media.Percentiles(v, 0, 50, 99, 100, -5, 200, math.NaN())
	want := []float64{1, 50.5, 99.01, 100, 1, 100, 1}
	for i := range want {
		if math.Abs(got[i]-want[i]) > 1e-9 {
			t.Errorf("percentile %d: %v, want %v", i, got[i], want[i])
		}
	}
	if !slices.Equal(v, orig) {
		t.Error("input modified")
	}
	if media.Percentile(nil, 50) != 0 || media.Percentile([]float64{7}, 99) != 7 {
		t.Error("percentile of none or one value")
	}
	ds := []time.Duration{3 * time.Millisecond, time.Millisecond, 2 * time.Millisecond}
	if p := media.DurationPercentile(ds, 50); p != 2*time.Millisecond {
		t.Errorf("duration p50 %v", p)
	}
	if media.DurationPercentile(nil, 50) != 0 {
		t.Error("duration percentile of none")
	}
}
