package placement

// Latency samples two instances at random and sends the call to the one
// whose expected wait is lower: its average round trip times one more than
// its calls in flight. An instance with no round trip observed yet counts
// as the fastest, so that a new one is tried. With one instance or two it
// compares both.
//
// One call in 32 goes to the worse of the two, so that an average that one
// slow round trip made stale (a pause, a busy host) is measured again
// instead of keeping its instance out for good.
type Latency struct{}

// exploreOneIn is how rarely Latency sends a call to the worse of its two.
const exploreOneIn = 32

// Pick implements Strategy.
func (Latency) Pick(in []Instance, c Call) int {
	if len(in) == 1 {
		return 0
	}
	r := rng(c.Rand)
	i, j := r.two(len(in))
	si, sj := score(&in[i]), score(&in[j])
	if sj < si || (sj == si && r.next()&1 == 0) {
		i, j = j, i
	}
	if r.below(exploreOneIn) == 0 {
		return j
	}
	return i
}

func score(in *Instance) float64 {
	return float64(in.Stats.RTT()) * float64(in.Stats.InFlight()+1)
}
