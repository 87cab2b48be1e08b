package shmbus

import (
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/xbus-dev/xbus/internal/race"
)

// testRing is a ring over ordinary memory, laid out as in two segments.
type testRing struct {
	data  []byte
	words []byte // tail, doorbell, head, parked, waiting on separate cache lines
	w     ringWords
	key   uint64
}

func alignedBytes(n int) []byte {
	u := make([]uint64, (n+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&u[0])), n)
}

func newTestRing(capacity int, key uint64) *testRing {
	r := &testRing{data: alignedBytes(capacity), words: alignedBytes(640), key: key}
	r.w = ringWords{
		tail:     atomic64(r.words, 0),
		doorbell: atomic32(r.words, 128),
		head:     atomic64(r.words, 256),
		parked:   atomic32(r.words, 384),
		waiting:  atomic32(r.words, 512),
		room:     atomic32(r.words, 256),
	}
	return r
}

func (r *testRing) producer() *producer { return newProducer(r.data, r.w, r.key) }
func (r *testRing) consumer() *consumer { return newConsumer(r.data, r.w, r.key) }

// ringModel is the mutex-guarded reference: a FIFO of records and the byte
// accounting the ring must follow.
type ringModel struct {
	mu       sync.Mutex
	capacity uint64
	tail     uint64
	head     uint64
	queue    []ringRecord
	sizes    []uint64 // claimed bytes per queued record, padding included
}

func (m *ringModel) offer(b []byte) bool { return m.offerTyped(recordData, b, 0) }

// offerTyped offers a record of type typ that must leave keep bytes free.
func (m *ringModel) offerTyped(typ uint32, b []byte, keep uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	rec := align(recordHeaderLen+uint64(len(b)), recordAlign)
	need := rec
	if toEnd := m.capacity - m.tail%m.capacity; rec > toEnd {
		need += toEnd
	}
	if m.tail-m.head+need+keep > m.capacity {
		return false
	}
	m.tail += need
	m.queue = append(m.queue, ringRecord{typ, append([]byte(nil), b...)})
	m.sizes = append(m.sizes, need)
	return true
}

func (m *ringModel) take() (ringRecord, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.queue) == 0 {
		return ringRecord{}, false
	}
	b := m.queue[0]
	m.head += m.sizes[0]
	m.queue, m.sizes = m.queue[1:], m.sizes[1:]
	return b, true
}

