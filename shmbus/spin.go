package shmbus

import (
	"runtime"
	"time"
)

// Spin budgets of the reader (see spinner). Measured on a 2-vCPU VM with
// two processes asking each other (docs/performance.md): a 20 µs budget
// let each reader park before the next record came, so every round trip
// paid two futex wake-ups (p50 55 µs); 50–200 µs of hot spinning gave a
// p50 of 3.2–4 µs, and the longer budget the lower p99.
const (
	spinHot    = 100 * time.Microsecond // budget while traffic is recent
	spinCold   = 5 * time.Microsecond   // budget when the link has been quiet
	spinWindow = time.Millisecond       // a record within this long is recent traffic
)

// spinner decides how long the reader polls an empty ring before it parks:
// long while traffic is recent (a busy link makes no syscalls), briefly
// when the link has been quiet (an idle link uses no CPU). It is owned by
// the reader goroutine.
type spinner struct {
	last  time.Time // when the last record was consumed; zero: just now
	start time.Time // first timed empty poll of this spin; zero when not spinning
	polls int
}

// worked records that a poll consumed records.
func (s *spinner) worked() { *s = spinner{} }

// spin is called after an empty poll. It yields the processor (so that the
// goroutines the bus readied, an actor's mailbox or a waiting asker, run
// on this thread rather than wake another) and reports true when the
// budget is spent and the reader should park. The clock is read every 64
// polls.
func (s *spinner) spin() bool {
	runtime.Gosched()
	if s.polls++; s.polls&63 != 0 {
		return false
	}
	now := time.Now()
	if s.start.IsZero() {
		s.start = now
		if s.last.IsZero() {
			s.last = now
		}
		return false
	}
	budget := spinCold
	if now.Sub(s.last) < spinWindow {
		budget = spinHot
	}
	return now.Sub(s.start) >= budget
}

// woke records the end of a park; n records were found right after it.
func (s *spinner) woke(n int) {
	s.polls = 0
	s.start = time.Time{}
	if n > 0 {
		s.last = time.Time{}
	}
}
