package shmbus

import (
	"testing"
	"time"
)

// TestSpinnerBudget drives the spinner with a clock of its own: a record
// that comes soon while the reader spins doubles the budget (up to
// spinMax), one that comes after more than spinPays halves it as a park
// does (down to spinMin), and a spin ends once its budget is spent,
// counting the time between two polls (a preempted reader).
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
		{"parks down to the floor", func() {
			for range 10 {
				s.spin()
				s.parked()
			}
		}, spinMin},
		{"soon records up to the ceiling", func() {
			for range 10 {
				wait(time.Microsecond)
			}
		}, spinMax},
	}
	for _, st := range steps {
		st.do()
		if s.budget != st.want {
			t.Fatalf("%s: budget %v, want %v", st.name, s.budget, st.want)
		}
	}
	// A spin ends when its budget is spent, however few polls it made.
	s.budget = spinMin
	if s.spin() {
		t.Fatal("the first poll of a spin ended it")
	}
	now = now.Add(spinMin)
	ended := false
	for range 64 {
		ended = ended || s.spin()
	}
	if !ended {
		t.Fatal("a spin whose budget was spent between two polls went on for 64 more")
	}
}
