package bus

import "sync"

// corrMap maps correlation ids to what waits on them: the asks this node
// sent to peers, and the asks from peers it serves. Every ask stores and
// deletes one entry, so the map is write-heavy: a sync.Map allocates a node
// per store, a sharded mutex and plain map nothing. Keys spread
// across the shards by the low bits of their correlation id (see
// Bus.nextCorr: the bits of a counter, mixed).
type corrMap[K comparable, V any] struct {
	shards [corrShards]corrShard[K, V]
	corr   func(K) uint64
}

const corrShards = 16

type corrShard[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]V
	_  [48]byte // a cache line per shard (mutex and map pointer: 16 bytes)
}

func newCorrMap[K comparable, V any](corr func(K) uint64) *corrMap[K, V] {
	c := &corrMap[K, V]{corr: corr}
	for i := range c.shards {
		c.shards[i].m = map[K]V{}
	}
	return c
}

func (c *corrMap[K, V]) shard(k K) *corrShard[K, V] {
	return &c.shards[c.corr(k)%corrShards]
}

func (c *corrMap[K, V]) store(k K, v V) {
	s := c.shard(k)
	s.mu.Lock()
	s.m[k] = v
	s.mu.Unlock()
}

// update calls f on k's entry, if there is one, with its shard locked: an
// entry removed from the map may be recycled by its owner, so a caller
// must not keep using it after the lock is gone. f must not touch the map.
func (c *corrMap[K, V]) update(k K, f func(V)) bool {
	s := c.shard(k)
	s.mu.Lock()
	v, ok := s.m[k]
	if ok {
		f(v)
	}
	s.mu.Unlock()
	return ok
}

func (c *corrMap[K, V]) loadAndDelete(k K) (V, bool) {
	s := c.shard(k)
	s.mu.Lock()
	v, ok := s.m[k]
	if ok {
		delete(s.m, k)
	}
	s.mu.Unlock()
	return v, ok
}

// loadAndDeleteIf deletes k's entry and returns it if there is one and
// match reports true for it; match runs with the shard locked.
func (c *corrMap[K, V]) loadAndDeleteIf(k K, match func(V) bool) (V, bool) {
	s := c.shard(k)
	s.mu.Lock()
	v, ok := s.m[k]
	if ok && match(v) {
		delete(s.m, k)
	} else {
		var zero V
		v, ok = zero, false
	}
	s.mu.Unlock()
	return v, ok
}

func (c *corrMap[K, V]) delete(k K) {
	s := c.shard(k)
	s.mu.Lock()
	delete(s.m, k)
	s.mu.Unlock()
}

// any reports whether f reports true for some entry; f runs with a shard
// locked, so it must not touch the map.
func (c *corrMap[K, V]) any(f func(V) bool) bool {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for _, v := range s.m {
			if f(v) {
				s.mu.Unlock()
				return true
			}
		}
		s.mu.Unlock()
	}
	return false
}

// removeIf deletes every entry for which f reports true and returns them;
// f runs with a shard locked, so it must not touch the map.
func (c *corrMap[K, V]) removeIf(f func(K, V) bool) []V {
	var out []V
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, v := range s.m {
			if f(k, v) {
				delete(s.m, k)
				out = append(out, v)
			}
		}
		s.mu.Unlock()
	}
	return out
}
