package placement

import (
	"math/bits"
	"sync/atomic"
	"time"
)

// Locality is how near an instance is: the lower, the nearer.
type Locality uint8

const (
	SameProcess Locality = iota // a pointer into a mailbox
	SameHost                    // shared memory or a Unix socket
	Remote                      // a socket to another host
)

// Instance is one place a name can be sent to, as a strategy sees it. The
// bus keeps one slice of them per name and replaces it when an instance
// comes or goes; strategies must not change it.
type Instance struct {
	ID       uint64   // stable identity, the same on every node: what consistent hashing places
	Locality Locality // how near the instance is
	Weight   int      // for WeightedRoundRobin; zero or less counts as 1
	Stats    *Stats   // live load, round trips and health; never nil
}

// Stats is what the bus observes of one instance while it sends to it. Its
// methods are safe for concurrent use.
type Stats struct {
	inflight atomic.Int64
	rtt      atomic.Int64 // EWMA of round trips, in nanoseconds; 0 before the first
	Health   Health
}

// InFlight is the instance's load: asks sent to it and not yet answered,
// plus its open streams.
func (s *Stats) InFlight() int64 { return s.inflight.Load() }

// Add changes the load by delta: +1 when an ask or stream starts, -1 when
// its reply is sent or the stream ends.
func (s *Stats) Add(delta int64) { s.inflight.Add(delta) }

// RTT returns the moving average of observed round trips, 0 before the
// first observation.
func (s *Stats) RTT() time.Duration { return time.Duration(s.rtt.Load()) }

// Observe folds one round trip into the moving average: each observation
// weighs 1/8, so the average follows a change within a few dozen calls.
func (s *Stats) Observe(rtt time.Duration) {
	if rtt <= 0 {
		rtt = 1
	}
	for {
		old := s.rtt.Load()
		nw := int64(rtt)
		if old != 0 {
			nw = old + (int64(rtt)-old)/8
			if nw <= 0 {
				nw = 1
			}
		}
		if s.rtt.CompareAndSwap(old, nw) {
			return
		}
	}
}

// Call is what a strategy knows of the call it places.
type Call struct {
	// Key is the caller's consistent-hash key; empty when it gave none.
	Key string
	// Seq counts the calls placed for this name before this one: a round
	// robin's position.
	Seq uint64
	// Rand is random bits drawn for this call, so that strategies are
	// deterministic functions of their input.
	Rand uint64
	// Attempt counts the choices already refused for this call (health
	// kept the instance out, or the call is a retry): a strategy that
	// would choose the same instance again, as a hash does, should
	// choose another.
	Attempt int
}

// Strategy chooses one instance for a call. Pick is given at least one
// instance and returns an index into in. It must be safe for concurrent use
// and must not block: it runs on every send by name.
type Strategy interface {
	Pick(in []Instance, c Call) int
}

// Func is a Strategy made of a function.
type Func func(in []Instance, c Call) int

// Pick calls f.
func (f Func) Pick(in []Instance, c Call) int { return f(in, c) }

// rng is a splitmix64 stream seeded from a call's random bits: one Call
// gives a strategy as many random numbers as it needs.
type rng uint64

func (r *rng) next() uint64 {
	*r += 0x9e3779b97f4a7c15
	z := uint64(*r)
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// below returns a number in [0, n) for n > 0.
func (r *rng) below(n int) int {
	hi, _ := bits.Mul64(r.next(), uint64(n))
	return int(hi)
}

// two returns two distinct indices in [0, n) for n >= 2.
func (r *rng) two(n int) (int, int) {
	i := r.below(n)
	j := r.below(n - 1)
	if j >= i {
		j++
	}
	return i, j
}
