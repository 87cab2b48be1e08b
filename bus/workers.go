package bus

import (
	"runtime"
	"sync/atomic"
	"time"
)

// workers runs mailbox turns on goroutines it keeps. An idle actor still owns
// no goroutine, but the mailbox that wakes it hands its turn to a parked
// worker instead of starting a goroutine: on a round trip such as Ask, a new
// goroutine's small stack had to grow inside Receive and Reply every time,
// which was about half of an in-process Ask's CPU.
//
// At most max workers wait idle, each for at most workerIdle; the rest exit
// when their turn ends. After stop, workers exit once idle and new turns run
// on plain goroutines.
type workers struct {
	work    chan func() // unbuffered: a send succeeds only into a waiting worker
	stop    chan struct{}
	idle    atomic.Int32
	max     int32
	stopped atomic.Bool
}

func newWorkers() *workers {
	return &workers{work: make(chan func()), stop: make(chan struct{}), max: int32(4 * runtime.GOMAXPROCS(0))}
}

// run is the mailbox's Options.Go.
func (w *workers) run(f func()) {
	select {
	case w.work <- f:
		return
	default:
	}
	if w.stopped.Load() {
		go f() // no new worker may linger after close
		return
	}
	go w.loop(f)
}

func (w *workers) loop(f func()) {
	var idleFor *time.Timer
	for {
		f()
		if w.idle.Add(1) > w.max {
			w.idle.Add(-1)
			return
		}
		if idleFor == nil {
			idleFor = time.NewTimer(workerIdle)
		} else {
			idleFor.Reset(workerIdle)
		}
		select {
		case f = <-w.work:
			w.idle.Add(-1)
		case <-w.stop:
			w.idle.Add(-1)
			return
		case <-idleFor.C:
			w.idle.Add(-1)
			return
		}
	}
}

// workerIdle is how long a worker waits for a turn before it exits, so that
// a bus with no traffic (even one never closed, like Default) ends up owning
// no goroutine.
const workerIdle = time.Second

// close lets every worker exit once its turn ends. It does not wait: a
// worker may be inside the Receive of an actor that its parent abandoned
// for not stopping in time, and Close must not hang on it.
func (w *workers) close() {
	if w.stopped.CompareAndSwap(false, true) {
		close(w.stop)
	}
}
