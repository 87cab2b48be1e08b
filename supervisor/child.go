package supervisor

import (
	"fmt"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// ChildState is where a child is in its life.
type ChildState uint8

const (
	// Running: the child's current instance is handling its messages.
	Running ChildState = iota
	// Restarting: the child failed and waits out its backoff; its mailbox
	// is suspended and keeps its messages.
	Restarting
	// Stopped: the child ended and will not be restarted.
	Stopped
)

func (s ChildState) String() string {
	switch s {
	case Running:
		return "running"
	case Restarting:
		return "restarting"
	case Stopped:
		return "stopped"
	}
	return "state(?)"
}

// child is the supervisor's record of one child. Owned by the supervisor's
// goroutine.
type child struct {
	spec        ChildSpec
	ref         bus.Ref // the live process; zero when it has ended
	state       ChildState
	restarts    int
	lastFailure error
	failedAt    time.Time
	startedAt   time.Time // when the current instance started
	restartedAt time.Time // when a restart of it was last ordered
	retry       Retry
	pending     uint64 // the token of the delayed restart it waits for, or 0
}

// drainStop, told to a child after its queued messages, stops it: the
// graceful half of the supervisor's shutdown.
type drainStop struct{}

// worker wraps every child instance so the supervisor can stop it after its
// queued messages.
type worker struct{ inner bus.Actor }

func (w *worker) Receive(c *bus.Context, msg any) error {
	if _, ok := msg.(drainStop); ok {
		if c.IsAsk() {
			_ = c.Reply(struct{}{})
		}
		c.Stop()
		return nil
	}
	return w.inner.Receive(c, msg)
}

// supervising wraps a child that supervises children of its own (a nested
// supervisor), so the bus still sees a bus.Supervisor.
type supervising struct{ worker }

func (s *supervising) ChildFailed(c *bus.Context, f bus.Failure) error {
	return s.inner.(bus.Supervisor).ChildFailed(c, f)
}

func wrap(a bus.Actor) bus.Actor {
	if _, ok := a.(bus.Supervisor); ok {
		return &supervising{worker{a}}
	}
	return &worker{a}
}

// build calls the child's factory, turning a panic or a nil actor into an
// error.
func (ch *child) build() (a bus.Actor, err error) {
	defer func() {
		if v := recover(); v != nil {
			a, err = nil, fmt.Errorf("%w: %q: New panicked: %v", ErrStartFailed, ch.spec.Name, v)
		}
	}()
	a = ch.spec.New()
	if a == nil {
		return nil, fmt.Errorf("%w: %q: New returned nil", ErrStartFailed, ch.spec.Name)
	}
	return wrap(a), nil
}