// TestRingMatchesModel drives one producer and the consumer with a random
// sequence of offers and polls and checks that the ring accepts, refuses and
// returns exactly what the model does.
func TestRingMatchesModel(t *testing.T) {
	for _, seed := range []uint64{1, 2, 3, 4, 5} {
		rng := rand.New(rand.NewPCG(seed, 99))
		const capacity = 4096
		r := newTestRing(capacity, rng.Uint64())
		p, c := r.producer(), r.consumer()
		m := &ringModel{capacity: capacity}
		for op := range 20000 {
			if rng.IntN(3) > 0 {
				b := make([]byte, rng.IntN(p.maxRecord+1))
				for i := range b {
					b[i] = byte(rng.Uint32())
				}
				split := rng.IntN(len(b) + 1)
				_, err := p.offer(recordData, b[:split], b[split:])
				want := m.offer(b)
				if want != (err == nil) || (err != nil && !errors.Is(err, errRingFull)) {
					t.Fatalf("seed %d op %d: offer of %d bytes: ring %v, model accepts %v", seed, op, len(b), err, want)
				}
				continue
			}
			limit := 1 + rng.IntN(4)
			var got [][]byte
			_, err := c.poll(limit, func(typ uint32, payload []byte) error {
				if typ != recordData {
					t.Fatalf("type %d", typ)
				}
				got = append(got, append([]byte(nil), payload...))
				return nil
			})
			if err != nil {
				t.Fatalf("seed %d op %d: poll: %v", seed, op, err)
			}
			for _, g := range got {
				w, ok := m.take()
				if !ok || string(w.b) != string(g) {
					t.Fatalf("seed %d op %d: ring gave %d bytes the model does not have next", seed, op, len(g))
				}
			}
			if err := c.check(); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestRingConcurrent runs several producers against the consumer and checks
// that every message arrives once, intact, in per-producer order.
func TestRingConcurrent(t *testing.T) {
	const producers, perProducer = 4, 5000
	r := newTestRing(8192, 0x5eed)
	c := r.consumer()
	var wg sync.WaitGroup
	var stop atomic.Bool // set when the consumer gives up
	defer func() { stop.Store(true); wg.Wait() }()
	for id := range producers {
		p := r.producer()
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(id), 7))
			var hdr [12]byte
			body := make([]byte, p.maxRecord)
			for seq := range perProducer {
				n := rng.IntN(p.maxRecord - len(hdr))
				binary.LittleEndian.PutUint32(hdr[0:], uint32(id))
				binary.LittleEndian.PutUint32(hdr[4:], uint32(seq))
				binary.LittleEndian.PutUint32(hdr[8:], uint32(n))
				for i := range n {
					body[i] = byte(seq + i)
				}
				for {
					_, err := p.offer(recordData, hdr[:], body[:n])
					if err == nil {
						break
					}
					if !errors.Is(err, errRingFull) {
						t.Errorf("offer: %v", err)
						return
					}
					if stop.Load() {
						return
					}
					yield()
				}
			}
		})
	}
	next := make([]int, producers)
	total := 0
	for total < producers*perProducer {
		n, err := c.poll(64, func(typ uint32, b []byte) error {
			id := binary.LittleEndian.Uint32(b[0:])
			seq := int(binary.LittleEndian.Uint32(b[4:]))
			n := int(binary.LittleEndian.Uint32(b[8:]))
			if id >= producers || seq != next[id] || n != len(b)-12 {
				t.Fatalf("producer %d: got seq %d (len %d/%d), want %d", id, seq, n, len(b)-12, next[id])
			}
			for i := range n {
				if b[12+i] != byte(seq+i) {
					t.Fatalf("producer %d seq %d: byte %d corrupted", id, seq, i)
				}
			}
			next[id]++
			total++
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			if t.Failed() {
				break // a producer gave up; do not wait for it
			}
			yield()
		}
	}
}

// TestRingParkProtocol checks the parked word and the doorbell: the first
// producer that publishes after prepareToPark reports that a wake-up is
// needed and has moved the doorbell on; the next ones, before the consumer
// unparks, find it moved and make no wake-up; one that publishes after
// unpark makes none either. The doorbell skips MaxUint32, so that the
// parked word is never 0 while the consumer is parked.
func TestRingParkProtocol(t *testing.T) {
	for _, start := range []uint32{0, math.MaxUint32 - 1} {
		r := newTestRing(4096, 1)
		p, c := r.producer(), r.consumer()
		r.w.doorbell.Store(start)
		seq := c.prepareToPark()
		if seq != start || r.w.parked.Load() == 0 {
			t.Fatalf("prepareToPark at doorbell %d: seq %d, parked %d", start, seq, r.w.parked.Load())
		}
		wake, err := p.offer(recordData, []byte("x"), nil)
		if err != nil || !wake {
			t.Fatalf("offer to a parked consumer: wake=%v err=%v, want wake", wake, err)
		}
		if r.w.doorbell.Load() == seq {
			t.Fatal("doorbell not rung")
		}
		if wake, _ := p.offer(recordData, []byte("x2"), nil); wake {
			t.Fatal("a second producer woke a consumer already being woken")
		}
		c.unpark()
		if wake, _ := p.offer(recordData, []byte("y"), nil); wake {
			t.Fatal("woke a consumer that is not parked")
		}
		n, err := c.poll(10, func(uint32, []byte) error { return nil })
		if n != 3 || err != nil {
			t.Fatalf("poll: %d, %v", n, err)
		}
		// Parked again on the moved doorbell: the next publisher wakes it.
		c.prepareToPark()
		if wake, _ := p.offer(recordData, []byte("z"), nil); !wake {
			t.Fatal("no wake-up for the second park")
		}
	}
}

