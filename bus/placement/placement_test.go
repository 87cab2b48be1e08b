package placement

import (
	"fmt"
	"testing"
	"time"
)

// set makes instances with the given loads and localities.
func set(loads []int64, locs []Locality) []Instance {
	in := make([]Instance, len(loads))
	for i := range in {
		in[i] = Instance{ID: mix(uint64(i) + 1), Stats: &Stats{}}
		in[i].Stats.Add(loads[i])
		if locs != nil {
			in[i].Locality = locs[i]
		}
	}
	return in
}

// counts places n calls with s and counts each instance's share.
func counts(s Strategy, in []Instance, n int) []int {
	c := make([]int, len(in))
	r := rng(42)
	for k := range n {
		c[s.Pick(in, Call{Seq: uint64(k), Rand: r.next()})]++
	}
	return c
}

func TestLeastConnections(t *testing.T) {
	R, H, P := Remote, SameHost, SameProcess
	tests := []struct {
		name   string
		margin int64
		loads  []int64
		locs   []Locality
		want   []int // the instances it may choose
	}{
		{"fewest wins", 0, []int64{3, 1, 2}, []Locality{R, R, R}, []int{1}},
		{"local wins at equal load", 0, []int64{0, 0, 0}, []Locality{R, P, H}, []int{1}},
		{"same host beats remote", 0, []int64{0, 0}, []Locality{R, H}, []int{1}},
		{"local within margin wins", 0, []int64{4, 2}, []Locality{P, R}, []int{0}},   // 4 ≤ 2+2·2
		{"local at margin still wins", 0, []int64{6, 2}, []Locality{P, R}, []int{0}}, // 6 = 2+2·2: nearer wins the tie
		{"local busier than margin loses", 0, []int64{7, 2}, []Locality{P, R}, []int{1}},
		{"same host busier by margin+1 loses", 0, []int64{3, 0}, []Locality{H, R}, []int{1}},
		{"margin 5", 5, []int64{5, 0}, []Locality{H, R}, []int{0}},
		{"negative margin: load only", -1, []int64{1, 0}, []Locality{P, R}, []int{1}},
		{"negative margin: locality breaks ties", -1, []int64{1, 1}, []Locality{R, P}, []int{1}},
		{"ties at random", 0, []int64{1, 0, 0, 1, 0}, []Locality{R, R, R, R, R}, []int{1, 2, 4}},
		{"equal loads tie", 0, []int64{2, 2, 2}, nil, []int{0, 1, 2}},
		{"idle ones tie, the far one never chosen", 0, []int64{0, 0, 0}, []Locality{P, H, P}, []int{0, 2}},
		{"idle and far loses to near and busy within margin", 0, []int64{0, 0, 2}, []Locality{H, H, P}, []int{2}},
	}
	for _, tt := range tests {
		for _, fast := range []bool{false, true} {
			name := tt.name
			if fast {
				name += "/PickFast"
			}
			t.Run(name, func(t *testing.T) {
				in := set(tt.loads, tt.locs)
				var c []int
				if fast {
					c = fastCounts(t, LeastConnections{Margin: tt.margin}, in, 3000)
				} else {
					c = counts(LeastConnections{Margin: tt.margin}, in, 3000)
				}
				for i, n := range c {
					allowed := false
					for _, w := range tt.want {
						allowed = allowed || w == i
					}
					if allowed && n == 0 {
						t.Errorf("instance %d never chosen: %v", i, c)
					}
					if !allowed && n != 0 {
						t.Errorf("instance %d chosen %d times, want only %v: %v", i, n, tt.want, c)
					}
				}
				if len(tt.want) > 1 {
					for _, w := range tt.want {
						if c[w] < 3000/len(tt.want)*8/10 {
							t.Errorf("ties not shared evenly: %v", c)
						}
					}
				}
			})
		}
	}
}

