package placement

import (
	"math/bits"
	"math/rand/v2"
)

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
	// of all scanned; zero means DefaultP2C.
	P2C int
}

const (
	DefaultMargin = 2
	DefaultP2C    = 16
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
	r := lazyRng{r: rng(c.Rand), seeded: true}
	return s.choose(in, &r)
}

// choose is Pick's choice among in (at least two), with random bits from r.
func (s LeastConnections) choose(in []Instance, r *lazyRng) int {
	m := s.margin()
	p2c := s.P2C
	if p2c <= 0 {
		p2c = DefaultP2C
	}
	if len(in) > p2c {
		i, j := r.get().two(len(in))
		ci, cj := cost(&in[i], m), cost(&in[j], m)
		if cj < ci || (cj == ci && r.get().next()&1 == 0) {
			return j
		}
		return i
	}
	// A reservoir: the t-th instance tied for the least cost takes the
	// choice with chance 1/t, so that every tied one is equally likely.
	// Its draws share a random word: each is the high half of the word
	// times t, and the low half is the word for the next (Lemire's batched
	// draws), fresh bits coming only when the product of the ranges drawn
	// from one word passes 2^32, which keeps each draw's bias below 2^-32.
	// Under tells alone every instance ties: this is a multiplication per
	// tie where a number of its own per tie cost more than the rest of
	// the choice.
	best, bestCost, ties := 0, cost(&in[0], m), uint64(1)
	var x, span uint64 = 0, 1 << 32
	for i := 1; i < len(in); i++ {
		ci := cost(&in[i], m)
		switch {
		case ci < bestCost:
			best, bestCost, ties = i, ci, 1
		case ci == bestCost:
			ties++
			if span *= ties; span > 1<<32 {
				x, span = r.word(), ties
			}
			var hi uint64
			if hi, x = bits.Mul64(x, ties); hi == 0 {
				best = i
			}
		}
	}
	return best
}

// lazyRng is an rng seeded on first use, so that a choice that needs no
// random bits (no tie, one instance) does not pay for drawing a seed.
type lazyRng struct {
	r      rng
	seeded bool
	seed   func() uint64
}

func (l *lazyRng) get() *rng {
	if !l.seeded {
		l.r, l.seeded = rng(l.draw()), true
	}
	return &l.r
}

// draw is the seed's bits: math/rand/v2's when seed is nil, called
// directly rather than through a func value.
func (l *lazyRng) draw() uint64 {
	if l.seed == nil {
		return rand.Uint64()
	}
	return l.seed()
}

// word returns 64 random bits: the seed itself the first time it is drawn
// (it is random bits already), the rng's next number after.
func (l *lazyRng) word() uint64 {
	if !l.seeded {
		w := l.draw()
		l.r, l.seeded = rng(w), true
		return w
	}
	return l.r.next()
}
