package supervisor

import (
	"errors"

	"github.com/xbus-dev/xbus/bus"
)

// Directive is what a supervisor does about one failure of a child.
type Directive uint8

const (
	// Restart replaces the failed instance with a fresh one from the
	// child's factory (and its siblings, as the strategy says). The child
	// keeps its Ref, its name and its queued messages. A Temporary child is
	// stopped instead. Restarts count against the Intensity.
	Restart Directive = iota
	// Resume keeps the failed instance and its state and goes on with its
	// next message. The failing message has been dead-lettered. Resumes do
	// not count against the Intensity.
	Resume
	// Stop stops the child; it is not restarted.
	Stop
	// Escalate stops every child and fails the supervisor to its parent.
	Escalate
)

func (d Directive) String() string {
	switch d {
	case Restart:
		return "restart"
	case Resume:
		return "resume"
	case Stop:
		return "stop"
	case Escalate:
		return "escalate"
	}
	return "directive(?)"
}

// Decider chooses the directive for a failure. It runs on the supervisor's
// goroutine and must not block.
type Decider func(f bus.Failure) Directive

// Rule maps a kind of error to a directive, for ByError.
type Rule struct {
	Err       error // matched with errors.Is; ErrPanic matches any panic
	Directive Directive
}

// ByError returns a Decider that gives the directive of the first rule whose
// Err matches the failure's reason, and otherwise the directive otherwise.
//
//	supervisor.ByError(supervisor.Restart,
//		supervisor.Rule{Err: io.ErrUnexpectedEOF, Directive: supervisor.Resume},
//		supervisor.Rule{Err: supervisor.ErrPanic, Directive: supervisor.Restart},
//		supervisor.Rule{Err: errFatal, Directive: supervisor.Escalate})
func ByError(otherwise Directive, rules ...Rule) Decider {
	return func(f bus.Failure) Directive {
		for _, r := range rules {
			if r.Err == ErrPanic && isPanic(f.Reason) || r.Err != ErrPanic && errors.Is(f.Reason, r.Err) {
				return r.Directive
			}
		}
		return otherwise
	}
}
