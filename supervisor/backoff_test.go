package supervisor

import (
	"testing"
	"time"
)

func TestRetryNext(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ms := time.Millisecond
	type step struct {
		now, started time.Duration // offsets from t0
		r            float64
		want         time.Duration
	}
	tests := []struct {
		name  string
		cfg   Backoff
		steps []step
	}{
		{"disabled", Backoff{Disabled: true}, []step{{0, 0, 0.9, 0}, {0, 0, 0.1, 0}}},
		{"defaults double from 10ms, no jitter at r=0.5", Backoff{}, []step{
			{0, 0, 0.5, 10 * ms}, {ms, ms, 0.5, 20 * ms}, {2 * ms, 2 * ms, 0.5, 40 * ms}, {3 * ms, 3 * ms, 0.5, 80 * ms},
		}},
		{"jitter spreads ±20%", Backoff{Initial: 100 * ms, Jitter: 0.2, ResetAfter: time.Hour}, []step{
			{0, 0, 0, 80 * ms}, {0, 0, 0.999999, 239_999_920}, // 200ms·1.1999996
		}},
		{"no jitter when negative", Backoff{Initial: 100 * ms, Jitter: -1}, []step{{0, 0, 0, 100 * ms}, {0, 0, 1, 200 * ms}}},
		{"capped", Backoff{Initial: time.Second, Max: 3 * time.Second, Jitter: -1, ResetAfter: time.Hour}, []step{
			{0, 0, 0.5, time.Second}, {0, 0, 0.5, 2 * time.Second}, {0, 0, 0.5, 3 * time.Second}, {0, 0, 0.5, 3 * time.Second},
		}},
		{"jitter never exceeds the cap", Backoff{Initial: time.Second, Max: time.Second, Jitter: 0.5}, []step{{0, 0, 0.99, time.Second}}},
		{"reset after healthy running", Backoff{Initial: 10 * ms, Jitter: -1, ResetAfter: time.Minute}, []step{
			{0, 0, 0, 10 * ms}, {time.Second, time.Second - ms, 0, 20 * ms}, {2 * time.Second, time.Second, 0, 40 * ms},
			// ran from 2s to 62s: a full minute, so it starts over
			{62 * time.Second, 2 * time.Second, 0, 10 * ms},
			{62*time.Second + ms, 62 * time.Second, 0, 20 * ms},
		}},
		{"multiplier 3", Backoff{Initial: ms, Multiplier: 3, Jitter: -1}, []step{{0, 0, 0, ms}, {0, 0, 0, 3 * ms}, {0, 0, 0, 9 * ms}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewRetry(tt.cfg)
			for i, st := range tt.steps {
				started := t0.Add(st.started)
				if got := s.Next(t0.Add(st.now), started, st.r); got != st.want {
					t.Fatalf("step %d: Next = %v, want %v", i, got, st.want)
				}
			}
		})
	}
}

// TestRetryLongRun fails a child forever without a healthy run: the delay
// stays at the cap and never overflows.
func TestRetryLongRun(t *testing.T) {
	s := NewRetry(Backoff{Initial: time.Nanosecond, Max: time.Hour, Multiplier: 10, Jitter: -1})
	now := time.Unix(0, 0)
	var d time.Duration
	for range 10_000 {
		d = s.Next(now, now, 0.5)
		if d <= 0 || d > time.Hour {
			t.Fatalf("delay %v out of (0, 1h]", d)
		}
	}
	if d != time.Hour {
		t.Fatalf("delay after 10,000 failures = %v, want the cap", d)
	}
}

func TestStrategyAffected(t *testing.T) {
	tests := []struct {
		s    Strategy
		i, n int
		want []int
	}{
		{OneForOne, 1, 3, []int{1}},
		{SimpleOneForOne, 2, 3, []int{2}},
		{OneForAll, 1, 3, []int{0, 1, 2}},
		{RestForOne, 0, 3, []int{0, 1, 2}},
		{RestForOne, 1, 3, []int{1, 2}},
		{RestForOne, 2, 3, []int{2}},
		{OneForAll, 3, 3, nil},
		{OneForOne, -1, 3, nil},
	}
	for _, tt := range tests {
		got := tt.s.affected(tt.i, tt.n)
		if len(got) != len(tt.want) {
			t.Errorf("%v.affected(%d, %d) = %v, want %v", tt.s, tt.i, tt.n, got, tt.want)
			continue
		}
		for k := range got {
			if got[k] != tt.want[k] {
				t.Errorf("%v.affected(%d, %d) = %v, want %v", tt.s, tt.i, tt.n, got, tt.want)
				break
			}
		}
	}
}