// TestRingRoomProtocol checks the words of a producer waiting for room: a
// producer that found the ring full announces itself before it reads the
// value it sleeps on, so the consumer that then frees room sees it waiting
// and has moved that value (the futex word, the head's low half) on; once
// the producer withdraws, the consumer sees no one waiting.
func TestRingRoomProtocol(t *testing.T) {
	r := newTestRing(4096, 1)
	p, c := r.producer(), r.consumer()
	for {
		if _, err := p.offer(recordData, make([]byte, 100), nil); errors.Is(err, errRingFull) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	if c.roomWanted() {
		t.Fatal("room wanted before any producer waits")
	}
	seen := p.awaitRoom()
	if _, err := p.offer(recordData, make([]byte, 100), nil); !errors.Is(err, errRingFull) {
		t.Fatalf("offer to a full ring: %v", err)
	}
	if n, err := c.poll(1, func(uint32, []byte) error { return nil }); n != 1 || err != nil {
		t.Fatalf("poll: %d, %v", n, err)
	}
	if !c.roomWanted() {
		t.Fatal("the consumer that freed room does not see the waiting producer")
	}
	if r.w.room.Load() == seen {
		t.Fatal("the word the producer sleeps on did not move when room was freed")
	}
	if r.w.room.Load() != uint32(r.w.head.Load()) {
		t.Fatalf("room word %d is not the head's low half (head %d)", r.w.room.Load(), r.w.head.Load())
	}
	p.doneWaiting()
	if c.roomWanted() {
		t.Fatal("room still wanted after the producer withdrew")
	}
	if _, err := p.offer(recordData, make([]byte, 100), nil); err != nil {
		t.Fatalf("offer after room was freed: %v", err)
	}
}

// TestRingHostile writes broken records and checks each is reported as
// corrupt, not read.
func TestRingHostile(t *testing.T) {
	const capacity = 4096
	key := uint64(77)
	stamp := func(pos uint64) uint64 { return (pos + 1) ^ key }
	cases := []struct {
		name  string
		write func(d []byte, w ringWords)
	}{
		{"length past the end", func(d []byte, w ringWords) {
			binary.LittleEndian.PutUint32(d[8:], 1<<31)
			binary.LittleEndian.PutUint32(d[12:], recordData)
			binary.LittleEndian.PutUint64(d[0:], stamp(0))
		}},
		{"unknown type", func(d []byte, w ringWords) {
			binary.LittleEndian.PutUint32(d[8:], 4)
			binary.LittleEndian.PutUint32(d[12:], 99)
			binary.LittleEndian.PutUint64(d[0:], stamp(0))
		}},
		{"short padding", func(d []byte, w ringWords) {
			binary.LittleEndian.PutUint32(d[8:], 32)
			binary.LittleEndian.PutUint32(d[12:], recordPad)
			binary.LittleEndian.PutUint64(d[0:], stamp(0))
		}},
		{"stamp from the future", func(d []byte, w ringWords) {
			binary.LittleEndian.PutUint64(d[0:], stamp(3*capacity))
		}},
		{"tail behind head", func(d []byte, w ringWords) {
			w.tail.Store(1 << 40)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := newTestRing(capacity, key)
			tc.write(r.data, r.w)
			c := r.consumer()
			_, err := c.poll(10, func(uint32, []byte) error {
				t.Fatal("a corrupt record was handed out")
				return nil
			})
			if err == nil {
				err = c.check()
			}
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("got %v, want ErrCorrupt", err)
			}
		})
	}
}

