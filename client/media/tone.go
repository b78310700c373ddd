package media

import (
	"math"
	"time"
)

// fullScale is the amplitude of a full-scale 16-bit sample.
const fullScale = 32767

// Tone returns a sine wave of freq Hz lasting d, at Rate samples/s, with
// amplitude amp as a fraction of full scale (clamped to 0..1).
func Tone(freq float64, d time.Duration, amp float64) *PCM {
	amp = math.Max(0, math.Min(1, amp))
	n := samplesIn(d)
	s := make([]int16, n)
	w := 2 * math.Pi * freq / Rate
	for i := range s {
		s[i] = int16(math.Round(amp * fullScale * math.Sin(w*float64(i))))
	}
	return &PCM{Rate: Rate, Samples: s}
}

// Silence returns d of silence at Rate samples/s.
func Silence(d time.Duration) *PCM {
	return &PCM{Rate: Rate, Samples: make([]int16, samplesIn(d))}
}

// samplesIn is the number of samples at Rate in d (0 for d <= 0).
func samplesIn(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int(int64(d) * Rate / int64(time.Second))
}

// Level estimates the amplitude of the frequency freq (Hz) in samples
// taken at rate samples/s, as a fraction of full scale: a tone of
// amplitude a at freq gives about a, other frequencies little (a Goertzel
// filter over a Hann window, so frequencies more than two bins of rate/len
// away leak little). It returns 0 for no samples or an invalid rate.
func Level(samples []int16, rate int, freq float64) float64 {
	n := len(samples)
	if n == 0 || rate <= 0 {
		return 0
	}
	w := 2 * math.Pi * freq / float64(rate)
	coeff := 2 * math.Cos(w)
	var s1, s2, wsum float64
	for i, x := range samples {
		win := 1.0
		if n > 1 {
			win = 0.5 - 0.5*math.Cos(2*math.Pi*float64(i)/float64(n-1))
		}
		wsum += win
		s0 := win*float64(x) + coeff*s1 - s2
		s2, s1 = s1, s0
	}
	power := s1*s1 + s2*s2 - coeff*s1*s2
	if power < 0 || wsum == 0 {
		return 0
	}
	return 2 * math.Sqrt(power) / wsum / fullScale
}

// RMS is the root mean square of samples as a fraction of full scale (a
// full-scale sine gives about 0.707), 0 for no samples.
func RMS(samples []int16) float64 {
	if len(samples) == 0 {
		return 0
	}
	var sum float64
	for _, x := range samples {
		sum += float64(x) * float64(x)
	}
	return math.Sqrt(sum/float64(len(samples))) / fullScale
}

// DB converts a level (fraction of full scale) to decibels relative to
// full scale, 20·log10(level), floored at -120 dB.
func DB(level float64) float64 {
	if level <= 1e-6 {
		return -120
	}
	return 20 * math.Log10(level)
}
