package benchkit

import (
	"runtime"
	"sync"
	"time"
)

// LiveBytes is what the heap and the goroutine stacks hold after a GC.
func LiveBytes() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc + ms.StackInuse
}

// Footprint measures bringing up n of something: it calls up, which must
// return once all n are up and keep them reachable until Footprint returns,
// and returns the time up took and the live bytes it added per each.
func Footprint(n int, up func() error) (time.Duration, float64, error) {
	before := LiveBytes()
	t0 := time.Now()
	if err := up(); err != nil {
		return 0, 0, err
	}
	d := time.Since(t0)
	return d, float64(LiveBytes()-before) / float64(n), nil
}

// GoroutinesIdle is the baseline of Footprint over idle actors: n
// goroutines, each blocked receiving on a channel of its own. It returns the
// time to start them and the live bytes per goroutine, then stops them.
func GoroutinesIdle(n int) (time.Duration, float64) {
	chans := make([]chan struct{}, n)
	var stopped sync.WaitGroup
	d, per, _ := Footprint(n, func() error {
		var started sync.WaitGroup
		started.Add(n)
		for i := range chans {
			ch := make(chan struct{})
			chans[i] = ch
			stopped.Go(func() {
				started.Done()
				<-ch
			})
		}
		started.Wait()
		return nil
	})
	for _, ch := range chans {
		close(ch)
	}
	stopped.Wait()
	return d, per
}

// AllocsPerRun returns the average number of heap allocations per call of
// f over runs calls after one warm-up call, as testing.AllocsPerRun does,
// for programs that do not link package testing. It runs with GOMAXPROCS
// at 1, so that other goroutines' allocations are counted less.
func AllocsPerRun(runs int, f func()) float64 {
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
	f()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	before := m.Mallocs
	for range runs {
		f()
	}
	runtime.ReadMemStats(&m)
	return float64((m.Mallocs - before) / uint64(runs))
}
