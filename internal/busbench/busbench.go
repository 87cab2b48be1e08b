package busbench

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/mailbox"
)

// Msg is the message every measurement sends: a pointer to 64 bytes, boxed
// once, so that a Tell of it allocates nothing.
var Msg any = &struct{ _ [64]byte }{}

// MailboxCap is the actors' mailbox capacity (the bus's default) and the
// buffer of the baselines' channels.
const MailboxCap = mailbox.DefaultCapacity

// Echo answers an ask with its message and ignores anything else.
func Echo(c *bus.Context, m any) error {
	if c.IsAsk() {
		return c.Reply(m)
	}
	return nil
}

func newBus() (*bus.Bus, error) { return bus.New(bus.WithName("xbus-bench")) }

func closeBus(b *bus.Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_ = b.Close(ctx)
}

// Tell sends total copies of Msg split over senders goroutines, sender i to
// actor i%actors, and returns the time until every actor has handled its
// share, or an error if that takes over a minute.
func Tell(total, senders, actors int) (time.Duration, error) {
	b, err := newBus()
	if err != nil {
		return 0, err
	}
	defer closeBus(b)
	per, want := benchkit.Shares(total, senders, actors)
	targets := make([]any, actors) // Refs boxed once: a Ref boxed per Tell would allocate
	dones := make([]chan struct{}, actors)
	for i := range actors {
		done, n, w := make(chan struct{}), 0, want[i]
		dones[i] = done
		counter := bus.ActorFunc(func(_ *bus.Context, m any) error {
			if m == Msg { // lifecycle messages are not counted
				if n++; n == w {
					close(done)
				}
			}
			return nil
		})
		ref, err := b.Spawn(counter)
		if err != nil {
			return 0, err
		}
		targets[i] = ref
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := benchkit.Fanout(ctx, senders, per, func(i, n int) error {
		to := targets[i%actors]
		for range n {
			if err := b.Tell(to, Msg); err != nil {
				return err
			}
		}
		return nil
	}, dones)
	if errors.Is(err, context.DeadlineExceeded) {
		return 0, fmt.Errorf("tell: actors did not receive every message within a minute")
	}
	return d, err
}

// AskLatencies times n round trips of Ask to an Echo actor registered with
// opts, one at a time.
func AskLatencies(n int, opts ...bus.ActorOption) ([]time.Duration, error) {
	b, err := newBus()
	if err != nil {
		return nil, err
	}
	defer closeBus(b)
	ref, err := b.Register("echo", bus.ActorFunc(Echo), opts...)
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	return benchkit.Latencies(n, func() error {
		_, err := b.Ask(ctx, ref, Msg)
		return err
	})
}

// SpawnIdle spawns n actors that do nothing, waits until each has handled
// Started, and returns the time taken, the process's CPU time over it
// (every thread's: the spawner's, the workers' and the collector's) and the
// live bytes per actor, then closes the bus (idle actors are stopped
// through their system lane, so no ring is allocated).
func SpawnIdle(n int) (d, cpu time.Duration, per float64, err error) {
	b, err := newBus()
	if err != nil {
		return 0, 0, 0, err
	}
	var started atomic.Int64 // the actors handle Started concurrently
	all := make(chan struct{})
	idle := bus.ActorFunc(func(_ *bus.Context, m any) error {
		if _, ok := m.(bus.Started); ok && started.Add(1) == int64(n) {
			close(all)
		}
		return nil
	})
	d, per, err = benchkit.Footprint(n, func() error {
		c0 := benchkit.CPUTime()
		defer func() { cpu = benchkit.CPUTime() - c0 }()
		for range n {
			if _, err := b.Spawn(idle); err != nil {
				return err
			}
		}
		<-all
		return nil
	})
	if cerr := b.Close(context.Background()); err == nil {
		err = cerr
	}
	return d, cpu, per, err
}

// TellSpread sends total copies of Msg from one goroutine to instances
// actors registered under one name: by the name when byName (placed on
// every Tell), else to their Refs in turn. It returns the time until every
// message has been handled, or an error if that takes over a minute.
func TellSpread(total, instances int, byName bool) (time.Duration, error) {
	b, err := newBus()
	if err != nil {
		return 0, err
	}
	defer closeBus(b)
	var got atomic.Int64
	done := make(chan struct{})
	counter := bus.ActorFunc(func(_ *bus.Context, m any) error {
		if m == Msg && got.Add(1) == int64(total) {
			close(done)
		}
		return nil
	})
	refs := make([]any, instances)
	for i := range refs {
		if refs[i], err = b.Register("spread", counter); err != nil {
			return 0, err
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	d, err := benchkit.Fanout(ctx, 1, total, func(_, n int) error {
		for i := range n {
			var to any = "spread"
			if !byName {
				to = refs[i%instances]
			}
			if err := b.Tell(to, Msg); err != nil {
				return err
			}
		}
		return nil
	}, []chan struct{}{done})
	if errors.Is(err, context.DeadlineExceeded) {
		return 0, fmt.Errorf("tell: actors did not receive every message within a minute")
	}
	return d, err
}
