package bus

import (
	"errors"
	"math/bits"
	"sync"
	"sync/atomic"
)

// askTable holds the calls of the asks a bus sends to peers. A call keeps
// its slot for the bus's life, and an ask's correlation id names the slot
// and the call's arming (the sequence number in askCall.state): a reply
// finds its call by index, with no map to store into and delete from, and
// one for an arming that has ended (stale, repeated, guessed, or for a
// slot since reused) finds the sequence number moved on. Which link may
// answer an arming is askCall.via's to say (askCall.sentOn).
//
// Free slots form a lock-free stack. Slots are allocated in chunks, each
// twice the size of the one before, so that an index maps to its chunk
// with one count of bits and a chunk never moves. The table keeps as many
// calls as were ever in flight at once.
type askTable struct {
	free   atomic.Uint64 // head of the free stack: a tag (against ABA) << 32 | slot; 0 when empty
	chunks [askChunks]atomic.Pointer[[]askCall]
	mu     sync.Mutex // held while a chunk is added
	n      int        // chunks added; guarded by mu
	key    [2]uint64  // random, mixed into correlation ids (see id)
}

const (
	askChunk0  = 64 // calls in the first chunk
	askIdxBits = 24 // bits of an index in a correlation id: at most 16M asks in flight
	askSeqBits = 64 - askIdxBits
	askChunks  = askIdxBits - 6 // chunks of 64<<0 ... 64<<17 calls: indices below 1<<askIdxBits
	askIdxMask = 1<<askIdxBits - 1
	askSeqMask = 1<<askSeqBits - 1
)

// chunkOf is the chunk of index i and i's place in it.
func chunkOf(i uint32) (k, off int) {
	k = bits.Len32(i+askChunk0) - 7 // bits.Len32(askChunk0) == 7
	return k, int(i + askChunk0 - askChunk0<<k)
}

// get takes a free call from the table, adding a chunk when none is free;
// nil when the table is full.
func (t *askTable) get(b *Bus) *askCall {
	for {
		h := t.free.Load()
		if uint32(h) == 0 {
			if !t.grow(b) {
				return nil
			}
			continue
		}
		c := t.at(uint32(h) - 1)
		next := c.nextFree.Load() // stale if another took c: the tag then fails the swap
		if t.free.CompareAndSwap(h, (h>>32+1)<<32|uint64(next)) {
			return c
		}
	}
}

// put returns c to the free stack.
func (t *askTable) put(c *askCall) {
	for {
		h := t.free.Load()
		c.nextFree.Store(uint32(h))
		if t.free.CompareAndSwap(h, (h>>32+1)<<32|uint64(c.slot)) {
			return
		}
	}
}

// at is the call of index i, which the table has.
func (t *askTable) at(i uint32) *askCall {
	k, off := chunkOf(i)
	return &(*t.chunks[k].Load())[off]
}

// grow adds a chunk to the table, unless another caller freed or added
// calls meanwhile; false when the table is full.
func (t *askTable) grow(b *Bus) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if uint32(t.free.Load()) != 0 {
		return true
	}
	if t.n == askChunks {
		return false
	}
	k := t.n
	cs := make([]askCall, askChunk0<<k)
	first := uint32(askChunk0<<k - askChunk0) // index of cs[0]
	for i := range cs {
		c := &cs[i]
		c.done, c.bus = make(chan struct{}, 1), b
		c.slot = first + uint32(i) + 1
		c.state.Store(callDone) // arming 0 ended: none starts before askRemote's
		if i+1 < len(cs) {
			c.nextFree.Store(c.slot + 1)
		}
	}
	t.chunks[k].Store(&cs)
	t.n++
	last := &cs[len(cs)-1]
	for {
		h := t.free.Load()
		last.nextFree.Store(uint32(h))
		if t.free.CompareAndSwap(h, (h>>32+1)<<32|uint64(cs[0].slot)) {
			return true
		}
	}
}

// lookup is the call a correlation id names, and the arming it names;
// nil when it names no call of the table. Whether that arming still waits,
// and for a reply from which link, is the call's to say (sentOn).
func (t *askTable) lookup(corr uint64) (*askCall, uint64) {
	x := t.unmix(corr)
	i := uint32(x & askIdxMask)
	k, off := chunkOf(i)
	if k >= askChunks {
		return nil, 0
	}
	cs := t.chunks[k].Load()
	if cs == nil {
		return nil, 0
	}
	return &(*cs)[off], x >> askIdxBits
}

// id is the correlation id of arming seq of c.
func (t *askTable) id(c *askCall, seq uint64) uint64 {
	return t.mix(seq<<askIdxBits | uint64(c.slot-1))
}

// forEach calls f for every call of the table.
func (t *askTable) forEach(f func(*askCall)) {
	for k := range t.chunks {
		cs := t.chunks[k].Load()
		if cs == nil {
			return
		}
		for i := range *cs {
			f(&(*cs)[i])
		}
	}
}

// any reports whether f reports true for some call of the table.
func (t *askTable) any(f func(*askCall) bool) bool {
	for k := range t.chunks {
		cs := t.chunks[k].Load()
		if cs == nil {
			return false
		}
		for i := range *cs {
			if f(&(*cs)[i]) {
				return true
			}
		}
	}
	return false
}

// errTooManyAsks fails an ask to a peer while 1<<askIdxBits others wait.
var errTooManyAsks = errors.New("bus: too many asks to peers in flight")

// mix and unmix are a bijection of uint64 keyed by t.key (xor, a
// multiplication by an odd constant and an xor of the high half into the
// low are each invertible), so that the ids a peer sees tell it neither
// the slots nor how many asks this node sent to others. What keeps a peer
// from completing an ask it was not sent is the check of the link
// (sentOn); unguessable ids only make a wrong guess the norm.
func (t *askTable) mix(x uint64) uint64 {
	x = (x ^ t.key[0]) * mixMul0
	x ^= x >> 32
	x = (x ^ t.key[1]) * mixMul1
	return x ^ x>>32
}

func (t *askTable) unmix(x uint64) uint64 {
	x ^= x >> 32
	x = x*mixInv1 ^ t.key[1]
	x ^= x >> 32
	return x*mixInv0 ^ t.key[0]
}

const (
	mixMul0 = 0x9e3779b97f4a7c15
	mixMul1 = 0xbf58476d1ce4e5b9
)

// mixInv0 and mixInv1 are the inverses of the multipliers modulo 2^64.
var mixInv0, mixInv1 = inverse(mixMul0), inverse(mixMul1)

// inverse is the inverse of the odd m modulo 2^64, by Newton's iteration
// (each step doubles the bits that are right; m is right in the low 3).
func inverse(m uint64) uint64 {
	x := m
	for range 5 {
		x *= 2 - m*x
	}
	return x
}
