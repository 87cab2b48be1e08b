package placement

import "time"

// maxAttempts bounds how many times Pick asks a strategy before it looks
// for an instance that is in by itself.
const maxAttempts = 4

// Pick chooses the instance of in (at least one) for call c with s,
// skipping the instances whose health keeps them out at now: it asks s
// again, with Attempt raised (from the caller's: a retry starts higher)
// and fresh random bits, up to a few times, then takes the first instance
// that is in, from a random start. When every
// instance is out it returns s's first choice: health alone never leaves a
// name without a route. It tells the chosen instance's Health it was
// picked, which makes the call a probe when the instance is half-open, and
// reports that too. now is called only when an instance is out or
// half-open: while every instance is in, Pick reads no clock.
func Pick(s Strategy, in []Instance, c Call, now func() time.Time, p HealthPolicy) (i int, probe bool) {
	first, base := -1, c.Attempt
	r := rng(c.Rand)
	for a := range maxAttempts {
		c.Attempt = base + a
		if a > 0 {
			c.Rand = r.next()
		}
		i = s.Pick(in, c)
		if i < 0 || i >= len(in) {
			i = 0 // a strategy's bad answer does not stop the call
		}
		h := &in[i].Stats.Health
		if !h.Out() {
			return i, false
		}
		if t := now(); h.In(t) {
			return i, h.Picked(t, p)
		}
		if first < 0 {
			first = i
		}
		if len(in) == 1 {
			break
		}
	}
	t := now()
	start := r.below(len(in))
	for k := range in {
		j := (start + k) % len(in)
		if h := &in[j].Stats.Health; h.In(t) {
			return j, h.Picked(t, p)
		}
	}
	return first, false
}

// PickFast is Pick for the common case on a hot path: s is
// LeastConnections and health keeps none of the instances it compares
// out. It returns that choice without Pick's interface call and draws
// random bits (calling seed, at most once; nil means the runtime's
// per-thread generator) only when a tie or a sample needs them. ok is
// false in every other case, where the caller calls Pick; the choice is
// distributed as Pick's.
func PickFast(s Strategy, in []Instance, seed func() uint64) (i int, ok bool) {
	lc, ok := s.(LeastConnections)
	if !ok {
		return 0, false
	}
	switch {
	case len(in) == 1:
		return 0, !in[0].Stats.Health.Out()
	case len(in) > lc.p2c() || !idle(in):
		if seed == nil {
			seed = fastrand
		}
		return lc.choose(in, seed)
	case seed == nil: // called directly, not through a func value
		return below(fastrand(), len(in)), true
	}
	return below(seed(), len(in)), true
}

// idle reports whether every instance of in is idle, in and as near as the
// first: what they all are under tells alone, where any of them is the
// choice, at random. It reads each once and branches on none.
func idle(in []Instance) bool {
	var busy int64
	for i := range in {
		st := in[i].Stats
		busy |= st.inflight.Load() | st.Health.outTill.Load() | int64(in[i].Locality^in[0].Locality)
	}
	return busy == 0
}
