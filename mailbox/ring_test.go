package mailbox

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/xbus-dev/xbus/internal/race"
)

// queue is what the concurrent checker drives: the ring, or the model.
type queue interface {
	push(v uint64) bool
	pop() (uint64, bool)
	len() int
}

// model is the reference: a bounded FIFO behind a mutex.
type model struct {
	mu  sync.Mutex
	cap int
	q   []uint64
}

func (m *model) push(v uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.q) == m.cap {
		return false
	}
	m.q = append(m.q, v)
	return true
}

func (m *model) pop() (uint64, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if len(m.q) == 0 {
		return 0, false
	}
	v := m.q[0]
	m.q = m.q[1:]
	return v, true
}

func (m *model) len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.q)
}

// pushN pushes a prefix of vs, as many as fit.
func (m *model) pushN(vs []uint64) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := min(len(vs), m.cap-len(m.q))
	m.q = append(m.q, vs[:n]...)
	return n
}

// batcher is a queue that also takes runs of values (the ring's pushN).
type batcher interface {
	queue
	pushN(vs []uint64) int
}

// lossy is a deliberately wrong queue: it accepts every 100th value and
// forgets it, to show the checker catches a lost message.
type lossy struct{ model }

func (l *lossy) push(v uint64) bool {
	if v%100 == 0 {
		return true
	}
	return l.model.push(v)
}

func TestRingTable(t *testing.T) {
	type op struct {
		push bool   // push (else pop)
		v    uint64 // value pushed, or value expected from pop
		ok   bool   // expected result
		len  int    // expected len afterwards
	}
	push := func(v uint64, ok bool, n int) op { return op{push: true, v: v, ok: ok, len: n} }
	pop := func(v uint64, ok bool, n int) op { return op{v: v, ok: ok, len: n} }
	tests := []struct {
		name string
		cap  int
		ops  []op
	}{
		{"empty", 4, []op{pop(0, false, 0), pop(0, false, 0)}},
		{"one", 4, []op{push(7, true, 1), pop(7, true, 0), pop(0, false, 0)}},
		{"full", 2, []op{push(1, true, 1), push(2, true, 2), push(3, false, 2), pop(1, true, 1), push(3, true, 2), push(4, false, 2), pop(2, true, 1), pop(3, true, 0), pop(0, false, 0)}},
		{"fifo", 4, []op{push(1, true, 1), push(2, true, 2), push(3, true, 3), push(4, true, 4), pop(1, true, 3), pop(2, true, 2), pop(3, true, 1), pop(4, true, 0)}},
		{"wrap", 2, []op{
			push(1, true, 1), pop(1, true, 0), push(2, true, 1), pop(2, true, 0), // lap 1
			push(3, true, 1), push(4, true, 2), push(5, false, 2), pop(3, true, 1), // lap 2, full
			push(5, true, 2), pop(4, true, 1), pop(5, true, 0), pop(0, false, 0),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRing[uint64](tt.cap)
			for i, o := range tt.ops {
				if o.push {
					if got := r.push(o.v); got != o.ok {
						t.Fatalf("op %d: push(%d) = %v, want %v", i, o.v, got, o.ok)
					}
				} else {
					v, ok := r.pop()
					if ok != o.ok || v != o.v {
						t.Fatalf("op %d: pop() = %d, %v, want %d, %v", i, v, ok, o.v, o.ok)
					}
				}
				if got := r.len(); got != o.len {
					t.Fatalf("op %d: len() = %d, want %d", i, got, o.len)
				}
			}
		})
	}
}

// TestRingMatchesModelSequential runs the ring through many laps, one
// operation at a time, against the model: every result must match.
func TestRingMatchesModelSequential(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 0))
	for _, capacity := range []int{2, 4, 64} {
		r := newRing[uint64](capacity)
		m := &model{cap: capacity}
		next := uint64(1)
		for i := 0; i < 100_000; i++ {
			switch rng.IntN(3) {
			case 0:
				if got, want := r.push(next), m.push(next); got != want {
					t.Fatalf("cap %d op %d: push = %v, model %v", capacity, i, got, want)
				}
				next++
			case 1:
				vs := make([]uint64, 1+rng.IntN(capacity+1))
				for j := range vs {
					vs[j] = next + uint64(j)
				}
				got, want := r.pushN(vs), m.pushN(vs)
				if got != want {
					t.Fatalf("cap %d op %d: pushN of %d = %d, model %d", capacity, i, len(vs), got, want)
				}
				next += uint64(len(vs))
			default:
				v, ok := r.pop()
				mv, mok := m.pop()
				if v != mv || ok != mok {
					t.Fatalf("cap %d op %d: pop = %d, %v, model %d, %v", capacity, i, v, ok, mv, mok)
				}
			}
			if r.len() != m.len() {
				t.Fatalf("cap %d op %d: len = %d, model %d", capacity, i, r.len(), m.len())
			}
		}
	}
}