// fastCounts is counts through PickFast, which must take every call (all
// instances are in) and draw its seed at most once per call.
func fastCounts(t *testing.T, s Strategy, in []Instance, n int) []int {
	t.Helper()
	c := make([]int, len(in))
	r := rng(42)
	for range n {
		draws := 0
		i, ok := PickFast(s, in, func() uint64 { draws++; return r.next() })
		if !ok {
			t.Fatalf("PickFast refused a call with every instance in")
		}
		if draws > 1 {
			t.Fatalf("PickFast drew %d seeds for one call", draws)
		}
		c[i]++
	}
	return c
}

// TestPickFastDeclines: PickFast leaves to Pick every strategy but
// LeastConnections and a choice that health keeps out, and draws no random
// bits when there is no tie to break.
func TestPickFastDeclines(t *testing.T) {
	never := func() uint64 { t.Fatal("drew random bits without a tie"); return 0 }
	in := set([]int64{2, 0, 1}, nil)
	if i, ok := PickFast(LeastConnections{}, in, never); !ok || i != 1 {
		t.Fatalf("PickFast = %d, %v; want 1, true", i, ok)
	}
	if _, ok := PickFast(LeastConnections{}, in[:1], never); !ok {
		t.Fatal("PickFast refused one instance that is in")
	}
	for _, s := range []Strategy{RoundRobin{}, Random{}, &ConsistentHash{}, Latency{}, &WeightedRoundRobin{}} {
		if _, ok := PickFast(s, in, never); ok {
			t.Errorf("PickFast took a call for %T", s)
		}
	}
	now := time.Unix(1000, 0)
	for range DefaultFailures {
		in[1].Stats.Health.Failure(now, HealthPolicy{})
	}
	if _, ok := PickFast(LeastConnections{}, in, never); ok {
		t.Fatal("PickFast took a call for an instance that is out")
	}
	// One out that is not the choice: PickFast leaves that to Pick too.
	idle := set([]int64{0, 0, 0}, nil)
	for range DefaultFailures {
		idle[2].Stats.Health.Failure(now, HealthPolicy{})
	}
	if _, ok := PickFast(LeastConnections{}, idle, nil); ok {
		t.Fatal("PickFast took a call with an idle instance out")
	}
	// Pick itself then chooses another: the one with load 1.
	if i, _ := Pick(LeastConnections{}, in, Call{}, func() time.Time { return now }, HealthPolicy{}); i != 2 {
		t.Fatalf("Pick chose %d with instance 1 out, want 2", i)
	}
}

// TestLeastConnectionsManyTies: ties among more instances than one random
// word's draws cover (the choice draws again past a product of 2^32) are
// still shared evenly, through Pick and through PickFast, which draws its
// seed once.
func TestLeastConnectionsManyTies(t *testing.T) {
	for _, n := range []int{2, 3, 13, 16, 40} {
		in := set(make([]int64, n), nil)
		s := LeastConnections{P2C: 64}
		calls := 2000 * n
		for _, c := range [][]int{counts(s, in, calls), fastCounts(t, s, in, calls)} {
			for i, k := range c {
				if k < 2000*8/10 || k > 2000*12/10 {
					t.Errorf("%d tied: instance %d chosen %d times of %d, want about 2000", n, i, k, calls)
				}
			}
		}
	}
}

// TestPickFastSpreadsTiesEvenly: idle instances tie, and so do instances
// equally loaded; either way PickFast with the runtime's random bits (a nil
// seed, as the bus calls it) gives each its share. The bound, a tenth of a
// share, is over 14 standard deviations: it does not fail by chance.
func TestPickFastSpreadsTiesEvenly(t *testing.T) {
	for _, n := range []int{2, 3, 7, 16} {
		for _, load := range []int64{0, 3} {
			loads := make([]int64, n)
			for i := range loads {
				loads[i] = load
			}
			in := set(loads, nil)
			const share = 20000
			c := make([]int, n)
			for range share * n {
				i, ok := PickFast(LeastConnections{}, in, nil)
				if !ok {
					t.Fatal("PickFast refused a call with every instance in")
				}
				c[i]++
			}
			for i, k := range c {
				if k < share*9/10 || k > share*11/10 {
					t.Errorf("%d instances with load %d: instance %d chosen %d times, want about %d: %v", n, load, i, k, share, c)
				}
			}
		}
	}
}

