package placement

import (
	"sync/atomic"
	"time"
)

// Budget bounds retries so that a failing instance cannot multiply its
// callers' traffic: a token bucket that holds up to Burst retries and
// refills at Rate per second. Time is an input. The zero value allows
// DefaultRetryRate retries per second with bursts of DefaultRetryBurst.
// Safe for concurrent use; Allow costs one atomic compare-and-swap.
type Budget struct {
	// Rate is the retries allowed per second in the long run; zero means
	// DefaultRetryRate, negative means none.
	Rate float64
	// Burst is how many retries may go at once after a quiet spell; zero
	// means DefaultRetryBurst.
	Burst int

	// tat is the theoretical arrival time of the next retry, in unix
	// nanoseconds (the generic cell rate algorithm): the bucket is full
	// while tat is Burst intervals or more behind now.
	tat atomic.Int64
}

const (
	DefaultRetryRate  = 10
	DefaultRetryBurst = 10
)

// Allow reports whether one more retry fits the budget at now, and spends
// it if so.
func (b *Budget) Allow(now time.Time) bool {
	rate, burst := b.Rate, b.Burst
	if rate == 0 {
		rate = DefaultRetryRate
	}
	if rate < 0 {
		return false
	}
	if burst <= 0 {
		burst = DefaultRetryBurst
	}
	interval := int64(float64(time.Second) / rate)
	if interval <= 0 {
		interval = 1
	}
	t := now.UnixNano()
	for {
		tat := b.tat.Load()
		start := max(tat, t-int64(burst)*interval)
		next := start + interval
		if next > t {
			return false
		}
		if b.tat.CompareAndSwap(tat, next) {
			return true
		}
	}
}
