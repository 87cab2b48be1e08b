package backoff

import (
	"testing"
	"time"
)

func TestDelay(t *testing.T) {
	lo, hi := 10*time.Millisecond, time.Second
	for _, c := range []struct {
		n        int
		r        float64
		min, max time.Duration
	}{
		{0, 0, 5 * time.Millisecond, 5 * time.Millisecond},
		{0, 0.999, 5 * time.Millisecond, 10 * time.Millisecond},
		{-3, 0, 5 * time.Millisecond, 5 * time.Millisecond},
		{3, 0, 40 * time.Millisecond, 40 * time.Millisecond},
		{3, 0.5, 60 * time.Millisecond, 60 * time.Millisecond},
		{3, 1, 80 * time.Millisecond, 80 * time.Millisecond},
		{30, 0.999, 500 * time.Millisecond, time.Second},
		{1000, 0, 500 * time.Millisecond, 500 * time.Millisecond},
		{1 << 30, 1, time.Second, time.Second},               // no overflow however many retries
		{2, 7, 40 * time.Millisecond, 40 * time.Millisecond}, // r clamped to 1
	} {
		if d := Delay(c.n, lo, hi, c.r); d < c.min || d > c.max {
			t.Errorf("Delay(%d, r=%v) = %v, want %v..%v", c.n, c.r, d, c.min, c.max)
		}
	}
	if d := Delay(5, 0, time.Second, 0.5); d != 0 {
		t.Errorf("lo 0: %v, want 0", d)
	}
	if d := Delay(0, time.Second, time.Millisecond, 1); d != time.Millisecond {
		t.Errorf("lo above hi: %v, want hi", d)
	}
}

// The schedule never shrinks between retries and never exceeds hi.
func TestDelayMonotone(t *testing.T) {
	lo, hi := 50*time.Millisecond, 5*time.Second
	prevMost := time.Duration(0)
	for n := range 40 {
		least, most := Bounds(n, lo, hi)
		if least < prevMost/2 || most > hi || least > most {
			t.Fatalf("retry %d: %v..%v after %v", n, least, most, prevMost)
		}
		prevMost = most
	}
}
