// Command xbus measures xbus through the same harness as the other
// runtimes' programs: go run ./xbus (in bench/actors). `xbus bench inproc`
// prints the same rows with xbus's targets.
package main

import (
	"context"
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bench/actors/internal/actorbench"
	"github.com/xbus-dev/xbus/bus"
)

func main() { actorbench.Main("xbus", start) }

type xbus struct{ b *bus.Bus }

func start() (actorbench.Runtime, error) {
	b, err := bus.New(bus.WithName("actors-bench"), bus.WithLogger(slog.New(slog.DiscardHandler)))
	return &xbus{b}, err
}

func (x *xbus) Counter(want int, done chan struct{}) (func() error, error) {
	n := 0
	ref, err := x.b.Spawn(bus.ActorFunc(func(_ *bus.Context, m any) error {
		if m == actorbench.Msg {
			if n++; n == want {
				close(done)
			}
		}
		return nil
	}))
	return func() error { return x.b.Tell(ref, actorbench.Msg) }, err
}

func (x *xbus) Echo() (func() error, error) {
	ref, err := x.b.Spawn(bus.ActorFunc(func(c *bus.Context, m any) error {
		if c.IsAsk() {
			return c.Reply(m)
		}
		return nil
	}))
	ctx := context.Background()
	return func() error {
		r, err := x.b.Ask(ctx, ref, actorbench.Msg)
		if err == nil && r != actorbench.Msg {
			err = errors.New("xbus: echo answered something else")
		}
		return err
	}, err
}

func (x *xbus) Idle(n int) error {
	var started atomic.Int64
	all := make(chan struct{})
	idle := bus.ActorFunc(func(_ *bus.Context, m any) error {
		if _, ok := m.(bus.Started); ok && started.Add(1) == int64(n) {
			close(all)
		}
		return nil
	})
	for range n {
		if _, err := x.b.Spawn(idle); err != nil {
			return err
		}
	}
	<-all
	return nil
}

func (x *xbus) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return x.b.Close(ctx)
}
