package benchkit

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"
)

func TestShares(t *testing.T) {
	for _, c := range []struct {
		total, senders, receivers int
		per                       int
		want                      []int
	}{
		{10, 1, 1, 10, []int{10}},
		{10, 2, 1, 5, []int{10}},
		{11, 2, 2, 5, []int{5, 5}},
		{12, 3, 2, 4, []int{8, 4}},
		{4, 2, 3, 2, []int{2, 2, 0}},
	} {
		per, want := Shares(c.total, c.senders, c.receivers)
		if per != c.per || !slices.Equal(want, c.want) {
			t.Errorf("Shares(%d, %d, %d) = %d, %v; want %d, %v", c.total, c.senders, c.receivers, per, want, c.per, c.want)
		}
	}
}

func TestRounds(t *testing.T) {
	for _, c := range []struct {
		total, size, multiple int
		want                  []int
	}{
		{0, 10, 1, nil},
		{25, 10, 1, []int{10, 10, 5}},
		{25, 10, 4, []int{8, 8, 8, 4}},
		{3, 10, 4, []int{4}},
	} {
		if got := slices.Collect(Rounds(c.total, c.size, c.multiple)); !slices.Equal(got, c.want) {
			t.Errorf("Rounds(%d, %d, %d) = %v, want %v", c.total, c.size, c.multiple, got, c.want)
		}
	}
}

func TestMedianAndPercentile(t *testing.T) {
	xs := []float64{5, 1, 3, 2, 4}
	if m := Median(xs); m != 3 {
		t.Errorf("Median = %v, want 3", m)
	}
	if xs[0] != 5 {
		t.Errorf("Median reordered its input: %v", xs)
	}
	if m := Median(nil); m != 0 {
		t.Errorf("Median(nil) = %v, want 0", m)
	}
	sorted := make([]time.Duration, 100)
	for i := range sorted {
		sorted[i] = time.Duration(i + 1)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 51}, {99, 100}, {99.9, 100}} {
		if got := Percentile(sorted, c.p); got != c.want {
			t.Errorf("Percentile(1..100, %v) = %v, want %v", c.p, got, c.want)
		}
	}
	if got := Percentile(nil, 50); got != 0 {
		t.Errorf("Percentile(nil) = %v, want 0", got)
	}
}

func TestFanoutDeliversEveryShare(t *testing.T) {
	per, want := Shares(3000, 3, 2)
	var got [2]atomic.Int64
	done := []chan struct{}{make(chan struct{}), make(chan struct{})}
	d, err := Fanout(context.Background(), 3, per, func(i, n int) error {
		r := i % 2
		for range n {
			if got[r].Add(1) == int64(want[r]) {
				close(done[r])
			}
		}
		return nil
	}, done)
	if err != nil || d <= 0 {
		t.Fatalf("Fanout = %v, %v", d, err)
	}
	for r := range got {
		if g := got[r].Load(); g != int64(want[r]) {
			t.Errorf("receiver %d got %d, want %d", r, g, want[r])
		}
	}
}

func TestFanoutEndsOnASendersError(t *testing.T) {
	boom := errors.New("boom")
	never := []chan struct{}{make(chan struct{})}
	_, err := Fanout(context.Background(), 2, 1, func(i, n int) error {
		if i == 1 {
			return boom
		}
		return nil
	}, never)
	if !errors.Is(err, boom) {
		t.Errorf("Fanout error = %v, want %v", err, boom)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Fanout(ctx, 1, 1, func(int, int) error { return nil }, never); !errors.Is(err, context.Canceled) {
		t.Errorf("Fanout on a cancelled context = %v, want %v", err, context.Canceled)
	}
}

func TestBaselinesRun(t *testing.T) {
	if d := ChanPipeline(1, 10_000, 2, 3, 16); d <= 0 {
		t.Errorf("ChanPipeline took %v", d)
	}
	e := NewEcho[int]()
	if got := e.RoundTrip(7); got != 7 {
		t.Errorf("RoundTrip(7) = %d", got)
	}
	e.Close()
	lat := ChanPingPong(1, 100)
	if len(lat) != 100 || !slices.IsSorted(lat) {
		t.Errorf("ChanPingPong: %d latencies, sorted %v", len(lat), slices.IsSorted(lat))
	}
	boom := errors.New("boom")
	calls := 0
	if _, err := Latencies(10, func() error {
		if calls++; calls == 3 {
			return boom
		}
		return nil
	}); !errors.Is(err, boom) || calls != 3 {
		t.Errorf("Latencies error = %v after %d calls, want %v after 3", err, calls, boom)
	}
	d, per := GoroutinesIdle(1000)
	if d <= 0 || per <= 0 {
		t.Errorf("GoroutinesIdle = %v, %v B", d, per)
	}
}

var sinkSlice, sinkSlice2 []byte

// TestAllocsPerRun checks AllocsPerRun against testing.AllocsPerRun on a
// function that allocates twice per call and one that does not allocate.
func TestAllocsPerRun(t *testing.T) {
	two := func() { sinkSlice, sinkSlice2 = make([]byte, 64), make([]byte, 128) }
	none := func() { sinkSlice = sinkSlice[:0] }
	for name, f := range map[string]func(){"two": two, "none": none} {
		if got, want := AllocsPerRun(1000, f), testing.AllocsPerRun(1000, f); got != want {
			t.Errorf("%s: AllocsPerRun = %v, testing.AllocsPerRun = %v", name, got, want)
		}
	}
	if got := AllocsPerRun(1000, two); got != 2 {
		t.Errorf("AllocsPerRun of two allocations = %v, want 2", got)
	}
}

// TestRowFormat checks the ratio and how each unit prints.
func TestRowFormat(t *testing.T) {
	if r := (Row{Xbus: 3, Baseline: 2}); r.Ratio() != 1.5 {
		t.Errorf("ratio of 3 over 2 = %v", r.Ratio())
	}
	if r := (Row{Xbus: 3}); r.Ratio() != 0 {
		t.Errorf("ratio without a baseline = %v, want 0", r.Ratio())
	}
	for _, c := range []struct {
		u    Unit
		v    float64
		want string
	}{
		{PerSec, 17_912_345, "17.9 M/s"},
		{PerSec, 266_159, "266 k/s"},
		{PerSec, 12, "12 /s"},
		{Nanos, 499.6, "500ns"},
		{Nanos, 1_564_321, "1.56ms"},
		{Nanos, 35_972, "36µs"},
		{Bytes, 629.6, "630 B"},
		{Seconds, 8.314, "8.31 s"},
		{CPU, 0.213, "0.21 %"},
		{Count, 0, "0"},
	} {
		if got := c.u.Format(c.v); got != c.want {
			t.Errorf("%s.Format(%v) = %q, want %q", c.u, c.v, got, c.want)
		}
	}
}