// ringQueue adapts ring[uint64] to queue.
type ringQueue struct{ *ring[uint64] }

// checkConcurrent runs producers, one consumer and droppers on q with random
// pacing, then checks that every value pushed was popped exactly once and
// that each popper saw each producer's values in the order pushed.
// A value is producer<<32 | sequence (sequences start at 1).
func checkConcurrent(q queue, producers, droppers, perProducer int, seed uint64) error {
	var wg sync.WaitGroup
	var live atomic.Int32
	live.Store(int32(producers))
	for p := range producers {
		wg.Go(func() {
			defer live.Add(-1)
			rng := rand.New(rand.NewPCG(seed, uint64(p)))
			bq, batched := q.(batcher)
			var run []uint64
			for s := 1; s <= perProducer; {
				if batched && rng.IntN(2) == 0 {
					// A run of up to 8, the rest of it again until it is in.
					run = run[:0]
					for k := rng.IntN(8); k >= 0 && s <= perProducer; k-- {
						run = append(run, uint64(p)<<32|uint64(s))
						s++
					}
					for len(run) > 0 {
						n := bq.pushN(run)
						if run = run[n:]; n == 0 {
							runtime.Gosched()
						}
					}
				} else {
					v := uint64(p)<<32 | uint64(s)
					for !q.push(v) {
						runtime.Gosched()
					}
					s++
				}
				if rng.IntN(16) == 0 {
					runtime.Gosched()
				}
			}
		})
	}
	seen := make([][]uint64, 1+droppers) // per popper, in pop order
	popper := func(i int, rng *rand.Rand) {
		for {
			done := live.Load() == 0 // read before popping: a final empty pop means drained
			v, ok := q.pop()
			if ok {
				seen[i] = append(seen[i], v)
				if i > 0 && rng.IntN(4) == 0 {
					runtime.Gosched() // droppers pop less eagerly than the consumer
				}
				continue
			}
			if done {
				return
			}
			runtime.Gosched()
		}
	}
	for i := range 1 + droppers {
		wg.Go(func() { popper(i, rand.New(rand.NewPCG(seed, uint64(1000+i)))) })
	}
	wg.Wait()

	count := make(map[uint64]int, producers*perProducer)
	for i, vs := range seen {
		last := make([]uint64, producers)
		for _, v := range vs {
			p, s := v>>32, v&(1<<32-1)
			if p >= uint64(producers) || s == 0 || s > uint64(perProducer) {
				return fmt.Errorf("popper %d: value %#x was never pushed", i, v)
			}
			if s <= last[p] {
				return fmt.Errorf("popper %d: producer %d's value %d after %d", i, p, s, last[p])
			}
			last[p] = s
			count[v]++
		}
	}
	for p := range producers {
		for s := 1; s <= perProducer; s++ {
			v := uint64(p)<<32 | uint64(s)
			if n := count[v]; n != 1 {
				return fmt.Errorf("producer %d value %d popped %d times", p, s, n)
			}
		}
	}
	if n := q.len(); n != 0 {
		return fmt.Errorf("len %d after draining", n)
	}
	return nil
}

func TestRingConcurrentMatchesModel(t *testing.T) {
	per := 20_000
	if testing.Short() || race.Enabled {
		per = 5_000
	}
	for _, tc := range []struct{ cap, producers, droppers int }{
		{2, 4, 0},
		{2, 4, 2},
		{8, 8, 1},
		{64, 3, 2},
		{1024, 4, 1},
	} {
		t.Run(fmt.Sprintf("cap%d_prod%d_drop%d", tc.cap, tc.producers, tc.droppers), func(t *testing.T) {
			seed := rand.Uint64()
			if err := checkConcurrent(&model{cap: tc.cap}, tc.producers, tc.droppers, per, seed); err != nil {
				t.Fatalf("model (seed %d): %v", seed, err)
			}
			if err := checkConcurrent(ringQueue{newRing[uint64](tc.cap)}, tc.producers, tc.droppers, per, seed); err != nil {
				t.Fatalf("ring (seed %d): %v", seed, err)
			}
		})
	}
}

// TestCheckerCatchesLoss proves the concurrent checker can fail.
func TestCheckerCatchesLoss(t *testing.T) {
	if err := checkConcurrent(&lossy{model{cap: 64}}, 2, 1, 1000, 1); err == nil {
		t.Fatal("checker accepted a queue that loses values")
	}
}