// FuzzRingReader fills a ring with arbitrary bytes and a consumer position
// and drives the reader, with the fragments and aborts it hands out fed to
// a reassembler as the link does: it must hand out only in-bounds payloads
// within the record limit, rebuild only messages within the reassembler's
// limit, or report corruption, never panic.
func FuzzRingReader(f *testing.F) {
	r := newTestRing(4096, 3)
	p := r.producer()
	p.offer(recordData, []byte("hello"), nil)
	p.offer(recordData, make([]byte, 200), nil)
	f.Add(append([]byte(nil), r.data...), uint64(0), uint64(3))
	f.Add([]byte{}, uint64(4080), uint64(0))
	// A message in fragments begun and aborted, then one sent whole.
	r = newTestRing(4096, 5)
	p = r.producer()
	p.offer(recordFirst, first(1000, make([]byte, 400)), nil)
	p.offer(recordMiddle, make([]byte, 300), nil)
	p.offer(recordAbort, nil, nil)
	p.offer(recordData, []byte("between"), nil)
	p.offer(recordFirst, first(600, make([]byte, 488)), nil)
	p.offer(recordLast, make([]byte, 112), nil)
	p.offer(recordAbort, nil, nil) // with no message begun
	f.Add(append([]byte(nil), r.data...), uint64(0), uint64(5))
	// A ring full to its last byte, from position 32: fragments, then
	// padding with no payload and the last fragment past the wrap.
	r = newTestRing(4096, 7)
	p = r.producer()
	p.offer(recordData, make([]byte, 16), nil)
	r.w.head.Store(32)
	p.headCache.Store(32)
	p.offer(recordFirst, first(488+6*496+448+16, make([]byte, 488)), nil)
	for range 6 {
		p.offer(recordMiddle, make([]byte, 496), nil)
	}
	p.offer(recordMiddle, make([]byte, 448), nil)
	p.offer(recordLast, make([]byte, 16), nil)
	if tail := r.w.tail.Load(); tail != 32+4096 {
		f.Fatalf("the seed's ring is filled to %d, not to its last byte", tail)
	}
	f.Add(append([]byte(nil), r.data...), uint64(32), uint64(7))
	f.Fuzz(func(t *testing.T, mem []byte, pos, key uint64) {
		r := newTestRing(4096, key)
		copy(r.data, mem)
		c := r.consumer()
		c.pos = pos &^ (recordAlign - 1)
		r.w.tail.Store(c.pos + uint64(len(mem)))
		re := reassembler{max: 2048}
		for range 8 {
			before := c.pos
			_, err := c.poll(16, func(typ uint32, b []byte) error {
				if len(b) > c.maxRecord || typ < recordData || typ > recordAbort || typ == recordPad || typ == recordAbort && len(b) != 0 {
					t.Fatalf("handed out type %d, %d bytes", typ, len(b))
				}
				if typ == recordData {
					return nil
				}
				msg, err := re.take(typ, b)
				if len(msg) > re.max || len(re.buf) > re.want || re.want > re.max || re.want == 0 && len(re.buf) != 0 {
					t.Fatalf("reassembler: message of %d bytes, %d of %d buffered (limit %d)", len(msg), len(re.buf), re.want, re.max)
				}
				return err
			})
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("error %v does not wrap ErrCorrupt", err)
				}
				return
			}
			if c.pos < before || c.pos-before > 16*4096 || c.pos%recordAlign != 0 {
				t.Fatalf("position moved from %d to %d", before, c.pos)
			}
		}
	})
}

// TestRingKeepsRoomForAbort: while a message in fragments is being sent
// (reserved set), producers racing to fill a ring nobody reads, with
// records of every size, stop short of the abort record's 16 bytes,
// wherever the wrap falls, so the abort always fits.
func TestRingKeepsRoomForAbort(t *testing.T) {
	for start := uint64(0); start < 4096; start += 16 * 37 {
		r := newTestRing(4096, 9)
		r.w.tail.Store(start)
		r.w.head.Store(start)
		p := r.producer()
		p.headCache.Store(start)
		p.reserved.Store(recordHeaderLen)
		var wg sync.WaitGroup
		for g := range 4 {
			wg.Go(func() {
				for i := 0; ; i++ {
					if _, err := p.offer(recordData, make([]byte, (g*131+i*61)%p.maxRecord), nil); err != nil {
						if !errors.Is(err, errRingFull) {
							t.Error(err)
						}
						if _, err := p.offer(recordData, make([]byte, 0), nil); err != nil { // the smallest too
							return
						}
					}
				}
			})
		}
		wg.Wait()
		if _, err := p.offer(recordAbort, nil, nil); err != nil {
			t.Fatalf("ring started at %d, filled with %d bytes: abort: %v", start, r.w.tail.Load()-start, err)
		}
		if _, err := p.offer(recordAbort, nil, nil); !errors.Is(err, errRingFull) {
			t.Fatalf("ring started at %d: a second abort: %v, want the ring full", start, err)
		}
	}
}

