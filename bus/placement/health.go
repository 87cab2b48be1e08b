package placement

import (
	"math"
	"sync/atomic"
	"time"
)

// HealthPolicy says when an instance is taken out of placement and for how
// long. The zero value is a valid policy with the defaults below.
type HealthPolicy struct {
	// Failures is how many consecutive failures take an instance out;
	// zero means DefaultFailures.
	Failures int
	// CoolDown is how long an instance stays out the first time; each
	// time in a row it is taken out again the cool-down doubles, up to
	// MaxCoolDown. Zero means DefaultCoolDown.
	CoolDown time.Duration
	// MaxCoolDown bounds the cool-down, so no instance is out for good;
	// zero means DefaultMaxCoolDown.
	MaxCoolDown time.Duration
}

const (
	DefaultFailures    = 5
	DefaultCoolDown    = time.Second
	DefaultMaxCoolDown = 30 * time.Second
)

func (p HealthPolicy) failures() int64 {
	if p.Failures <= 0 {
		return DefaultFailures
	}
	return int64(p.Failures)
}

// coolDown returns how long an instance taken out for the n-th time in a
// row stays out.
func (p HealthPolicy) coolDown(n int64) time.Duration {
	d, max := p.CoolDown, p.MaxCoolDown
	if d <= 0 {
		d = DefaultCoolDown
	}
	if max <= 0 {
		max = DefaultMaxCoolDown
	}
	for ; n > 1 && d < max; n-- {
		d *= 2
	}
	return min(d, max)
}

// Health is a circuit breaker for one instance. It is in while calls to it
// succeed. Policy.Failures failures in a row take it out for a cool-down;
// once that has passed it is half-open: placement may pick it again, and
// the first pick makes that call its probe, during which it is out to every
// other call. A success brings it back in; the probe's failure takes it out
// again for twice as long, up to MaxCoolDown, so it is never out for good.
// Failures of calls sent before it was taken out do not lengthen its
// cool-down. Time is an input: every method is given the current time and
// none reads a clock.
//
// The zero value is in. Methods are safe for concurrent use.
//
// Every actor carries one (in its Stats), so it is kept small: the count of
// failures in a row is four bytes, beside the probe's flag, and stays at its
// most once there.
type Health struct {
	outTill atomic.Int64 // unix nanoseconds until which it is out; 0 while in
	trips   atomic.Int64 // times taken out in a row, 0 while in
	fails   atomic.Int32 // consecutive failures, at most math.MaxInt32
	probing atomic.Bool  // a probe is in flight
}

// In reports whether placement may pick the instance at now: it is in, or
// its cool-down has passed (half-open).
func (h *Health) In(now time.Time) bool {
	t := h.outTill.Load()
	return t == 0 || now.UnixNano() >= t
}

// Out reports whether the instance is out, half-open or probing.
func (h *Health) Out() bool { return h.outTill.Load() != 0 }

// Picked is told that placement chose the instance at now. When it is
// half-open, the call is its probe: the instance stays out to others until
// the probe's outcome is known, or one more cool-down has passed (a probe
// that never ends). It reports whether this call is the probe.
func (h *Health) Picked(now time.Time, p HealthPolicy) bool {
	t := h.outTill.Load()
	if t == 0 || now.UnixNano() < t {
		return false
	}
	if !h.outTill.CompareAndSwap(t, now.Add(p.coolDown(h.trips.Load())).UnixNano()) {
		return false
	}
	h.probing.Store(true)
	return true
}

// Success records a call that succeeded. It reports whether it brought the
// instance back in.
func (h *Health) Success() bool {
	if h.fails.Load() != 0 {
		h.fails.Store(0)
	}
	if h.outTill.Load() == 0 {
		return false
	}
	h.probing.Store(false)
	h.trips.Store(0)
	return h.outTill.Swap(0) != 0
}

// fail counts one more failure in a row and returns the count, which stays
// at math.MaxInt32 once there: compared and swapped, so that it never
// wraps, and a count read before a Success is never stored over the
// Success's zero.
func (h *Health) fail() int32 {
	for {
		n := h.fails.Load()
		if n == math.MaxInt32 {
			return n
		}
		if h.fails.CompareAndSwap(n, n+1) {
			return n + 1
		}
	}
}

// Failure records a call that failed at now. It reports whether it took
// the instance out (from in, or again after a probe).
func (h *Health) Failure(now time.Time, p HealthPolicy) bool {
	n := h.fail()
	if h.outTill.Load() != 0 {
		if !h.probing.CompareAndSwap(true, false) {
			return false // a call sent before it went out
		}
		h.outTill.Store(now.Add(p.coolDown(h.trips.Add(1))).UnixNano())
		return true
	}
	if int64(n) < p.failures() {
		return false
	}
	if !h.outTill.CompareAndSwap(0, now.Add(p.coolDown(1)).UnixNano()) {
		return false
	}
	h.trips.Store(1)
	return true
}
