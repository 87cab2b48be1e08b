package shmbus

import (
	"runtime"
	"time"
)

// Spin budgets of the reader (see spinner). A budget shorter than a round
// trip lets each reader park before the next record comes, so every round
// trip pays two futex wake-ups; the measurements that chose these are in
// docs/performance.md ("Why the shm reader spins").
const (
	spinMax = 100 * time.Microsecond // budget while records come while we spin
	spinMin = 5 * time.Microsecond   // the least budget of a reader that spins at all
	// spinPays is the longest wait for a record that spinning pays for: a
	// record that came later than this (the peer's thread was waiting for a
	// CPU, or it sends that rarely) halves the budget as a park does, so
	// that readers on a machine busy with other work stop taking the CPU
	// their peers need and sleep in the kernel instead.
	spinPays = 20 * time.Microsecond
	// probeEvery is how often a reader that stopped spinning spins once
	// more, for spinPays, to find out whether spinning pays again: every
	// probeEvery-th time its ring runs empty. A probe as long as spinPays
	// catches a peer whose records come every round trip of two parked
	// readers (futex wake-ups on an idle machine), so a link does not stay
	// parked once the machine is quiet again.
	probeEvery = 32
)

// spinner decides how long the reader polls an empty ring before it parks.
// The budget adapts: a record that arrives soon (within spinPays) while the
// reader spins doubles it (from spinMin up to spinMax: a busy link makes no
// syscalls); a spin that ends in parking halves it down to spinMin (a link
// whose records come rarely, or not at all, costs little CPU spinning);
// one that waited longer than spinPays for its record halves it too, and
// below spinMin the reader stops spinning: on a machine whose CPUs other
// processes keep busy a spinning reader takes the CPU its peer needs.
// Such a reader still spins, for spinPays, every probeEvery-th time, and a
// record that comes soon then starts it spinning again. It is owned by the
// reader goroutine.
type spinner struct {
	now    func() time.Time // the clock: time.Now
	budget time.Duration    // 0: park at once (but see probeEvery)
	start  time.Time        // first empty poll of this spin
	polls  int              // empty polls of this spin
	empty  int              // spins since the budget fell to 0
}

func newSpinner() spinner { return spinner{now: time.Now, budget: spinMax} }

// worked records that a poll consumed records.
func (s *spinner) worked() {
	switch {
	case s.polls == 0: // no spin
	case s.now().Sub(s.start) < spinPays: // they came soon while we spun
		s.budget = min(max(2*s.budget, spinMin), spinMax)
	default: // spinning did not pay
		s.halve()
	}
	s.polls = 0
}

// spin is called after an empty poll. It yields the processor (so that the
// goroutines the bus readied, an actor's mailbox or a waiting asker, run
// on this thread rather than wake another) and reports true when the
// budget is spent and the reader should park. The clock is read at the
// first poll of a spin, which times the wait (the thread may spend most of
// it preempted, between two polls), and then every 8 polls.
func (s *spinner) spin() bool {
	if s.polls == 0 {
		if s.budget == 0 {
			if s.empty++; s.empty%probeEvery != 0 {
				return true
			}
		}
		s.start = s.now()
	}
	runtime.Gosched()
	if s.polls++; s.polls&7 != 0 {
		return false
	}
	budget := s.budget
	if budget == 0 { // a probe
		budget = spinPays
	}
	return s.now().Sub(s.start) >= budget
}

// parked records that the spin ended in parking. A spin that ran out
// halves the budget down to spinMin, not below: only records that come
// late while the reader spins stop it spinning, since a reader whose
// records come rarely (an idle link, a paced one) finds them soon within
// spinMin once they come back to back. A probe that ran out leaves the
// reader not spinning.
func (s *spinner) parked() {
	if s.polls > 0 && s.budget > 0 {
		s.budget = max(s.budget/2, spinMin)
	}
	s.polls = 0
}

func (s *spinner) halve() {
	if s.budget /= 2; s.budget < spinMin {
		s.budget = 0
	}
}
