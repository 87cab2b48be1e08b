package benchkit

import (
	"iter"
	"slices"
	"time"
)

// Median returns the middle value of xs (the upper one of an even count),
// or 0 for none. It does not reorder xs.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// Percentile returns the p-th percentile (0 < p < 100) of sorted durations,
// or 0 for none.
func Percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p/100))]
}

// Rounds splits total operations into rounds of at most size each, for a
// measurement that alternates with its baseline round by round so that a
// burst of load from elsewhere on the machine skews neither side. Each
// round is a multiple of multiple, and at least multiple; the rounds add up
// to at least total.
func Rounds(total, size, multiple int) iter.Seq[int] {
	return func(yield func(int) bool) {
		for done := 0; done < total; {
			n := min(size, total-done)
			n = max(n-n%multiple, multiple)
			done += n
			if !yield(n) {
				return
			}
		}
	}
}
