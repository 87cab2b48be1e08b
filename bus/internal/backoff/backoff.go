// Package backoff computes the delay before a retry: exponential growth with
// "equal jitter", pure and goroutine-free, so the schedule is table-tested
// and the driver (the bus's link keeper) owns the timers.
package backoff

import "time"

// Delay returns the delay before retry n (0 for the first): lo doubled n
// times, capped at hi, then a point in its upper half chosen by r in [0,1)
// (equal jitter: never less than half the step, so retries keep backing
// off, and spread over the other half, so peers that failed at the same
// moment do not retry in lockstep). A negative n counts as 0; lo <= 0 gives 0.
func Delay(n int, lo, hi time.Duration, r float64) time.Duration {
	if lo <= 0 {
		return 0
	}
	d := min(lo, hi)
	for i := 0; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	r = min(max(r, 0), 1)
	return d/2 + time.Duration(r*float64(d-d/2))
}

// Bounds returns the least and the most Delay(n, lo, hi, r) can be.
func Bounds(n int, lo, hi time.Duration) (least, most time.Duration) {
	return Delay(n, lo, hi, 0), Delay(n, lo, hi, 1)
}
