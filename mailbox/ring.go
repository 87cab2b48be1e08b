package mailbox

import "sync/atomic"

// ring is a bounded lock-free queue in the style of Dmitry Vyukov's bounded
// MPMC queue: every cell carries a sequence word that says which position
// of the queue it is at and in what state. Producers claim a position with
// a CAS on tail and publish the cell with a store. A cell is emptied by
// whoever wins one CAS on its word: the mailbox's consumer (take), or a
// producer that drops the oldest message to make room and Close's drain
// (pop), so a message goes to exactly one of them.
//
// The consumer frees the cells it empties all at once, not one by one: it
// moves done, which it publishes every few takes and at the end of each
// turn. So a message costs three atomic read-modify-writes (the producer's
// claim and publication, the consumer's CAS) where freeing each cell with
// a store of its own cost four. The consumer clears a cell's value before
// the message runs; until done passes it, the cell counts in len and is not
// free for the next lap. pop frees its cell with a store at once.
//
// tail, done and the consumer's cursor sit on cache lines of their own, so
// producers and the consumer do not invalidate each other's line on every
// operation.
type ring[T any] struct {
	_       [64]byte
	tail    atomic.Uint64 // next position to claim; written by producers
	_       [56]byte
	done    atomic.Uint64 // every position below it that take emptied is cleared and free; written by the consumer
	head    atomic.Uint64 // every position below it has been emptied; raised by pop, which is rare
	_       [48]byte
	next    uint64 // the consumer's next position: touched only by the goroutine holding the mailbox (scheduled)
	_       [56]byte
	mask    uint64
	pubMask uint64 // take publishes done when next&pubMask == 0
	cell    []cell[T]
	_       [24]byte

	// The senders blocked for room (Mailbox.Send under Block), here rather
	// than in the Mailbox: only a ring that exists can be full, and a
	// mailbox inside every idle actor so carries none of it. They sit on a
	// line of their own: senders that block and wake write them, and every
	// send and take reads mask and cell.
	waiters atomic.Int32                  // senders blocked for room
	space   atomic.Pointer[chan struct{}] // closed when room appears, then taken away; made again by the next waiter
}

// A cell's sequence word is its position<<3 | its state.
const (
	stFree  = iota // free for the producer of the position
	stFull         // holds the message put at the position
	stTaken        // emptied by take; free for the next lap once done passes the position
	stBusy         // being emptied by pop, which then frees it for the next lap
	stHole         // skipped: the position holds nothing, as the cell was still held back by take
)

const stBits = 3

type cell[T any] struct {
	seq atomic.Uint64
	v   T
}

func word(pos, st uint64) uint64 { return pos<<stBits | st }

// publishEvery is how many takes the consumer makes between two stores of
// done, in a ring of at least four times as many cells (a smaller ring
// publishes every quarter of itself): enough to amortize the store, few
// enough that few cells are held back from producers.
const publishEvery = 32

func newRing[T any](capacity int) *ring[T] {
	r := &ring[T]{mask: uint64(capacity - 1), cell: make([]cell[T], capacity)}
	r.pubMask = uint64(min(publishEvery, max(capacity/4, 1)) - 1)
	for i := range r.cell {
		r.cell[i].seq.Store(word(uint64(i), stFree))
	}
	return r
}

// freeFor reports whether a cell whose word is seq is free for the
// producer of pos: freed by pop for this lap, or emptied by take a lap
// before (or skipped a lap before, after take emptied it) and passed by
// done since.
func (r *ring[T]) freeFor(seq, pos uint64) bool {
	if seq == word(pos, stFree) {
		return true
	}
	n := r.mask + 1
	switch seq {
	case word(pos-n, stTaken):
		return r.done.Load() > pos-n
	case word(pos-n, stHole):
		return r.done.Load() > pos-2*n // take emptied it at pos-2n or before
	}
	return false
}

// heldBack reports whether a cell whose word is seq, not free for the
// producer of pos, holds no message: take emptied it a lap before and done
// has not passed it yet.
func (r *ring[T]) heldBack(seq, pos uint64) bool {
	prev := pos - r.mask - 1
	return seq == word(prev, stTaken) || seq == word(prev, stHole)
}

// push appends v; false means the ring is full: the cell at the tail
// still holds, or is being emptied of, the message a lap before, or the
// consumer holds it back.
func (r *ring[T]) push(v T) bool {
	pos := r.tail.Load()
	for {
		c := &r.cell[pos&r.mask]
		seq := c.seq.Load()
		if r.freeFor(seq, pos) {
			if r.tail.CompareAndSwap(pos, pos+1) {
				c.v = v
				c.seq.Store(word(pos, stFull))
				return true
			}
		} else if seq>>stBits < pos {
			return false
		}
		pos = r.tail.Load()
	}
}

