package shmbus

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"unsafe"
)

// A ring is a many-to-one ring buffer of records in the style of Aeron's
// ManyToOneRingBuffer, adapted so that the consumer never writes the memory
// it reads: the ring's bytes and its tail live in the writer's segment (which
// the reader maps read-only), and the consumer's head and parked flag live in
// the reader's own segment (which the writer maps read-only).
//
// Record format (all little endian, every record starts 16-byte aligned):
//
//	offset 0   stamp  uint64  (position of the record + 1) XOR key, stored last
//	offset 8   length uint32  payload bytes (not counting this header)
//	offset 12  type   uint32  recordData, recordFirst, recordMiddle, recordLast, recordPad or recordAbort
//	offset 16  payload
//
// A producer claims space by a CAS on the tail, writes length, type and
// payload with plain stores, then publishes the record with an atomic store
// of its stamp. The consumer reads the record at its head only when the stamp
// equals the stamp of that exact position, so half-written records and
// records of earlier laps (the consumer never zeroes memory, it cannot: the
// mapping is read-only) are never read. The key is a random per-segment value
// so that stale payload bytes cannot pass for a stamp by accident.
//
// When a record does not fit between the tail and the end of the ring, the
// producer claims the rest of the ring as well and writes a padding record
// there; the record itself then starts at offset 0.

// Record types.
const (
	recordData   = 1 // a whole message
	recordFirst  = 2 // first fragment: payload starts with the total length (uint32) and 4 reserved bytes
	recordMiddle = 3 // a middle fragment
	recordLast   = 4 // the last fragment
	recordPad    = 5 // padding to the end of the ring; no payload to read
	recordAbort  = 6 // the message in fragments begun is dropped: its sender stopped; no payload
)

const (
	recordHeaderLen = 16
	recordAlign     = 16
	// MinRingSize and MaxRingSize bound Config.RingSize.
	MinRingSize = 4 << 10
	MaxRingSize = 1 << 30
)

// Errors of the ring. A consumer that returns one of them has stopped: the
// link it serves must be closed.
var (
	// errLeave, from poll's fn, leaves the record in the ring.
	errLeave    = errors.New("shmbus: record left for the reader")
	errRingFull = errors.New("shmbus: ring full")
)

// ringError is a violation of the ring protocol found in shared memory: the
// peer wrote something it must not have.
type ringError struct {
	pos    uint64
	reason string
}

func (e *ringError) Error() string {
	return fmt.Sprintf("shmbus: corrupt ring at position %d: %s", e.pos, e.reason)
}

func (e *ringError) Unwrap() error { return ErrCorrupt }

// maxLapsAhead bounds the stamps the consumer recognises as "from a later
// lap" (see consumer.poll).
const maxLapsAhead = 64

func align(n, a uint64) uint64 { return (n + a - 1) &^ (a - 1) }

// maxRecordPayload is the largest payload one record of a ring of the given
// capacity carries; bigger messages are fragmented. An eighth of the ring, as
// in Aeron, so that many senders make progress together.
func maxRecordPayload(capacity int) int { return capacity/8 - recordHeaderLen }

// atomic64 and atomic32 return the atomic word at b[off:]. b must be 8-byte
// aligned at off (segments are page aligned; every offset used is a multiple
// of 8).
func atomic64(b []byte, off uint64) *atomic.Uint64 {
	if off+8 > uint64(len(b)) { // a length check, not a read: the race detector would count a read
		panic("shmbus: atomic word out of range")
	}
	return (*atomic.Uint64)(unsafe.Pointer(&b[off]))
}

func atomic32(b []byte, off uint64) *atomic.Uint32 {
	if off+4 > uint64(len(b)) {
		panic("shmbus: atomic word out of range")
	}
	return (*atomic.Uint32)(unsafe.Pointer(&b[off]))
}

// ringWords are the shared words of one ring. tail, doorbell and waiting
// are in the writer's segment; head and parked in the reader's.
type ringWords struct {
	tail     *atomic.Uint64 // written by producers (CAS); the next position to claim
	doorbell *atomic.Uint32 // moved on by the one producer that wakes a parked consumer; the futex word
	head     *atomic.Uint64 // written by the consumer: every position before it is consumed
	parked   *atomic.Uint32 // written by the consumer: the doorbell value it waits on + 1 while it is parked or about to park; 0 when not
	waiting  *atomic.Uint32 // written by producers: how many wait for room (see producer.awaitRoom)
	room     *atomic.Uint32 // the low half of head (little endian): the futex word producers waiting for room sleep on
}

// nextBell is the doorbell value after seq. It skips MaxUint32, so that a
// consumer's parked word (the value it waits on + 1) is never 0.
func nextBell(seq uint32) uint32 {
	if seq+1 == math.MaxUint32 {
		return 0
	}
	return seq + 1
}

// ringView is what both ends know of one ring: its bytes, its shared words,
// its size and the key stamped into each record. It is set once and never
// changes; producer and consumer embed it, so its fields sit where they did
// when each declared them itself.
type ringView struct {
	data      []byte // the ring bytes, capacity long: in the producer's segment
	w         ringWords
	mask      uint64
	capacity  uint64
	key       uint64
	maxRecord int // max payload of one record
}

