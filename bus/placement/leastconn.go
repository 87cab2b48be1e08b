package placement

import "math/bits"

// LeastConnections sends each call to the instance with the fewest calls in
// flight, preferring nearer ones: each step of distance (same process →
// same host → remote) counts as Margin calls in flight. A same-process
// instance thus wins over a same-host one unless it has more than Margin
// more calls in flight, and over a remote one unless it has more than
// 2×Margin more. Of two instances equal after weighing, the nearer wins;
// ties between equally near ones go to one of them at random.
//
// Above P2C instances it samples two at random and takes the better of the
// two (power of two choices): the cost of a call stays constant and the
// load still evens out, where a full scan would cost one read per instance.
type LeastConnections struct {
	// Margin is how many calls in flight one step of distance is worth;
	// zero means DefaultMargin, negative means locality only breaks ties.
	Margin int64
	// P2C is the number of instances above which two are sampled instead
	// of all scanned; zero means DefaultP2C, more than MaxP2C means MaxP2C.
	P2C int
}

const (
	DefaultMargin = 2
	DefaultP2C    = 16
	MaxP2C        = 64 // a scan keeps one bit per instance in a word
)

func (s LeastConnections) margin() int64 {
	switch {
	case s.Margin == 0:
		return DefaultMargin
	case s.Margin < 0:
		return 0
	}
	return s.Margin
}

func (s LeastConnections) p2c() int {
	if s.P2C <= 0 {
		return DefaultP2C
	}
	return min(s.P2C, MaxP2C)
}

// cost is in's load weighed by its distance, scaled so that the distance
// alone breaks a tie between a nearer and a farther instance.
func cost(in *Instance, margin int64) int64 {
	loc := int64(in.Locality)
	return 4*(in.Stats.InFlight()+margin*loc) + loc
}

// Pick implements Strategy.
func (s LeastConnections) Pick(in []Instance, c Call) int {
	if len(in) == 1 {
		return 0
	}
	x := c.Rand
	i, _ := s.choose(in, func() uint64 { return x })
	return i
}

// choose is the choice among in (at least two). It calls draw, at most
// once, for random bits, only when a tie or a sample needs them. allIn
// reports that health kept none of the instances it compared out (the
// chosen one among them), read beside their loads.
func (s LeastConnections) choose(in []Instance, draw func() uint64) (i int, allIn bool) {
	m := s.margin()
	if len(in) > s.p2c() {
		r := rng(draw())
		i, j := r.two(len(in))
		ci, cj := cost(&in[i], m), cost(&in[j], m)
		allIn = !in[i].Stats.Health.Out() && !in[j].Stats.Health.Out()
		if cj < ci || (cj == ci && r.next()&1 == 0) {
			return j, allIn
		}
		return i, allIn
	}
	// The least cost and which instances share it (a bit each), then one
	// draw among those. Under tells alone every instance ties: the choice
	// is then a multiplication, with no branch on a random bit to
	// mispredict.
	best, bestCost, tied := 0, cost(&in[0], m), uint64(1)
	out := in[0].Stats.Health.outTill.Load()
	for i := 1; i < len(in); i++ {
		switch ci := cost(&in[i], m); {
		case ci < bestCost:
			best, bestCost, tied = i, ci, 1<<i
		case ci == bestCost:
			tied |= 1 << i
		}
		out |= in[i].Stats.Health.outTill.Load()
	}
	if tied&(tied-1) == 0 {
		return best, out == 0
	}
	ties := bits.OnesCount64(tied)
	k := below(draw(), ties)
	if ties == len(in) {
		return k, out == 0
	}
	for j := 1; j < ties; j++ { // as many turns whichever k: no branch on it
		if j <= k {
			tied &= tied - 1
		}
	}
	return bits.TrailingZeros64(tied), out == 0
}

// below maps 64 random bits to [0, n) (Lemire's multiply and shift).
func below(x uint64, n int) int {
	hi, _ := bits.Mul64(x, uint64(n))
	return int(hi)
}