// skipHeld makes the tail a hole, a position that holds nothing, if its
// cell is held back by the consumer, and reports whether it did (or the
// tail moved meanwhile): a sender dropping the oldest to make room skips
// such a cell, as dropping would free another cell, not the tail's, and
// the consumer frees it only after the message it runs, which may take
// long. Other senders wait for it as for a full ring.
func (r *ring[T]) skipHeld() bool {
	pos := r.tail.Load()
	c := &r.cell[pos&r.mask]
	seq := c.seq.Load()
	if r.freeFor(seq, pos) || !r.heldBack(seq, pos) {
		return false
	}
	if r.tail.CompareAndSwap(pos, pos+1) {
		c.seq.Store(word(pos, stHole))
	}
	return true
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
		for k < len(vs) && r.freeFor(r.cell[(pos+uint64(k))&r.mask].seq.Load(), pos+uint64(k)) {
			k++
		}
		if k == 0 {
			if r.cell[pos&r.mask].seq.Load()>>stBits < pos {
				return 0
			}
			pos = r.tail.Load()
			continue
		}
		if r.tail.CompareAndSwap(pos, pos+uint64(k)) {
			for i, v := range vs[:k] {
				p := pos + uint64(i)
				c := &r.cell[p&r.mask]
				c.v = v
				c.seq.Store(word(p, stFull))
			}
			return k
		}
		pos = r.tail.Load()
	}
}

// gone reports whether the message at pos, whose cell's word is seq, has
// left the ring or never came: taken, being popped, or a hole, or the cell
// is on a later lap already.
func gone(seq, pos uint64) bool {
	return seq>>stBits > pos || seq>>stBits == pos && seq&(1<<stBits-1) >= stTaken
}

// take removes the oldest value for the mailbox's consumer, the one
// goroutine at a time that holds the mailbox; false means nothing is ready
// (the ring is empty, or its oldest cell is claimed but not yet written).
// The cell stays held back from producers until the consumer publishes.
func (r *ring[T]) take() (T, bool) {
	var zero T
	p := r.next
	for {
		c := &r.cell[p&r.mask]
		seq := c.seq.Load()
		if seq == word(p, stFull) {
			if !c.seq.CompareAndSwap(seq, word(p, stTaken)) {
				continue // pop took it meanwhile: look again
			}
			v := c.v
			c.v = zero // the ring keeps no message alive
			r.next = p + 1
			if r.next&r.pubMask == 0 {
				r.done.Store(r.next)
			}
			return v, true
		}
		if !gone(seq, p) {
			return zero, false
		}
		// Popped or skipped: go on, past whatever pop has emptied since.
		p = max(p+1, r.head.Load())
		r.next = p
	}
}

// publish frees for producers every cell take has emptied, and reports
// whether it stored anything. The consumer calls it at the end of a turn.
func (r *ring[T]) publish() bool {
	if r.done.Load() == r.next {
		return false
	}
	r.done.Store(r.next)
	return true
}

// pop removes the oldest value for any goroutine other than the consumer
// (a sender dropping the oldest, Close's drain); false means nothing is
// ready.
func (r *ring[T]) pop() (T, bool) {
	var zero T
	p := max(r.done.Load(), r.head.Load())
	for {
		c := &r.cell[p&r.mask]
		seq := c.seq.Load()
		switch {
		case seq == word(p, stFull):
			if !c.seq.CompareAndSwap(seq, word(p, stBusy)) {
				continue // take or another pop took it: look again
			}
			v := c.v
			c.v = zero
			r.raiseHead(p + 1)
			c.seq.Store(word(p+r.mask+1, stFree))
			return v, true
		case gone(seq, p):
			p++
		default:
			r.raiseHead(p) // every position below p has been emptied
			return zero, false
		}
	}
}

// raiseHead moves head up to p, unless it is there already.
func (r *ring[T]) raiseHead(p uint64) {
	for {
		h := r.head.Load()
		if h >= p || r.head.CompareAndSwap(h, p) {
			return
		}
	}
}

// ready reports whether the oldest message not yet taken is written.
func (r *ring[T]) ready() bool {
	p := max(r.done.Load(), r.head.Load())
	for {
		seq := r.cell[p&r.mask].seq.Load()
		switch {
		case seq == word(p, stFull):
			return true
		case gone(seq, p):
			p++
		default:
			return false
		}
	}
}

// len is the number of claimed positions, written or not, between 0 and
// the capacity, counting those that take emptied since the consumer last
// published and the holes producers skipped. It is exact only when no
// operation is in flight.
func (r *ring[T]) len() int {
	low := max(r.done.Load(), r.head.Load()) // before tail, so tail-low never goes negative
	n := r.tail.Load() - low
	if n > r.mask+1 {
		n = r.mask + 1 // both moved on between the loads
	}
	return int(n)
}

// backlog is len for the consumer, from its own position.
func (r *ring[T]) backlog() int {
	n := r.tail.Load() - r.next
	if int64(n) < 0 {
		return 0
	}
	return int(min(n, r.mask+1))
}
