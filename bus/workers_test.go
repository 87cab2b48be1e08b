package bus

import (
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/mailbox"
)

// runOn hands w a turn that calls f: the turn of a mailbox of its own whose
// one system message is f, as a spawn hands over an actor's Started.
func runOn(w *workers, f func()) {
	m, err := mailbox.New[func()](funcInvoker{}, mailbox.Options{Pool: w})
	if err != nil {
		panic(err)
	}
	_ = m.SendSystem(f)
}

type funcInvoker struct{}

func (funcInvoker) InvokeSystem(f func()) { f() }
func (funcInvoker) Invoke(f func())       { f() }
func (funcInvoker) Dropped(func(), error) {}

// TestWorkersRetireWhenIdle runs turns on a worker pool that is never
// stopped and checks that its workers and janitor all exit once no turn
// comes, and that the pool works again afterwards.
func TestWorkersRetireWhenIdle(t *testing.T) {
	w := newWorkers()
	for round := range 2 {
		var wg sync.WaitGroup
		for range 3 * int(w.max) {
			wg.Add(1)
			runOn(w, func() { time.Sleep(time.Millisecond); wg.Done() })
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

// TestWorkersExitOnClose checks that close lets every worker go: those
// parked at the time at once, those inside a turn when it ends, and that a
// turn handed over after close still runs.
func TestWorkersExitOnClose(t *testing.T) {
	base := runtime.NumGoroutine()
	w := newWorkers()
	var wg sync.WaitGroup
	for range int(w.max) { // some go idle...
		wg.Add(1)
		runOn(w, wg.Done)
	}
	wg.Wait()
	release := make(chan struct{})
	var busy sync.WaitGroup
	for range 3 { // ...and some are inside a turn when close comes
		busy.Add(1)
		runOn(w, func() { busy.Done(); <-release })
	}
	busy.Wait()
	w.close()
	if n := w.idle.Load(); n != 0 {
		t.Fatalf("%d workers still idle after close", n)
	}
	close(release)
	ran := make(chan struct{})
	runOn(w, func() { close(ran) })
	<-ran
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines left after close, %d before the pool", runtime.NumGoroutine(), base)
		}
		time.Sleep(time.Millisecond)
	}
	if n := w.idle.Load(); n != 0 {
		t.Fatalf("%d workers idle after close and the last turns", n)
	}
}

// TestWorkersBurst hands a pool many turns at once, as spawning many actors
// does: each runs, the count of turns not yet begun returns to zero, and
// turns that block do not keep a later turn from running, however many
// wait to be scheduled when it is handed over.
func TestWorkersBurst(t *testing.T) {
	w := newWorkers()
	defer w.close()
	var wg sync.WaitGroup
	for range 10_000 {
		wg.Add(1)
		runOn(w, wg.Done)
	}
	wg.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for w.pending.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d turns counted as not begun after all ran", w.pending.Load())
		}
		time.Sleep(time.Millisecond)
	}
	release := make(chan struct{})
	var blocked sync.WaitGroup
	for range 4 * int(w.procs) {
		blocked.Add(1)
		runOn(w, func() { blocked.Done(); <-release })
	}
	ran := make(chan struct{})
	runOn(w, func() { close(ran) })
	select {
	case <-ran:
	case <-time.After(10 * time.Second):
		t.Fatal("a turn handed over while others block did not run")
	}
	blocked.Wait()
	close(release)
}
