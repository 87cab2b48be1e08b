//go:build linux

package shmbus

import (
	"encoding/binary"
	"fmt"
	"sync"
	"time"
)

// RawRing is the default ring with no bus, to a child that counts its
// records (see ringPeer): the floor beside which the bus's Tell rows are
// measured in the same run.
type RawRing struct{ p *ringPair }

// StartRawRing starts the counting child of a default-sized ring.
func StartRawRing() (*RawRing, error) {
	p, err := startRingPeer(DefaultRingSize, "")
	if err != nil {
		return nil, err
	}
	return &RawRing{p}, nil
}

// Rate offers n records of body from senders goroutines, then waits until
// the child has counted them all, and returns records per second.
func (r *RawRing) Rate(n, senders int, body []byte) (float64, error) {
	var before int64
	if err := offerWait(r.p.prod, r.p.bell, recordLast, nil); err != nil {
		return 0, err
	}
	if _, err := fmt.Fscan(r.p.out, &before); err != nil {
		return 0, err
	}
	per := n / senders
	errs := make(chan error, senders)
	var wg sync.WaitGroup
	t0 := time.Now()
	for range senders {
		wg.Go(func() {
			for range per {
				if err := offerWait(r.p.prod, r.p.bell, recordData, body); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return 0, err
	}
	if err := offerWait(r.p.prod, r.p.bell, recordLast, nil); err != nil {
		return 0, err
	}
	var after int64
	if _, err := fmt.Fscan(r.p.out, &after); err != nil {
		return 0, err
	}
	el := time.Since(t0)
	if got := after - before; got != int64(per*senders) {
		return 0, fmt.Errorf("raw ring: the child counted %d records, want %d", got, per*senders)
	}
	return float64(per*senders) / el.Seconds(), nil
}

// Close stops the child.
func (r *RawRing) Close() { r.p.close() }

// Backlog returns the bytes written to tr's rings and not yet taken by
// their peers' readers, all bytes ever written to them, and the rings'
// capacity, summed over its links.
func Backlog(tr *Transport) (used, written, capacity uint64) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for l := range tr.links {
		l.memMu.RLock()
		if l.mapped {
			tail := l.prod.w.tail.Load()
			used += tail - l.prod.w.head.Load()
			written += tail
			capacity += l.prod.capacity
		}
		l.memMu.RUnlock()
	}
	return used, written, capacity
}

// FreezeFragments makes each message in fragments that tr's links send
// call frozen once its first n fragments are in the ring. With half, the
// next fragment is first claimed and half written, never published, as a
// process killed while it writes it leaves it. frozen is not meant to
// return: the test kills the process there. Call it before Start.
func FreezeFragments(tr *Transport, n int, half bool, frozen func()) {
	tr.fragHook = func(l *link, sent int) {
		if sent != n {
			return
		}
		if half {
			halfRecord(l.prod, recordMiddle, l.prod.maxRecord)
		}
		frozen()
	}
}

// FreezeInRecord claims a record in the ring of each of tr's links and
// writes half of it, never publishing it, as a process killed while it
// writes a record leaves it, then calls frozen.
func FreezeInRecord(tr *Transport, frozen func()) {
	tr.mu.Lock()
	for l := range tr.links {
		halfRecord(l.prod, recordData, 200)
	}
	tr.mu.Unlock()
	frozen()
}

// halfRecord claims a record of n payload bytes in p's ring as a producer
// does (padding the rest of the ring first when it does not fit before
// the end; waiting for the reader while the ring is full), writes its
// length, type and half its payload, and leaves it unstamped.
func halfRecord(p *producer, typ uint32, n int) {
	rec := align(recordHeaderLen+uint64(n), recordAlign)
	for {
		head, tail := p.w.head.Load(), p.w.tail.Load()
		off := tail & p.mask
		toEnd := p.capacity - off
		need := rec
		if rec > toEnd {
			need = toEnd
		}
		if tail-head+need > p.capacity {
			time.Sleep(time.Millisecond)
			continue
		}
		if !p.w.tail.CompareAndSwap(tail, tail+need) {
			continue
		}
		if rec > toEnd { // a padding record, published, and claim again
			binary.LittleEndian.PutUint32(p.data[off+8:], uint32(toEnd-recordHeaderLen))
			binary.LittleEndian.PutUint32(p.data[off+12:], recordPad)
			atomic64(p.data, off).Store(p.stamp(tail))
			continue
		}
		binary.LittleEndian.PutUint32(p.data[off+8:], uint32(n))
		binary.LittleEndian.PutUint32(p.data[off+12:], typ)
		for i := range n / 2 {
			p.data[off+recordHeaderLen+uint64(i)] = 'H'
		}
		return
	}
}
