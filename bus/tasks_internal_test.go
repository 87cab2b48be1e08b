package bus

import (
	"sync"
	"sync/atomic"
	"testing"
)

// TestTasksStartNothingAfterWait: goroutines asked for while wait begins
// either run before wait returns or are refused; none starts after it, and
// under -race a Go racing wait is no misuse of the WaitGroup inside.
func TestTasksStartNothingAfterWait(t *testing.T) {
	for range 200 {
		var (
			ts       tasks
			waited   atomic.Bool
			late     atomic.Int64
			ran      atomic.Int64
			accepted atomic.Int64
			askers   sync.WaitGroup
		)
		for range 4 {
			askers.Go(func() {
				for !waited.Load() && ts.Go(func() {
					if waited.Load() {
						late.Add(1)
					}
					ran.Add(1)
				}) {
					accepted.Add(1)
				}
			})
		}
		ts.wait()
		waited.Store(true)
		askers.Wait()
		if n := late.Load(); n != 0 {
			t.Fatalf("%d goroutines ran after wait returned", n)
		}
		if r, a := ran.Load(), accepted.Load(); r != a {
			t.Fatalf("%d goroutines accepted, %d ran", a, r)
		}
		if ts.Go(func() {}) {
			t.Fatal("Go accepted after wait")
		}
	}
}
