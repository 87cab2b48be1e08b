package bus

import (
	"sync"
	"testing"
	"time"
)

// TestWorkersRetireWhenIdle runs turns on a worker pool that is never
// stopped and checks that its workers and janitor all exit once no turn
// comes, and that the pool works again afterwards.
func TestWorkersRetireWhenIdle(t *testing.T) {
	w := newWorkers()
	for round := range 2 {
		var wg sync.WaitGroup
		for range 3 * int(w.max) {
			wg.Add(1)
			w.run(func() { time.Sleep(time.Millisecond); wg.Done() })
		}
		wg.Wait()
		if w.idle.Load() == 0 {
			t.Fatalf("round %d: no worker waits for a turn after the burst", round)
		}
		deadline := time.Now().Add(10 * time.Second)
		for w.idle.Load() != 0 || w.janitor.Load() {
			if time.Now().After(deadline) {
				t.Fatalf("round %d: %d workers still idle (janitor running: %v) 10 s after the last turn", round, w.idle.Load(), w.janitor.Load())
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}
