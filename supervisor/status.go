package supervisor

import (
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// GetStatus, sent as an Ask to a supervisor, is answered with its Status.
type GetStatus struct{}

// Status is a snapshot of a supervisor and its children.
type Status struct {
	Name     string
	Strategy Strategy
	// State is Running while the supervisor works, Stopped once it has
	// stopped or given up (then Err says why).
	State ChildState
	// Restarts is how many restarts the intensity window holds now.
	Restarts int
	// Err is why the supervisor gave up (an *EscalationError), or nil.
	Err      error
	Children []ChildStatus // in start order
}

// ChildStatus is what a supervisor knows of one child.
type ChildStatus struct {
	Name        string
	Ref         bus.Ref // zero once the child has ended
	Restart     RestartType
	State       ChildState
	Restarts    int       // restarts since the supervisor started it
	LastFailure error     // the reason of its last failure, or nil
	FailedAt    time.Time // when it last failed
	StartedAt   time.Time // when its current instance started
}

// Child returns the status of the first child named name.
func (s Status) Child(name string) (ChildStatus, bool) {
	for _, c := range s.Children {
		if c.Name == name {
			return c, true
		}
	}
	return ChildStatus{}, false
}

// snapshot builds the Status; run on the supervisor's goroutine.
func (s *Supervisor) snapshot(now time.Time) *Status {
	st := &Status{
		Name:     s.spec.Name,
		Strategy: s.spec.Strategy,
		State:    Running,
		Restarts: s.window.Count(now),
		Err:      s.err,
		Children: make([]ChildStatus, len(s.children)),
	}
	if s.err != nil || s.stopping {
		st.State = Stopped
	}
	for i, ch := range s.children {
		st.Children[i] = ChildStatus{
			Name:        ch.spec.Name,
			Ref:         ch.ref,
			Restart:     ch.spec.Restart,
			State:       ch.state,
			Restarts:    ch.restarts,
			LastFailure: ch.lastFailure,
			FailedAt:    ch.failedAt,
			StartedAt:   ch.startedAt,
		}
	}
	return st
}

// publish makes the current state visible to Status.
func (s *Supervisor) publish(now time.Time) { s.status.Store(s.snapshot(now)) }

// Status returns the latest snapshot of the supervisor and its children. It
// is safe to call from any goroutine. The snapshot is taken after the
// supervisor has acted, so it may trail a child that is already back at
// work; Query (an Ask) is ordered with the supervisor's own messages.
func (s *Supervisor) Status() Status {
	if st := s.status.Load(); st != nil {
		return *st
	}
	return Status{Name: s.spec.Name, Strategy: s.spec.Strategy, State: Stopped}
}
