package bus

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/mailbox"
)

// workers runs mailbox turns on goroutines it keeps. An idle actor still owns
// no goroutine, but the mailbox that wakes it hands its turn to a parked
// worker instead of starting a goroutine: on a round trip such as Ask, a new
// goroutine's small stack had to grow inside Receive and Reply every time,
// much of an in-process Ask's CPU.
//
// At most max workers wait idle; the rest exit when their turn ends. Idle
// workers exit after one to two workerIdle periods in which no parked worker
// was handed a turn: a janitor goroutine, alive only while workers are idle,
// looks once per period. A timer per worker would sit on every hand-off
// (a select on a timer channel adds and removes it from the runtime's heap
// each time). After stop, workers exit once idle and new turns run on plain
// goroutines.
type workers struct {
	work    chan mailbox.Turns // unbuffered: a send succeeds only into a waiting worker; the zero Turns lets it go
	stop    chan struct{}
	idle    atomic.Int32
	pending atomic.Int32  // turns handed to a worker, new or parked, that has not begun them
	procs   int32         // GOMAXPROCS when the bus was made
	handed  atomic.Uint64 // turns handed to a parked worker
	janitor atomic.Bool   // a janitor goroutine is running
	max     int32
	stopped atomic.Bool
}

func newWorkers() *workers {
	procs := int32(runtime.GOMAXPROCS(0))
	return &workers{work: make(chan mailbox.Turns), stop: make(chan struct{}),
		max: 4 * procs, procs: procs}
}

// Go is the mailboxes' Options.Pool.
//
// When as many turns as there are processors wait for their workers to be
// scheduled, the caller yields once before it hands its turn on: a caller
// that wakes many idle actors at once (a message to each of many) otherwise
// outruns the workers it readies, finds none parked each time and starts a
// goroutine per turn. New actors' Started turns come through the bus's
// starter instead, in batches (starter.go).
func (w *workers) Go(f mailbox.Turns) {
	if w.pending.Load() >= w.procs {
		runtime.Gosched()
	}
	w.pending.Add(1)
	select {
	case w.work <- f:
		w.handed.Add(1)
		return
	default:
	}
	if w.stopped.Load() {
		w.pending.Add(-1)
		go f.Run() // no new worker may linger after close
		return
	}
	go w.loop(f)
}

func (w *workers) loop(f mailbox.Turns) {
	for {
		w.pending.Add(-1)
		f.Run()
		if w.idle.Add(1) > w.max {
			w.idle.Add(-1)
			return
		}
		if !w.janitor.Load() && w.janitor.CompareAndSwap(false, true) {
			go w.sweep()
		}
		if w.stopped.Load() { // after idle went up: close waits for us in idle
			w.idle.Add(-1)
			return
		}
		// One channel, not a select with the janitor's and close's: a
		// parked worker is woken on every hand-off, and a select locks,
		// queues on and dequeues from each of its channels each time.
		f = <-w.work
		w.idle.Add(-1)
		if f == (mailbox.Turns{}) {
			return
		}
	}
}

// sweep is the janitor: every workerIdle it retires the idle workers if no
// parked worker was handed a turn in that period, and it exits when none is
// idle.
func (w *workers) sweep() {
	t := time.NewTicker(workerIdle)
	defer t.Stop()
	last := w.handed.Load()
	for {
		select {
		case <-t.C:
		case <-w.stop:
			w.janitor.Store(false)
			return
		}
		if n := w.handed.Load(); n != last {
			last = n
			continue
		}
		for retired := false; !retired; {
			select {
			case w.work <- mailbox.Turns{}:
			default:
				retired = true
			}
		}
		w.janitor.Store(false)
		if w.idle.Load() == 0 || !w.janitor.CompareAndSwap(false, true) {
			return // none idle, or a worker that went idle meanwhile started another janitor
		}
	}
}

// workerIdle is how long a worker waits for a turn before it exits, so that
// a bus with no traffic (even one never closed, like Default) ends up owning
// no goroutine.
const workerIdle = time.Second

// close lets every worker exit once its turn ends. It does not wait for
// turns under way: a worker may be inside the Receive of an actor that its
// parent abandoned for not stopping in time, and Close must not hang on
// it. It waits only for the idle ones to take their zero Turns: each either sees
// stopped before it parks or parks at once.
func (w *workers) close() {
	if !w.stopped.CompareAndSwap(false, true) {
		return
	}
	close(w.stop)
	for w.idle.Load() > 0 {
		select {
		case w.work <- mailbox.Turns{}:
		default:
			runtime.Gosched()
		}
	}
}
