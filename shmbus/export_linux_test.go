//go:build linux

package shmbus

import (
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
