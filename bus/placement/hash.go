package placement

import "slices"

// ConsistentHash sends every call with the same Key to the same instance
// while the instances stay the same; when one of N instances goes, only
// the keys it had (about 1/N of them) move, and when one comes, only about
// 1/(N+1) of the keys move to it. A call without a key is placed at random.
//
// Instances sit on a ring at Replicas points each, derived from their ID,
// so every node that knows the same instances maps a key the same way. The
// ring is built once per slice of instances and reused while Pick is given
// the same slice (the bus replaces a name's slice, never changes it): one
// ConsistentHash keeps the rings of its last few slices, so it may serve
// several names.
type ConsistentHash struct {
	// Replicas is the number of points per instance; zero means
	// DefaultReplicas. More points spread keys more evenly.
	Replicas int

	rings perSlice[*ring]
}

// DefaultReplicas gives each of 10 instances its share of keys within about
// ±20 %.
const DefaultReplicas = 100

type ring struct {
	points []point // sorted by hash
}

type point struct {
	hash uint64
	id   uint64
}

// Pick implements Strategy.
func (s *ConsistentHash) Pick(in []Instance, c Call) int {
	if c.Key == "" {
		r := rng(c.Rand)
		return r.below(len(in))
	}
	r := s.ringFor(in)
	h := hashString(c.Key)
	k, _ := slices.BinarySearchFunc(r.points, h, func(p point, h uint64) int {
		switch {
		case p.hash < h:
			return -1
		case p.hash > h:
			return 1
		}
		return 0
	})
	// Attempt n goes to the n-th distinct instance after the key's
	// point: a key whose instance is out moves to its ring successor.
	id := r.points[k%len(r.points)].id
	for a, step := 0, 0; a < c.Attempt && step < len(r.points); step++ {
		if next := r.points[(k+step)%len(r.points)].id; next != id {
			id = next
			a++
		}
	}
	for i := range in {
		if in[i].ID == id {
			return i
		}
	}
	return 0 // not reached: the ring was built from in
}

// ringFor returns the ring of in's instances, building it when in is not
// one of the last slices it was given.
func (s *ConsistentHash) ringFor(in []Instance) *ring {
	if r, ok := s.rings.get(in); ok {
		return r
	}
	reps := s.Replicas
	if reps <= 0 {
		reps = DefaultReplicas
	}
	r := &ring{points: make([]point, 0, len(in)*reps)}
	for i := range in {
		for k := range reps {
			r.points = append(r.points, point{mix(in[i].ID ^ mix(uint64(k)+1)), in[i].ID})
		}
	}
	slices.SortFunc(r.points, func(a, b point) int {
		switch {
		case a.hash < b.hash:
			return -1
		case a.hash > b.hash:
			return 1
		case a.id < b.id:
			return -1
		case a.id > b.id:
			return 1
		}
		return 0
	})
	s.rings.put(in, r)
	return r
}

// hashString is 64-bit FNV-1a finished by mix: the same on every node and
// every run, so nodes agree on where a key goes.
func hashString(s string) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return mix(h)
}

// mix is splitmix64's finalizer: a bijection that spreads every input bit.
func mix(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// HashID derives an instance ID from a node's 16-byte id and the
// instance's number on it.
func HashID(node [16]byte, id uint64) uint64 {
	h := uint64(14695981039346656037)
	for _, c := range node {
		h ^= uint64(c)
		h *= 1099511628211
	}
	return mix(h ^ mix(id))
}
