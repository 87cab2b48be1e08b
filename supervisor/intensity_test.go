package supervisor

import (
	"testing"
	"time"
)

func TestWindow(t *testing.T) {
	t0 := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		at    time.Duration
		allow bool
		count int // Count at the same instant, after the call
	}
	tests := []struct {
		name  string
		in    Intensity
		steps []step
	}{
		{"defaults: 3 in 5s", Intensity{}, []step{
			{0, true, 1}, {time.Second, true, 2}, {2 * time.Second, true, 3},
			{3 * time.Second, false, 3}, // a fourth within 5s escalates
		}},
		{"window slides", Intensity{MaxRestarts: 2, Period: 10 * time.Second}, []step{
			{0, true, 1}, {5 * time.Second, true, 2},
			{9 * time.Second, false, 2},
			{10 * time.Second, true, 2}, // the restart at 0 is exactly Period old: gone
			{14 * time.Second, false, 2},
			{15 * time.Second, true, 2},
		}},
		{"once a day forever", Intensity{MaxRestarts: 1, Period: time.Hour}, []step{
			{0, true, 1}, {24 * time.Hour, true, 1}, {48 * time.Hour, true, 1}, {72 * time.Hour, true, 1},
			{72*time.Hour + time.Minute, false, 1},
		}},
		{"zero restarts allowed", Intensity{MaxRestarts: 0, Period: time.Second}, []step{
			{0, false, 0}, {time.Hour, false, 0},
		}},
		{"unlimited", Intensity{MaxRestarts: -1}, []step{
			{0, true, 0}, {0, true, 0}, {0, true, 0},
		}},
		{"zero period takes the default", Intensity{MaxRestarts: 1}, []step{
			{0, true, 1}, {DefaultPeriod - 1, false, 1}, {DefaultPeriod, true, 1},
		}},
		{"clock going back is kept in order", Intensity{MaxRestarts: 2, Period: 10 * time.Second}, []step{
			{5 * time.Second, true, 1}, {4 * time.Second, true, 2}, {6 * time.Second, false, 2},
			{15 * time.Second, true, 1},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := NewWindow(tt.in)
			for i, s := range tt.steps {
				if got := w.Allow(at(s.at)); got != s.allow {
					t.Fatalf("step %d at %v: Allow = %v, want %v", i, s.at, got, s.allow)
				}
				if got := w.Count(at(s.at)); got != s.count {
					t.Fatalf("step %d at %v: Count = %d, want %d", i, s.at, got, s.count)
				}
			}
		})
	}
}

// TestWindowBoundedMemory restarts at a steady rate for a long time: the
// history stays as large as one window, not as the lifetime.
func TestWindowBoundedMemory(t *testing.T) {
	w := NewWindow(Intensity{MaxRestarts: 100, Period: time.Second})
	t0 := time.Unix(0, 0)
	for i := range 1_000_000 {
		if !w.Allow(t0.Add(time.Duration(i) * 20 * time.Millisecond)) {
			t.Fatalf("restart %d refused at 50 per second with 100 allowed", i)
		}
	}
	if c := cap(w.times); c > 1024 {
		t.Fatalf("history capacity %d after a million restarts; want it bounded by the window", c)
	}
}

func TestWindowReset(t *testing.T) {
	w := NewWindow(Intensity{MaxRestarts: 1, Period: time.Minute})
	now := time.Unix(100, 0)
	if !w.Allow(now) || w.Allow(now) {
		t.Fatal("want the first restart allowed and the second refused")
	}
	w.Reset()
	if !w.Allow(now) {
		t.Fatal("after Reset a restart must be allowed")
	}
}
