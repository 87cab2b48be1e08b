package shmbus

import (
	"testing"
	"time"
)

// TestSpinnerBudget drives the spinner with a clock of its own: a record
// that comes soon while the reader spins doubles the budget (up to
// spinMax), one that comes after more than spinPays halves it, and so does
// a park, though not below spinMin; a late record below spinMin makes the
// reader park at once except every probeEvery-th time, when it spins for
// spinPays, and a probe whose record comes soon starts it spinning again. A
// spin ends once its budget is spent, counting the time between two polls
// (a preempted reader).
func TestSpinnerBudget(t *testing.T) {
	var now time.Time
	s := newSpinner()
	s.now = func() time.Time { return now }
	// wait spins until the clock has advanced by d, then takes a record.
	wait := func(d time.Duration) {
		s.spin()
		now = now.Add(d)
		s.spin()
		s.worked()
	}
	steps := []struct {
		name string
		do   func()
		want time.Duration
	}{
		{"a record after 30 µs", func() { wait(30 * time.Microsecond) }, spinMax / 2},
		{"another", func() { wait(30 * time.Microsecond) }, spinMax / 4},
		{"a record after 2 µs", func() { wait(2 * time.Microsecond) }, spinMax / 2},
		{"a poll that finds records at once", func() { s.worked() }, spinMax / 2},
		{"a park", func() { s.spin(); s.parked() }, spinMax / 4},
		{"parks down to spinMin, not below", func() {
			for range 10 {
				s.spin()
				s.parked()
			}
		}, spinMin},
		{"a late record below spinMin", func() { wait(30 * time.Microsecond) }, 0},
	}
	for _, st := range steps {
		st.do()
		if s.budget != st.want {
			t.Fatalf("%s: budget %v, want %v", st.name, s.budget, st.want)
		}
	}
	// Not spinning: every spin parks at once, but for a probe.
	probes := 0
	for range 10 * probeEvery {
		if !s.spin() {
			probes++
			now = now.Add(spinPays) // the probe spends spinPays and parks
			for !s.spin() {
			}
		}
		s.parked()
	}
	if probes != 10 || s.budget != 0 {
		t.Fatalf("%d probes in %d spins (want 10), budget %v (want 0)", probes, 10*probeEvery, s.budget)
	}
	// A probe whose record comes soon: spinning again, up to spinMax.
	for s.spin() {
		s.parked()
	}
	now = now.Add(time.Microsecond)
	s.worked()
	if s.budget != spinMin {
		t.Fatalf("after a probe that paid: budget %v, want %v", s.budget, spinMin)
	}
	for range 10 {
		wait(time.Microsecond)
	}
	if s.budget != spinMax {
		t.Fatalf("after soon records: budget %v, want %v", s.budget, spinMax)
	}
	// A spin ends when its budget is spent, however few polls it made.
	s.budget = spinMin
	if s.spin() {
		t.Fatal("the first poll of a spin ended it")
	}
	now = now.Add(spinMin)
	ended := false
	for range 8 {
		ended = ended || s.spin()
	}
	if !ended {
		t.Fatal("a spin whose budget was spent between two polls went on for 8 more")
	}
}
