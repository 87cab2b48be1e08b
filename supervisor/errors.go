package supervisor

import (
	"errors"
	"fmt"

	"github.com/xbus-dev/xbus/bus"
)

var (
	// ErrIntensity is why a supervisor fails when its children need more
	// restarts than its Intensity allows.
	ErrIntensity = errors.New("supervisor: restart intensity exceeded")
	// ErrEscalated is why a supervisor fails when a child's failure was
	// given the Escalate directive.
	ErrEscalated = errors.New("supervisor: failure escalated")
	// ErrStartFailed is why a supervisor fails when a child's factory
	// panics or returns nil, or the bus refuses to start the child.
	ErrStartFailed = errors.New("supervisor: child failed to start")
	// ErrNotPool is the reply to AddChild and RemoveChild sent to a
	// supervisor whose strategy is not SimpleOneForOne.
	ErrNotPool = errors.New("supervisor: not a simple-one-for-one supervisor")
	// ErrUnknownChild is the reply to RemoveChild for a Ref that is not
	// one of the supervisor's children.
	ErrUnknownChild = errors.New("supervisor: unknown child")
	// ErrPanic matches, in a Rule, any failure caused by a panic (a
	// *bus.PanicError reason).
	ErrPanic = errors.New("supervisor: panic")
)

// EscalationError is the error a supervisor fails with: which supervisor,
// which child's failure made it give up, why it gave up (ErrIntensity,
// ErrEscalated, ErrStartFailed) and the child's own reason. errors.Is matches
// both Err and Cause.
type EscalationError struct {
	Supervisor string // the supervisor's name
	Child      string // the child whose failure made it give up
	Err        error  // ErrIntensity, ErrEscalated or ErrStartFailed
	Cause      error  // the child's failure reason, if any
}

func (e *EscalationError) Error() string {
	if e.Cause == nil {
		return fmt.Sprintf("%v: supervisor %q, child %q", e.Err, e.Supervisor, e.Child)
	}
	return fmt.Sprintf("%v: supervisor %q, child %q: %v", e.Err, e.Supervisor, e.Child, e.Cause)
}

func (e *EscalationError) Unwrap() []error {
	if e.Cause == nil {
		return []error{e.Err}
	}
	return []error{e.Err, e.Cause}
}

func isPanic(err error) bool {
	var pe *bus.PanicError
	return errors.As(err, &pe)
}
