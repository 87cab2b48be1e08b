package shmbus

import (
	"runtime"
	"time"
)

// Spin budgets of the reader (see spinner). Measured on a 2-vCPU VM with
// two processes asking each other (docs/performance.md): a fixed 20 µs
// budget let each reader park before the next record came, so every round
// trip paid two futex wake-ups (p50 55 µs); 50–200 µs gave a p50 of
// 3.2–4 µs, and the longer budget the lower p99.
const (
	spinMax = 100 * time.Microsecond // budget while records come while we spin
	spinMin = 5 * time.Microsecond   // budget when they come only after we parked
)

// spinner decides how long the reader polls an empty ring before it parks.
// The budget adapts: a record that arrives while the reader spins doubles
// it (up to spinMax: a busy link makes no syscalls), a spin that ends in
// parking halves it (down to spinMin: a link whose records come further
// apart than any budget, or none at all, costs no CPU spinning). It is
// owned by the reader goroutine.
type spinner struct {
	budget time.Duration
	start  time.Time // first timed empty poll of this spin; zero when not spinning
	polls  int       // empty polls of this spin
}

func newSpinner() spinner { return spinner{budget: spinMax} }

// worked records that a poll consumed records.
func (s *spinner) worked() {
	if s.polls > 0 { // they came while we spun
		s.budget = min(2*s.budget, spinMax)
	}
	s.start, s.polls = time.Time{}, 0
}

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
		return false
	}
	return now.Sub(s.start) >= s.budget
}

// parked records that the spin ended in parking.
func (s *spinner) parked() {
	s.budget = max(s.budget/2, spinMin)
	s.start, s.polls = time.Time{}, 0
}