func newRingView(data []byte, w ringWords, key uint64) ringView {
	return ringView{
		data:      data,
		w:         w,
		mask:      uint64(len(data) - 1),
		capacity:  uint64(len(data)),
		key:       key,
		maxRecord: maxRecordPayload(len(data)),
	}
}

// producer writes records into a ring. Its methods are safe for concurrent
// use by any number of goroutines of one process.
type producer struct {
	ringView                // data is in our own segment
	headCache atomic.Uint64 // last head read from the reader's segment
	// reserved is the room every offer but an abort's leaves free:
	// recordHeaderLen while a message in fragments is being sent, so that
	// its abort record always fits (link.sendFragments). Stored before
	// that message's first fragment is claimed and loaded after the tail,
	// so an offer that missed it claimed before that fragment did.
	reserved atomic.Uint64
}

func newProducer(data []byte, w ringWords, key uint64) *producer {
	return &producer{ringView: newRingView(data, w, key)}
}

func (p *producer) stamp(pos uint64) uint64 { return (pos + 1) ^ p.key }

// offer writes one record of type typ whose payload is a followed by b.
// It returns errRingFull when the ring has no room now, and a *ringError when
// the reader's head is impossible. wake reports that the consumer had parked
// and the caller must wake it (the doorbell was already incremented).
func (p *producer) offer(typ uint32, a, b []byte) (wake bool, err error) {
	n := uint64(len(a) + len(b))
	if n > uint64(p.maxRecord) {
		return false, fmt.Errorf("shmbus: record of %d bytes over the limit of %d", n, p.maxRecord)
	}
	recLen := align(recordHeaderLen+n, recordAlign)
	var tail, off uint64
	pad := false
	for {
		// The cached head is loaded before the tail: every head cached was
		// at most the tail of its time, so head <= tail holds here.
		head := p.headCache.Load()
		tail = p.w.tail.Load()
		var keep uint64
		if typ != recordAbort {
			keep = p.reserved.Load()
		}
		off = tail & p.mask
		need := recLen
		toEnd := p.capacity - off
		if recLen > toEnd {
			need = toEnd + recLen
		}
		if tail-head+need+keep > p.capacity {
			head = p.w.head.Load()
			if head > tail && p.w.tail.Load() != tail {
				continue // our tail is stale: others claimed and the reader consumed since
			}
			if head > tail || tail-head > p.capacity {
				return false, &ringError{pos: tail, reason: fmt.Sprintf("reader head %d outside [tail-capacity, tail]", head)}
			}
			p.headCache.Store(head)
			if tail-head+need+keep > p.capacity {
				return false, errRingFull
			}
		}
		if p.w.tail.CompareAndSwap(tail, tail+need) {
			pad = recLen > toEnd
			break
		}
	}
	if pad {
		toEnd := p.capacity - off
		binary.LittleEndian.PutUint32(p.data[off+8:], uint32(toEnd-recordHeaderLen))
		binary.LittleEndian.PutUint32(p.data[off+12:], recordPad)
		atomic64(p.data, off).Store(p.stamp(tail))
		tail += toEnd
		off = 0
	}
	binary.LittleEndian.PutUint32(p.data[off+8:], uint32(n))
	binary.LittleEndian.PutUint32(p.data[off+12:], typ)
	copy(p.data[off+recordHeaderLen:], a)
	copy(p.data[off+recordHeaderLen+uint64(len(a)):], b)
	atomic64(p.data, off).Store(p.stamp(tail))
	return p.ring(), nil
}

// ring moves the doorbell on if the consumer has parked on its current
// value and reports whether this caller did, and so must wake it. Of the
// producers that find the consumer parked, one moves the doorbell and
// makes the syscall; the others find the doorbell already moved, so the
// consumer's wait cannot sleep on it, and make none.
func (p *producer) ring() bool {
	w := p.w.parked.Load()
	return w != 0 && p.w.doorbell.CompareAndSwap(w-1, nextBell(w-1))
}

// awaitHead polls the consumer's head, up to n times, until it has moved
// an eighth of the ring past the head last seen: a sender that found the
// ring full then offers again once there is room for a run of records,
// not for each record as it is freed.
func (p *producer) awaitHead(n int) {
	want := p.headCache.Load() + p.capacity/8
	for range n {
		if p.w.head.Load() >= want {
			return
		}
	}
}

// awaitRoom announces that the caller, having found the ring full, is about
// to sleep on w.room until the consumer frees room, and returns the value
// to sleep on. The caller must then offer once more, and sleep only if that
// finds the ring still full; it calls doneWaiting however the wait ends.
// The announcement comes before the head is read again, and the consumer
// stores the head before it reads the count (roomWanted), so either the
// offer sees the room the consumer freed or the consumer sees the waiter
// and wakes it (or the wait returns at once: w.room moved).
func (p *producer) awaitRoom() uint32 {
	p.w.waiting.Add(1)
	return p.w.room.Load()
}

