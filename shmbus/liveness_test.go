package shmbus

import (
	"testing"
	"time"
)

func TestWatchdog(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	type step struct {
		beat uint64
		at   time.Duration
		gone bool
	}
	cases := map[string]struct {
		timeout time.Duration
		steps   []step
	}{
		"beating":              {time.Second, []step{{1, 900 * time.Millisecond, false}, {2, 1800 * time.Millisecond, false}, {3, 2700 * time.Millisecond, false}}},
		"silent to the limit":  {time.Second, []step{{0, time.Second, false}}},
		"silent past it":       {time.Second, []step{{0, 500 * time.Millisecond, false}, {0, time.Second + 1, true}}},
		"a beat restarts it":   {time.Second, []step{{0, 900 * time.Millisecond, false}, {1, 1800 * time.Millisecond, false}, {1, 2700 * time.Millisecond, false}, {1, 2800*time.Millisecond + 1, true}}},
		"any change is a beat": {time.Second, []step{{1 << 63, 900 * time.Millisecond, false}, {5, 1800 * time.Millisecond, false}, {5, 2801 * time.Millisecond, true}}},
		// Seen after a long gap of our own (we were descheduled): the
		// counter moved meanwhile, so the peer lived.
		"moved while we slept": {time.Second, []step{{9, time.Hour, false}}},
		"no timeout":           {0, []step{{0, time.Hour, false}}},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			w := newWatchdog(c.timeout, 0, t0)
			for i, s := range c.steps {
				if _, gone := w.observe(s.beat, at(s.at)); gone != s.gone {
					t.Fatalf("step %d (beat %d at %v): gone %v, want %v", i, s.beat, s.at, gone, s.gone)
				}
			}
		})
	}
}

func TestParkSliceFor(t *testing.T) {
	cases := []struct{ own, peer, want time.Duration }{
		{0, 0, parkSlice},
		{-1, 0, parkSlice},
		{DefaultPeerTimeout, DefaultPeerTimeout, parkSlice},
		{DefaultPeerTimeout, time.Second, 250 * time.Millisecond},
		{400 * time.Millisecond, DefaultPeerTimeout, 100 * time.Millisecond},
		{0, MinPeerTimeout, MinPeerTimeout / 4},
	}
	for _, c := range cases {
		if got := parkSliceFor(c.own, c.peer); got != c.want {
			t.Errorf("parkSliceFor(%v, %v) = %v, want %v", c.own, c.peer, got, c.want)
		}
	}
}
