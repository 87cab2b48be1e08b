// Command protoactor measures protoactor-go on the rows of
// `xbus bench inproc`: go run ./protoactor (in bench/actors).
package main

import (
	"errors"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/asynkron/protoactor-go/actor"

	"github.com/xbus-dev/xbus/bench/actors/internal/actorbench"
)

func main() { actorbench.Main("protoactor-go", start) }

// protoactor is an actor system with bounded mailboxes of the same
// capacity as xbus's default (its default mailbox is unbounded).
type protoactor struct {
	sys   *actor.ActorSystem
	props func(actor.ReceiveFunc) *actor.Props
}

func start() (actorbench.Runtime, error) {
	sys := actor.NewActorSystem(actor.WithLoggerFactory(func(*actor.ActorSystem) *slog.Logger {
		return slog.New(slog.DiscardHandler)
	}))
	return &protoactor{sys: sys, props: func(f actor.ReceiveFunc) *actor.Props {
		return actor.PropsFromFunc(f, actor.WithMailbox(actor.Bounded(actorbench.MailboxCap)))
	}}, nil
}

func (p *protoactor) Counter(want int, done chan struct{}) (func() error, error) {
	n := 0
	pid := p.sys.Root.Spawn(p.props(func(c actor.Context) {
		if c.Message() == actorbench.Msg {
			if n++; n == want {
				close(done)
			}
		}
	}))
	root := p.sys.Root
	return func() error { root.Send(pid, actorbench.Msg); return nil }, nil
}

func (p *protoactor) Echo() (func() error, error) {
	pid := p.sys.Root.Spawn(p.props(func(c actor.Context) {
		if c.Message() == actorbench.Msg {
			c.Respond(c.Message())
		}
	}))
	root := p.sys.Root
	return func() error {
		r, err := root.RequestFuture(pid, actorbench.Msg, 10*time.Second).Result()
		if err == nil && r != actorbench.Msg {
			err = errors.New("protoactor: echo answered something else")
		}
		return err
	}, nil
}

func (p *protoactor) Idle(n int) error {
	var started atomic.Int64
	all := make(chan struct{})
	// The default (unbounded) mailbox: a bounded one allocates its ring
	// when the actor is spawned, 1,024 slots for each idle actor.
	props := actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(*actor.Started); ok && started.Add(1) == int64(n) {
			close(all)
		}
	})
	for range n {
		p.sys.Root.Spawn(props)
	}
	<-all
	return nil
}

func (p *protoactor) Close() error {
	p.sys.Shutdown()
	return nil
}
