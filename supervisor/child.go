package supervisor

import (
	"fmt"
	"log/slog"
	"sync/atomic"
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
	// draining is set while the supervisor waits for the child to drain
	// and cannot hear of its failures: its instances log them themselves.
	draining atomic.Bool
}

// drainStop, told to a child after its queued messages, stops it: the
// graceful half of the supervisor's shutdown.
type drainStop struct{}

// worker wraps every child instance so the supervisor can stop it after its
// queued messages, and know when it has handled Started.
type worker struct {
	inner    bus.Actor
	started  chan struct{} // closed once Started has been handled
	draining *atomic.Bool  // the child's flag
	log      *slog.Logger
}

func (w *worker) Receive(c *bus.Context, msg any) (err error) {
	defer func() {
		if w.draining.Load() {
			if v := recover(); v != nil {
				w.log.Warn("child failed while draining; going on with its next message", "ref", c.Self().String(), "reason", fmt.Sprint("panic: ", v))
				panic(v)
			}
			if err != nil {
				w.log.Warn("child failed while draining; going on with its next message", "ref", c.Self().String(), "reason", err)
			}
		}
	}()
	switch msg.(type) {
	case bus.Started:
		defer w.markStarted()
	case drainStop:
		if c.IsAsk() {
			_ = c.Reply(struct{}{})
		}
		c.Stop()
		return nil
	}
	return w.inner.Receive(c, msg)
}

func (w *worker) markStarted() {
	select {
	case <-w.started:
	default:
		close(w.started)
	}
}

// supervising wraps a child that supervises children of its own (a nested
// supervisor), so the bus still sees a bus.Supervisor.
type supervising struct{ worker }

func (s *supervising) ChildFailed(c *bus.Context, f bus.Failure) error {
	return s.inner.(bus.Supervisor).ChildFailed(c, f)
}

// instance is a wrapped child instance ready to run.
type instance struct {
	actor   bus.Actor
	started <-chan struct{}
}

func wrap(a bus.Actor, ch *child, log *slog.Logger) instance {
	w := worker{inner: a, started: make(chan struct{}), draining: &ch.draining, log: log.With("child", ch.spec.Name)}
	if _, ok := a.(bus.Supervisor); ok {
		return instance{&supervising{w}, w.started}
	}
	return instance{&w, w.started}
}

// build calls the child's factory, turning a panic or a nil actor into an
// error.
func (ch *child) build(log *slog.Logger) (in instance, err error) {
	defer func() {
		if v := recover(); v != nil {
			in, err = instance{}, fmt.Errorf("%w: %q: New panicked: %v", ErrStartFailed, ch.spec.Name, v)
		}
	}()
	a := ch.spec.New()
	if a == nil {
		return instance{}, fmt.Errorf("%w: %q: New returned nil", ErrStartFailed, ch.spec.Name)
	}
	return wrap(a, ch, log), nil
}

// shutdownTimeout is the child's Shutdown, or the bus's default.
func (ch *child) shutdownTimeout() time.Duration {
	if ch.spec.Shutdown > 0 {
		return ch.spec.Shutdown
	}
	return bus.DefaultShutdownTimeout
}