// TestRingFilledToCapacity: from every start in the ring, after a whole
// lap of earlier records, producers claim records of one size until the
// ring refuses, then the smallest until it refuses again, so that claims
// end exactly at the end of the ring (no padding), one slot short of it
// (padding with no payload), and exactly at the ring's capacity; with no
// reserve and with the abort's, which then takes the last 16 bytes. The
// ring accepts and refuses exactly as the model does, fills to its very
// last byte, hands every record back intact and in order, and carries on
// over the next lap.
func TestRingFilledToCapacity(t *testing.T) {
	const capacity = 4096
	types := []uint32{recordFirst, recordMiddle, recordLast, recordData}
	buf := make([]byte, capacity/8)
	step := uint64(recordAlign)
	if race.Enabled {
		step *= 7 // every start takes minutes under the race detector; every 7th, many offsets still
	}
	for _, reserve := range []uint64{0, recordHeaderLen} {
		for rec := uint64(recordAlign); rec <= capacity/8; rec += recordAlign {
			for start := uint64(0); start < capacity; start += step {
				r := newTestRing(capacity, 0x9e3779b97f4a7c15^rec^start<<20^reserve<<40)
				p, c := r.producer(), r.consumer()
				m := &ringModel{capacity: capacity}
				var got []ringRecord
				take := func(typ uint32, b []byte) error {
					got = append(got, ringRecord{typ, append([]byte(nil), b...)})
					return nil
				}
				check := func(what string) {
					for {
						n, err := c.poll(64, take)
						if err != nil {
							t.Fatalf("reserve %d, records of %d from %d, %s: poll: %v", reserve, rec, start, what, err)
						}
						if n == 0 {
							break
						}
					}
					for i, g := range got {
						w, ok := m.take()
						if !ok || w.typ != g.typ || string(w.b) != string(g.b) {
							t.Fatalf("reserve %d, records of %d from %d, %s: record %d of type %d and %d bytes is not the model's next", reserve, rec, start, what, i, g.typ, len(g.b))
						}
					}
					got = got[:0]
					if _, ok := m.take(); ok || c.pos != r.w.tail.Load() {
						t.Fatalf("reserve %d, records of %d from %d, %s: records left in the model, or head %d short of tail %d", reserve, rec, start, what, c.pos, r.w.tail.Load())
					}
				}
				offer := func(typ uint32, n int, keep uint64) bool {
					b := buf[:n]
					for i, v := 0, byte(r.w.tail.Load()>>4); i < n; i++ {
						b[i] = v + byte(i)
					}
					_, err := p.offer(typ, b, nil)
					if want := m.offerTyped(typ, b, keep); want != (err == nil) || err != nil && !errors.Is(err, errRingFull) {
						t.Fatalf("reserve %d, records of %d from %d: offer of %d at tail %d (head %d): ring %v, model accepts %v", reserve, rec, start, n, r.w.tail.Load(), c.pos, err, want)
					}
					return err == nil
				}
				// A lap of records that never need padding leaves a stamp
				// of an earlier lap in every slot and the tail at start.
				for tail := r.w.tail.Load(); tail < capacity+start; tail = r.w.tail.Load() {
					offer(recordData, int(min(capacity/8, capacity+start-tail, capacity-tail%capacity)-recordHeaderLen), 0)
					check("a lap before")
				}
				p.reserved.Store(reserve)
				for i := 0; offer(types[i%len(types)], int(rec-recordHeaderLen), reserve); i++ {
				}
				for offer(recordData, 0, reserve) {
				}
				if reserve != 0 {
					if !offer(recordAbort, 0, 0) {
						t.Fatalf("records of %d from %d: no room for the abort", rec, start)
					}
					p.reserved.Store(0)
				}
				if used := r.w.tail.Load() - c.pos; used != capacity {
					t.Fatalf("reserve %d, records of %d from %d: the ring holds %d bytes, want it full (%d)", reserve, rec, start, used, capacity)
				}
				offer(recordData, 0, 0) // refused: full
				check("full")
				for range 3 { // the next lap
					offer(recordData, int(rec-recordHeaderLen), 0)
					offer(recordData, 0, 0)
				}
				check("after")
			}
		}
	}
}

// ringRecord is one record as the consumer hands it out.
type ringRecord struct {
	typ uint32
	b   []byte
}