// TestLeastConnectionsP2C: with many instances it compares two (through
// Pick and through PickFast alike), so a
// loaded instance is never chosen over an idle one it was compared with,
// and the busiest is never chosen at all.
func TestLeastConnectionsP2C(t *testing.T) {
	loads := make([]int64, 100)
	for i := range loads {
		loads[i] = int64(i)
	}
	in := set(loads, nil)
	// A P2C above MaxP2C counts as MaxP2C: 100 instances are sampled, not
	// scanned (a scan would choose the idlest every time).
	over := LeastConnections{P2C: 1000}
	for _, c := range [][]int{counts(LeastConnections{}, in, 100000), fastCounts(t, LeastConnections{}, in, 100000),
		counts(over, in, 100000), fastCounts(t, over, in, 100000)} {
		if c[99] != 0 {
			t.Errorf("busiest instance chosen %d times", c[99])
		}
		if c[0] <= c[50] || c[50] <= c[98] {
			t.Errorf("shares not in order of load: %d %d %d", c[0], c[50], c[98])
		}
		// Sampling two of 100, the idlest is chosen about 2/100 of the time.
		if c[0] < 1500 || c[0] > 2500 {
			t.Errorf("idlest chosen %d times of 100000, want about 2000", c[0])
		}
	}
}

func TestRoundRobin(t *testing.T) {
	in := set(make([]int64, 3), nil)
	for k, want := range []int{0, 1, 2, 0, 1, 2} {
		if got := (RoundRobin{}).Pick(in, Call{Seq: uint64(k)}); got != want {
			t.Fatalf("call %d: got %d, want %d", k, got, want)
		}
	}
}

func TestRandom(t *testing.T) {
	in := set(make([]int64, 4), nil)
	for i, n := range counts(Random{}, in, 40000) {
		if n < 9000 || n > 11000 {
			t.Errorf("instance %d: %d of 40000 calls, want about 10000", i, n)
		}
	}
}

func TestWeightedRoundRobin(t *testing.T) {
	in := set(make([]int64, 3), nil)
	in[0].Weight, in[1].Weight, in[2].Weight = 5, 1, 0 // 0 counts as 1
	seq := make([]int, 7)
	c := make([]int, 3)
	w := &WeightedRoundRobin{}
	for k := range seq {
		seq[k] = w.Pick(in, Call{Seq: uint64(k)})
		if k < 7 {
			c[seq[k]]++
		}
	}
	if c[0] != 5 || c[1] != 1 || c[2] != 1 {
		t.Fatalf("one cycle of 7 calls: %v (sequence %v), want shares 5 1 1", c, seq)
	}
	// Spread out: the heavy instance never takes all of one cycle's first
	// five calls.
	run := 0
	for _, i := range seq[:5] {
		if i == 0 {
			run++
		}
	}
	if run == 5 {
		t.Errorf("sequence %v is one run, not interleaved", seq)
	}
}

