package supervisor

import (
	"math"
	"time"
)

// Backoff spaces out the restarts of a child that keeps failing: the n-th
// restart in a row waits Initial·Multiplierⁿ⁻¹, at most Max, spread by ±Jitter
// so that children that failed together do not restart in lockstep. A child
// that ran healthily for ResetAfter before failing starts over at Initial.
//
// The zero value gives the defaults below. Set Disabled to restart at once,
// as Erlang/OTP does.
type Backoff struct {
	// Disabled makes every restart immediate.
	Disabled bool
	// Initial is the delay before the first restart. Zero: 10ms.
	Initial time.Duration
	// Max caps the delay. Zero: 10s.
	Max time.Duration
	// Multiplier grows the delay from one restart to the next. Zero: 2.
	Multiplier float64
	// Jitter spreads each delay uniformly over ±Jitter of it (0.2: ±20%).
	// Zero: 0.2. Negative: no jitter.
	Jitter float64
	// ResetAfter is how long a child must run without failing for its next
	// failure to count as the first again. Zero: 30s.
	ResetAfter time.Duration
}

// Backoff defaults.
const (
	DefaultBackoffInitial    = 10 * time.Millisecond
	DefaultBackoffMax        = 10 * time.Second
	DefaultBackoffMultiplier = 2.0
	DefaultBackoffJitter     = 0.2
	DefaultBackoffResetAfter = 30 * time.Second
)

func (b Backoff) withDefaults() Backoff {
	if b.Initial <= 0 {
		b.Initial = DefaultBackoffInitial
	}
	if b.Max <= 0 {
		b.Max = DefaultBackoffMax
	}
	if b.Max < b.Initial {
		b.Max = b.Initial
	}
	if b.Multiplier <= 0 {
		b.Multiplier = DefaultBackoffMultiplier
	}
	if b.Multiplier < 1 {
		b.Multiplier = 1
	}
	switch {
	case b.Jitter == 0:
		b.Jitter = DefaultBackoffJitter
	case b.Jitter < 0:
		b.Jitter = 0
	case b.Jitter > 1:
		b.Jitter = 1
	}
	if b.ResetAfter <= 0 {
		b.ResetAfter = DefaultBackoffResetAfter
	}
	return b
}

// Retry is the backoff state of one child: how many restarts in a row it has
// had. Like Window it is pure: now and the random draw come in as arguments.
type Retry struct {
	cfg     Backoff
	attempt int // restarts since the last healthy run
}

// NewRetry returns the backoff state for one child (zero fields of b take
// their defaults).
func NewRetry(b Backoff) Retry {
	if b.Disabled {
		return Retry{cfg: b}
	}
	return Retry{cfg: b.withDefaults()}
}

// Next returns how long to wait before restarting a child that failed at now
// after running since startedAt, and counts the restart. r is a uniform
// random draw in [0, 1) for the jitter (0.5 means none).
func (s *Retry) Next(now, startedAt time.Time, r float64) time.Duration {
	if s.cfg.Disabled {
		return 0
	}
	if !startedAt.IsZero() && now.Sub(startedAt) >= s.cfg.ResetAfter {
		s.attempt = 0
	}
	d := float64(s.cfg.Initial) * math.Pow(s.cfg.Multiplier, float64(s.attempt))
	if d > float64(s.cfg.Max) || math.IsInf(d, 0) || math.IsNaN(d) {
		d = float64(s.cfg.Max)
	} else {
		s.attempt++ // stop counting once capped, so the power cannot overflow
	}
	r = min(max(r, 0), 1)
	d *= 1 + s.cfg.Jitter*(2*r-1)
	if d > float64(s.cfg.Max) {
		d = float64(s.cfg.Max)
	}
	return time.Duration(d)
}

// Attempt is how many restarts in a row Next has counted.
func (s *Retry) Attempt() int { return s.attempt }