// doneWaiting withdraws awaitRoom's announcement.
func (p *producer) doneWaiting() { p.w.waiting.Add(^uint32(0)) }

// consumer reads records from a ring. It is owned by one goroutine.
type consumer struct {
	ringView        // data is in the writer's segment (read-only)
	pos      uint64 // next position to read; published to w.head
}

func newConsumer(data []byte, w ringWords, key uint64) *consumer {
	return &consumer{ringView: newRingView(data, w, key)}
}

// poll hands up to limit records, in order, to fn, and publishes the new head.
// The payload passed to fn is shared memory the peer may still change: fn
// must copy what it keeps and validate what it copied. poll returns the
// number of records handed to fn and the first error: a *ringError when
// the memory breaks the protocol, or fn's error. fn gets every type but
// padding: data, the fragments and aborts. A record fn returns errLeave
// for is not taken: poll stops before it, with no error. Padding records are consumed
// without counting against limit (a padding record is always followed by the
// record that claimed it) and are not passed to fn.
func (c *consumer) poll(limit int, fn func(typ uint32, payload []byte) error) (int, error) {
	n := 0
	start := c.pos
	var err error
	for n < limit {
		off := c.pos & c.mask
		st := atomic64(c.data, off).Load()
		if st != (c.pos+1)^c.key {
			// Memory not yet stamped holds stale payload bytes, which may
			// be anything; only a stamp of this very slot a few laps ahead
			// (which stale bytes match with probability ~2^-50) is reported
			// as corruption. Anything else means "not published yet".
			if p := (st ^ c.key) - 1; p > c.pos && (p-c.pos)&c.mask == 0 && p-c.pos <= maxLapsAhead*c.capacity {
				err = &ringError{pos: c.pos, reason: fmt.Sprintf("stamp of position %d, from a later lap", p)}
			}
			break
		}
		length := uint64(binary.LittleEndian.Uint32(c.data[off+8:]))
		typ := binary.LittleEndian.Uint32(c.data[off+12:])
		toEnd := c.capacity - off
		if typ == recordPad {
			if length != toEnd-recordHeaderLen {
				err = &ringError{pos: c.pos, reason: fmt.Sprintf("padding of %d bytes, want %d to the end of the ring", length, toEnd-recordHeaderLen)}
				break
			}
			c.pos += toEnd
			continue
		}
		if typ < recordData || typ > recordAbort {
			err = &ringError{pos: c.pos, reason: fmt.Sprintf("unknown record type %d", typ)}
			break
		}
		if typ == recordAbort && length != 0 {
			err = &ringError{pos: c.pos, reason: fmt.Sprintf("abort record with %d bytes of payload, want none", length)}
			break
		}
		if length > uint64(c.maxRecord) || recordHeaderLen+length > toEnd {
			err = &ringError{pos: c.pos, reason: fmt.Sprintf("record length %d over the limit %d or past the end of the ring", length, c.maxRecord)}
			break
		}
		if err = fn(typ, c.data[off+recordHeaderLen:off+recordHeaderLen+length]); err != nil {
			if err == errLeave {
				err = nil // the record stays for the next poll
			}
			break
		}
		c.pos += align(recordHeaderLen+length, recordAlign)
		n++
		// Publish the head after every record, not once per batch: fn may
		// take a while (decoding, delivery), and a producer that found the
		// ring full waits for exactly this store. It writes our own
		// segment's line, which producers read only when the ring looks full.
		c.w.head.Store(c.pos)
	}
	if c.pos != start {
		c.w.head.Store(c.pos)
	}
	return n, err
}

// check validates the writer's tail against the consumer's position; a tail
// behind the head or more than a ring ahead of it is a protocol violation.
func (c *consumer) check() error {
	t := c.w.tail.Load()
	if t < c.pos || t-c.pos > c.capacity {
		return &ringError{pos: c.pos, reason: fmt.Sprintf("writer tail %d outside [head, head+capacity]", t)}
	}
	return nil
}

// roomWanted reports whether producers wait for room (awaitRoom): the
// caller, having consumed records, must then wake the waiters on w.room.
// The count is the peer's to write; a peer that lies about it costs us only
// a wake-up call per poll that consumed records.
func (c *consumer) roomWanted() bool { return c.w.waiting.Load() != 0 }

// prepareToPark announces that the consumer is about to sleep on the
// doorbell value it returns. The caller must then poll once more, and sleep
// only if that finds nothing; a producer that published before the
// announcement is seen by that poll, one that published after it finds the
// consumer parked and moves the doorbell on (and wakes the waiter, or the
// wait returns at once).
func (c *consumer) prepareToPark() uint32 {
	seq := c.w.doorbell.Load()
	c.w.parked.Store(seq + 1) // 0 (not parked) only for a doorbell an honest producer never writes
	return seq
}

// unpark withdraws the announcement.
func (c *consumer) unpark() { c.w.parked.Store(0) }
