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

// inboundMap holds the asks from peers being served, by correlation id
// alone: an id is its asker's, so two peers' asks may share one, and the
// records of an id form a chain (inbound.next), told apart by their peer
// (inbound.peer). Keyed by a uint64 the map takes the runtime's fast path,
// and finding a record's entry again needs no call to its link.
type inboundMap struct {
	c *corrMap[uint64, *inbound]
}

func newInboundMap() inboundMap {
	return inboundMap{newCorrMap[uint64, *inbound](func(c uint64) uint64 { return c })}
}

// store adds in, an ask from peer node, under its correlation id.
func (m inboundMap) store(node NodeID, in *inbound) {
	in.peer = node
	s := m.c.shard(in.env.Corr)
	s.mu.Lock()
	in.next = s.m[in.env.Corr]
	s.m[in.env.Corr] = in
	s.mu.Unlock()
}

// delete removes in, if it is there.
func (m inboundMap) delete(in *inbound) {
	corr := in.env.Corr
	s := m.c.shard(corr)
	s.mu.Lock()
	head := s.m[corr]
	switch {
	case head == in && in.next == nil:
		delete(s.m, corr)
	case head == in:
		s.m[corr] = in.next
	default:
		for p := head; p != nil; p = p.next {
			if p.next == in {
				p.next = in.next
				break
			}
		}
	}
	in.next = nil
	s.mu.Unlock()
}

// cancel cancels the asks of peer node with correlation id corr.
func (m inboundMap) cancel(node NodeID, corr uint64) {
	s := m.c.shard(corr)
	s.mu.Lock()
	for in := s.m[corr]; in != nil; in = in.next {
		if in.peer == node {
			in.cancel()
		}
	}
	s.mu.Unlock()
}

// any reports whether f reports true for some record; f runs with a shard
// locked, so it must not touch the map.
func (m inboundMap) any(f func(*inbound) bool) bool {
	return m.c.any(func(head *inbound) bool {
		for in := head; in != nil; in = in.next {
			if f(in) {
				return true
			}
		}
		return false
	})
}

// removeIf removes every record for which f reports true; f runs with a
// shard locked, so it must not touch the map.
func (m inboundMap) removeIf(f func(*inbound) bool) {
	for i := range m.c.shards {
		s := &m.c.shards[i]
		s.mu.Lock()
		for corr, head := range s.m {
			var keep *inbound // the chain left, in reverse: order does not matter
			for in := head; in != nil; {
				next := in.next
				if f(in) {
					in.next = nil
				} else {
					in.next, keep = keep, in
				}
				in = next
			}
			if keep == nil {
				delete(s.m, corr)
			} else {
				s.m[corr] = keep
			}
		}
		s.mu.Unlock()
	}
}
