package mailbox

import "sync/atomic"

// ring is a bounded lock-free queue in the style of Dmitry Vyukov's bounded
// MPMC queue: every cell carries a sequence number that says whether it is
// free for the producer of lap n or full for the consumer of lap n. Producers
// claim a cell with a CAS on tail; the mailbox's one consumer, and a producer
// that drops the oldest message to make room, take cells with a CAS on head.
// No lock, no allocation after the ring exists.
//
// head and tail sit on cache lines of their own, so producers and the
// consumer do not invalidate each other's index line on every operation.
type ring[T any] struct {
	_    [64]byte
	tail atomic.Uint64 // next position to claim; written by producers
	_    [56]byte
	head atomic.Uint64 // next position to take; written by the consumer (and droppers)
	_    [56]byte
	mask uint64
	cell []cell[T]
	_    [32]byte

	// The senders blocked for room (Mailbox.Send under Block), here rather
	// than in the Mailbox: only a ring that exists can be full, and a
	// mailbox inside every idle actor so carries none of it. They sit on a
	// line of their own: senders that block and wake write them, and every
	// send and take reads mask and cell.
	waiters atomic.Int32                  // senders blocked for room
	space   atomic.Pointer[chan struct{}] // closed when room appears, then taken away; made again by the next waiter
}

type cell[T any] struct {
	seq atomic.Uint64 // pos: free for the producer of pos; pos+1: holds the value put at pos
	v   T
}

func newRing[T any](capacity int) *ring[T] {
	r := &ring[T]{mask: uint64(capacity - 1), cell: make([]cell[T], capacity)}
	for i := range r.cell {
		r.cell[i].seq.Store(uint64(i))
	}
	return r
}

// push appends v; false means the ring is full.
func (r *ring[T]) push(v T) bool {
	pos := r.tail.Load()
	for {
		c := &r.cell[pos&r.mask]
		seq := c.seq.Load()
		switch dif := int64(seq - pos); {
		case dif == 0:
			if r.tail.CompareAndSwap(pos, pos+1) {
				c.v = v
				c.seq.Store(pos + 1)
				return true
			}
			pos = r.tail.Load()
		case dif < 0:
			return false
		default:
			pos = r.tail.Load()
		}
	}
}

// pushN appends a prefix of vs, in order, with one claim of the tail, and
// returns its length: every value up to the first cell not yet free (0 when
// the ring is full).
func (r *ring[T]) pushN(vs []T) int {
	pos := r.tail.Load()
	for {
		// The free cells from pos: a cell found free for its lap stays free
		// until a producer claims it, which moves the tail past pos.
		k := 0
		for k < len(vs) && r.cell[(pos+uint64(k))&r.mask].seq.Load() == pos+uint64(k) {
			k++
		}
		if k == 0 {
			if int64(r.cell[pos&r.mask].seq.Load()-pos) < 0 {
				return 0
			}
			pos = r.tail.Load()
			continue
		}
		if r.tail.CompareAndSwap(pos, pos+uint64(k)) {
			for i, v := range vs[:k] {
				c := &r.cell[(pos+uint64(i))&r.mask]
				c.v = v
				c.seq.Store(pos + uint64(i) + 1)
			}
			return k
		}
		pos = r.tail.Load()
	}
}

// pop removes the oldest value; false means nothing is ready (the ring is
// empty, or its oldest cell is claimed but not yet written).
func (r *ring[T]) pop() (T, bool) {
	var zero T
	pos := r.head.Load()
	for {
		c := &r.cell[pos&r.mask]
		seq := c.seq.Load()
		switch dif := int64(seq - (pos + 1)); {
		case dif == 0:
			if r.head.CompareAndSwap(pos, pos+1) {
				v := c.v
				c.v = zero
				c.seq.Store(pos + r.mask + 1)
				return v, true
			}
			pos = r.head.Load()
		case dif < 0:
			return zero, false
		default:
			pos = r.head.Load()
		}
	}
}

// ready reports whether the oldest cell holds a value.
func (r *ring[T]) ready() bool {
	pos := r.head.Load()
	return r.cell[pos&r.mask].seq.Load() == pos+1
}

// len is the number of claimed cells, written or not, between 0 and the
// capacity. It is exact only when no operation is in flight.
func (r *ring[T]) len() int {
	head := r.head.Load() // before tail, so tail-head never goes negative
	n := r.tail.Load() - head
	if n > r.mask+1 {
		n = r.mask + 1 // both moved on between the loads
	}
	return int(n)
}
