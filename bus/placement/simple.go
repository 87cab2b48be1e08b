package placement

import (
	"math/bits"
	"slices"
)

// RoundRobin sends the calls for a name to its instances in turn.
type RoundRobin struct{}

// Pick implements Strategy.
func (RoundRobin) Pick(in []Instance, c Call) int {
	return int((c.Seq + uint64(c.Attempt)) % uint64(len(in)))
}

// Random sends each call to an instance chosen uniformly at random.
type Random struct{}

// Pick implements Strategy.
func (Random) Pick(in []Instance, c Call) int {
	r := rng(c.Rand)
	return r.below(len(in))
}

// WeightedRoundRobin sends each instance a share of the calls proportional
// to its Weight (zero or less counts as 1), spread out rather than in runs:
// over every Σweight consecutive calls each instance gets exactly its weight.
// Like ConsistentHash it keeps what it derives from the last few slices of
// instances it was given, so use it by pointer.
type WeightedRoundRobin struct {
	tables perSlice[*wrrTable]
}

type wrrTable struct {
	ends   []uint64 // running sums of the weights
	stride uint64
}

// Pick implements Strategy.
func (s *WeightedRoundRobin) Pick(in []Instance, c Call) int {
	t := s.table(in)
	total := t.ends[len(t.ends)-1]
	// Stepping through the Σweight slots by a stride coprime with it
	// visits every slot once per cycle while interleaving the instances.
	hi, lo := bits.Mul64((c.Seq+uint64(c.Attempt))%total, t.stride)
	_, pos := bits.Div64(hi, lo, total)
	i, _ := slices.BinarySearch(t.ends, pos+1)
	return i
}

func (s *WeightedRoundRobin) table(in []Instance) *wrrTable {
	if t, ok := s.tables.get(in); ok {
		return t
	}
	t := &wrrTable{ends: make([]uint64, len(in))}
	var sum uint64
	for i := range in {
		sum += weight(&in[i])
		t.ends[i] = sum
	}
	t.stride = stride(sum)
	s.tables.put(in, t)
	return t
}

func weight(in *Instance) uint64 {
	if in.Weight <= 0 {
		return 1
	}
	return uint64(in.Weight)
}

// stride returns the number nearest n·0.618 that is coprime with n, the
// step that spreads consecutive calls farthest apart.
func stride(n uint64) uint64 {
	if n <= 2 {
		return 1
	}
	s := n * 618 / 1000
	for d := uint64(0); ; d++ {
		if s+d < n && gcd(s+d, n) == 1 {
			return s + d
		}
		if s > d && gcd(s-d, n) == 1 {
			return s - d
		}
	}
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