func TestConsistentHash(t *testing.T) {
	const n, keys = 10, 20000
	in := set(make([]int64, n), nil)
	s := &ConsistentHash{}
	before := make(map[string]uint64, keys)
	share := make([]int, n)
	for k := range keys {
		key := fmt.Sprint("key-", k)
		i := s.Pick(in, Call{Key: key})
		if j := s.Pick(in, Call{Key: key, Rand: 7}); j != i {
			t.Fatalf("key %q went to %d then %d", key, i, j)
		}
		before[key] = in[i].ID
		share[i]++
	}
	for i, c := range share {
		if c < keys/n*6/10 || c > keys/n*14/10 {
			t.Errorf("instance %d has %d of %d keys, want about %d", i, c, keys, keys/n)
		}
	}

	// One instance leaves: only its keys move.
	gone := in[3].ID
	less := append(append([]Instance{}, in[:3]...), in[4:]...)
	moved := 0
	for key, id := range before {
		now := less[s.Pick(less, Call{Key: key})].ID
		if id != gone && now != id {
			t.Fatalf("key %q moved from a staying instance", key)
		}
		if now != id {
			moved++
		}
	}
	if moved > keys/n*14/10 {
		t.Errorf("%d of %d keys moved when 1 of %d left, want about %d", moved, keys, n, keys/n)
	}

	// One joins: only about 1/(n+1) of the keys move, all to it.
	more := append(append([]Instance{}, in...), Instance{ID: 999, Stats: &Stats{}})
	moved = 0
	for key, id := range before {
		now := more[s.Pick(more, Call{Key: key})].ID
		if now != id {
			if now != 999 {
				t.Fatalf("key %q moved to an old instance", key)
			}
			moved++
		}
	}
	if moved > keys/(n+1)*14/10 || moved == 0 {
		t.Errorf("%d of %d keys moved when 1 joined %d, want about %d", moved, keys, n, keys/(n+1))
	}

	// A refused choice moves the key to another instance, the same one
	// every time.
	i := s.Pick(in, Call{Key: "k"})
	j := s.Pick(in, Call{Key: "k", Attempt: 1})
	if i == j || j != s.Pick(in, Call{Key: "k", Attempt: 1, Rand: 9}) {
		t.Errorf("attempt 1 of a key: %d then %d (attempt 0: %d)", j, s.Pick(in, Call{Key: "k", Attempt: 1}), i)
	}
}

func TestConsistentHashAgreesAcrossNodes(t *testing.T) {
	a, b := set(make([]int64, 5), nil), set(make([]int64, 5), nil)
	b[0], b[4] = b[4], b[0] // another node may list them in another order
	sa, sb := &ConsistentHash{}, &ConsistentHash{}
	for k := range 1000 {
		key := fmt.Sprint(k)
		if a[sa.Pick(a, Call{Key: key})].ID != b[sb.Pick(b, Call{Key: key})].ID {
			t.Fatalf("key %q placed differently by two nodes", key)
		}
	}
}

func TestLatency(t *testing.T) {
	in := set(make([]int64, 3), nil)
	in[0].Stats.Observe(10 * time.Millisecond)
	in[1].Stats.Observe(time.Millisecond)
	in[2].Stats.Observe(time.Millisecond)
	in[2].Stats.Add(20) // fast but busy
	c := counts(Latency{}, in, 30000)
	if !(c[1] > c[0] && c[0] > c[2]) {
		t.Errorf("shares %v: want the fast idle one first, the busy one last", c)
	}
	// An instance not yet measured is tried.
	in = append(in, Instance{ID: 77, Stats: &Stats{}})
	if c := counts(Latency{}, in, 3000); c[3] == 0 {
		t.Errorf("new instance never tried: %v", c)
	}
}

// An instance whose average one slow round trip made stale still gets a
// call now and then, so that it is measured again, but only a few.
func TestLatencyRemeasuresAStaleAverage(t *testing.T) {
	in := set(make([]int64, 2), nil)
	in[0].Stats.Observe(50 * time.Millisecond) // one bad round trip
	in[1].Stats.Observe(2 * time.Millisecond)
	const n = 32000
	c := counts(Latency{}, in, n)
	if c[0] == 0 || c[0] > n/16 {
		t.Fatalf("shares %v: want the stale one tried now and then (about 1 in %d)", c, exploreOneIn)
	}
}

func TestObserve(t *testing.T) {
	var s Stats
	s.Observe(800 * time.Microsecond)
	if s.RTT() != 800*time.Microsecond {
		t.Fatalf("first observation: %v", s.RTT())
	}
	for range 100 {
		s.Observe(100 * time.Microsecond)
	}
	if d := s.RTT(); d < 100*time.Microsecond || d > 110*time.Microsecond {
		t.Fatalf("after 100 fast round trips the average is %v", d)
	}
}
