// Command daemon is a small supervised service: a feeder queues jobs, a
// worker that crashes now and then handles them, and a tally counts the
// results. It runs until SIGINT or SIGTERM, then drains: every job queued
// before the signal is handled (or, for the ones that crashed the worker,
// dead-lettered) before it exits 0.
//
//	go run ./examples/daemon -jobs 500 -crash-every 97
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/supervisor"
)

// Job is one unit of work; Done reports it handled.
type (
	Job  struct{ N int }
	Done struct{ N int }
)

// worker handles jobs, slowly, and panics on every crashEvery-th.
type worker struct {
	crashEvery int
	work       time.Duration
}

func (w *worker) Receive(c *bus.Context, msg any) error {
	if j, ok := msg.(Job); ok {
		time.Sleep(w.work)
		if j.N%w.crashEvery == 0 {
			panic(fmt.Sprintf("job %d is cursed", j.N))
		}
		return c.Tell("tally", Done(j))
	}
	return nil
}

// tally counts handled jobs and checks they come in order.
type tally struct {
	handled  *atomic.Int64
	last     int
	disorder *atomic.Int64
}

func (t *tally) Receive(c *bus.Context, msg any) error {
	if d, ok := msg.(Done); ok {
		if d.N <= t.last {
			t.disorder.Add(1)
		}
		t.last = d.N
		t.handled.Add(1)
	}
	return nil
}

// feeder queues the jobs when it starts, says so, and stops: a transient
// child that ended normally is not restarted.
type feeder struct{ jobs int }

func (f *feeder) Receive(c *bus.Context, msg any) error {
	if _, ok := msg.(bus.Started); ok {
		for i := 1; i <= f.jobs; i++ {
			if err := c.Tell("worker", Job{N: i}); err != nil {
				return err
			}
		}
		fmt.Printf("ready: queued %d jobs\n", f.jobs)
		c.Stop()
	}
	return nil
}

func main() { os.Exit(run()) }

func run() int {
	jobs := flag.Int("jobs", 500, "jobs to queue at start")
	crashEvery := flag.Int("crash-every", 97, "the worker crashes on every n-th job")
	work := flag.Duration("work", 2*time.Millisecond, "time each job takes")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	b, err := bus.New(bus.WithName("daemon"), bus.WithLogger(log))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var handled, disorder atomic.Int64
	err = supervisor.Run(context.Background(), b, supervisor.Spec{
		Name:     "daemon",
		Strategy: supervisor.OneForOne,
		// A crash every few hundred milliseconds is normal here; ten in a
		// second means something is badly wrong: give up and exit non-zero.
		Intensity: supervisor.Intensity{MaxRestarts: 10, Period: time.Second},
		Backoff:   supervisor.Backoff{Initial: time.Millisecond, Max: 100 * time.Millisecond},
		Children: []supervisor.ChildSpec{
			{Name: "tally", New: func() bus.Actor { return &tally{handled: &handled, disorder: &disorder} }},
			{Name: "worker", New: func() bus.Actor { return &worker{crashEvery: *crashEvery, work: *work} }, Shutdown: 30 * time.Second},
			{Name: "feeder", New: func() bus.Actor { return &feeder{jobs: *jobs} }, Restart: supervisor.Transient},
		},
	}, supervisor.WithDrainTimeout(time.Minute))
	fmt.Printf("drained: handled=%d crashed=%d out-of-order=%d of %d\n",
		handled.Load(), b.DeadLetterCount(bus.ErrActorFailed), disorder.Load(), *jobs)
	if err != nil {
		fmt.Fprintln(os.Stderr, "daemon:", err)
		return 1
	}
	return 0
}
