package placement

import (
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var t0 = time.Unix(1_000_000, 0)

func at(d time.Duration) time.Time { return t0.Add(d) }

func clock(t time.Time) func() time.Time { return func() time.Time { return t } }

// TestHealth walks one breaker through its states.
func TestHealth(t *testing.T) {
	p := HealthPolicy{Failures: 3, CoolDown: time.Second, MaxCoolDown: 4 * time.Second}
	var h Health
	step := func(what string, got, want bool) {
		t.Helper()
		if got != want {
			t.Fatalf("%s: got %v, want %v", what, got, want)
		}
	}
	step("two failures leave it in", h.Failure(at(0), p) || h.Failure(at(0), p), false)
	step("in after two", h.In(at(0)), true)
	step("a success resets the count", h.Success(), false)
	h.Failure(at(0), p)
	h.Failure(at(0), p)
	step("the third in a row takes it out", h.Failure(at(0), p), true)
	step("out during the cool-down", h.In(at(999*time.Millisecond)), false)
	step("failures of older calls while out change nothing", h.Failure(at(500*time.Millisecond), p), false)
	step("half-open after the cool-down", h.In(at(time.Second)), true)
	step("first pick is the probe", h.Picked(at(time.Second), p), true)
	step("out to others while probing", h.In(at(time.Second+time.Millisecond)), false)
	step("probe fails: out again", h.Failure(at(1500*time.Millisecond), p), true)
	step("for twice as long", h.In(at(1500*time.Millisecond+1999*time.Millisecond)), false)
	step("half-open again", h.In(at(3500*time.Millisecond)), true)
	h.Picked(at(3500*time.Millisecond), p)
	h.Failure(at(3500*time.Millisecond), p) // out for 4 s (max), not 8
	step("cool-down bounded by MaxCoolDown", h.In(at(7500*time.Millisecond)), true)
	step("probe", h.Picked(at(7500*time.Millisecond), p), true)
	step("probe's success brings it back", h.Success(), true)
	step("in", h.In(at(7500*time.Millisecond)), true)
	step("not out", h.Out(), false)
	// Back in, the count starts over and the cool-down is the first again.
	for range 3 {
		h.Failure(at(10*time.Second), p)
	}
	step("out after three more", h.In(at(10*time.Second)), false)
	step("for the first cool-down", h.In(at(11*time.Second)), true)
}

// TestHealthNeverOutForGood: whatever fails, an instance is in again
// within MaxCoolDown of its last probe.
func TestHealthNeverOutForGood(t *testing.T) {
	var h Health
	var p HealthPolicy
	now := t0
	for range 100 {
		h.Failure(now, p)
	}
	for range 50 {
		now = now.Add(DefaultMaxCoolDown)
		if !h.In(now) {
			t.Fatalf("out for longer than %v", DefaultMaxCoolDown)
		}
		h.Picked(now, p)
		h.Failure(now, p)
	}
}

func TestPickSkipsOut(t *testing.T) {
	in := set(make([]int64, 3), nil)
	p := HealthPolicy{Failures: 1}
	in[1].Stats.Health.Failure(t0, p)
	for _, s := range []Strategy{LeastConnections{}, RoundRobin{}, Random{}, &WeightedRoundRobin{}, &ConsistentHash{}, Latency{}} {
		r := rng(1)
		for k := range 300 {
			i, probe := Pick(s, in, Call{Seq: uint64(k), Rand: r.next(), Key: string(rune('a' + k%26))}, clock(t0), p)
			if i == 1 || probe {
				t.Fatalf("%T chose %d (probe %v): instance 1 is out", s, i, probe)
			}
		}
	}
	// All out: it still places (fail open), without a probe.
	in[0].Stats.Health.Failure(t0, p)
	in[2].Stats.Health.Failure(t0, p)
	if i, probe := Pick(RoundRobin{}, in, Call{Seq: 2}, clock(t0), p); i != 2 || probe {
		t.Fatalf("all out: got %d probe %v, want the strategy's choice 2", i, probe)
	}
	// After the cool-down the first pick of an instance is its probe.
	later := t0.Add(DefaultCoolDown)
	if i, probe := Pick(RoundRobin{}, in, Call{Seq: 0}, clock(later), p); i != 0 || !probe {
		t.Fatalf("after the cool-down: got %d probe %v, want 0 as a probe", i, probe)
	}
	if i, _ := Pick(RoundRobin{}, in, Call{Seq: 0}, clock(later), p); i == 0 {
		t.Fatal("an instance being probed was chosen again")
	}
}

func TestPickBadStrategy(t *testing.T) {
	in := set(make([]int64, 2), nil)
	for _, bad := range []int{-1, 2, 1 << 30} {
		if i, _ := Pick(Func(func([]Instance, Call) int { return bad }), in, Call{}, clock(t0), HealthPolicy{}); i != 0 {
			t.Errorf("strategy answering %d: Pick gave %d", bad, i)
		}
	}
}

func TestBudget(t *testing.T) {
	b := Budget{Rate: 2, Burst: 3} // one every 500 ms, three at once
	allowed := func(now time.Time, n int) int {
		k := 0
		for range n {
			if b.Allow(now) {
				k++
			}
		}
		return k
	}
	if got := allowed(t0, 10); got != 3 {
		t.Fatalf("burst: %d of 10 allowed, want 3", got)
	}
	if got := allowed(at(499*time.Millisecond), 10); got != 0 {
		t.Fatalf("before one interval: %d allowed, want 0", got)
	}
	if got := allowed(at(500*time.Millisecond), 10); got != 1 {
		t.Fatalf("after one interval: %d allowed, want 1", got)
	}
	if got := allowed(at(time.Hour), 10); got != 3 {
		t.Fatalf("after a quiet hour: %d allowed, want the burst of 3", got)
	}
	// Over ten seconds of constant asking, the rate holds.
	total := 0
	for ms := 0; ms < 10000; ms += 10 {
		total += allowed(at(2*time.Hour+time.Duration(ms)*time.Millisecond), 5)
	}
	if total < 20 || total > 23 {
		t.Fatalf("%d retries in 10 s at 2/s with a burst of 3", total)
	}
	if (&Budget{Rate: -1}).Allow(t0) {
		t.Fatal("a negative rate allowed a retry")
	}
	var zero Budget
	if got := 0; true {
		for range 20 {
			if zero.Allow(t0) {
				got++
			}
		}
		if got != DefaultRetryBurst {
			t.Fatalf("zero Budget: %d allowed at once, want %d", got, DefaultRetryBurst)
		}
	}
}

// TestPickReadsNoClockWhileAllIn: the common case costs no clock read.
func TestPickReadsNoClockWhileAllIn(t *testing.T) {
	in := set(make([]int64, 3), nil)
	read := false
	for k := range 100 {
		Pick(LeastConnections{}, in, Call{Seq: uint64(k)}, func() time.Time { read = true; return t0 }, HealthPolicy{})
	}
	if read {
		t.Fatal("Pick read the clock with every instance in")
	}
}

// TestHealthFailuresSaturate: the count of failures in a row stops at its
// most instead of wrapping to a negative count that would keep a failing
// instance in.
func TestHealthFailuresSaturate(t *testing.T) {
	var h Health
	h.fails.Store(math.MaxInt32)
	if !h.Failure(at(0), HealthPolicy{Failures: 3}) {
		t.Fatal("a failure past math.MaxInt32 in a row did not take the instance out")
	}
	if n := h.fails.Load(); n != math.MaxInt32 {
		t.Fatalf("failures in a row = %d, want math.MaxInt32", n)
	}
}

// TestHealthSuccessWinsOverSaturation: failures keep coming to an instance
// whose count of failures in a row is at its most while a success arrives.
// The success resets the count, and failures after it count up from zero:
// none puts back the most it saw before the success, which would let the
// next failure take out an instance that has just succeeded.
func TestHealthSuccessWinsOverSaturation(t *testing.T) {
	p := HealthPolicy{Failures: 3}
	for range 200 {
		var h Health
		h.fails.Store(math.MaxInt32)
		var stop atomic.Bool
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() {
				for !stop.Load() {
					h.Failure(at(0), p)
				}
			})
		}
		runtime.Gosched()
		h.Success()
		stop.Store(true)
		wg.Wait()
		// The failures made after the success, until they saw stop, are
		// far fewer than half the most (a billion calls): a count past it
		// is the most put back over the success.
		if n := h.fails.Load(); n < 0 || n > math.MaxInt32/2 {
			t.Fatalf("failures in a row after a success = %d", n)
		}
	}
}
