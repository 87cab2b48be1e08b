package bus

import (
	"bytes"
	"fmt"
	"runtime"
	"time"
)

// Actor handles the messages sent to it, one at a time, on a goroutine the
// bus provides. Receive must not keep msg's mutable parts after it returns
// unless the sender gave them up. A panic or a returned error fails the actor
// (see Supervisor).
type Actor interface {
	Receive(c *Context, msg any) error
}

// ActorFunc adapts a function to Actor.
type ActorFunc func(c *Context, msg any) error

func (f ActorFunc) Receive(c *Context, msg any) error { return f(c, msg) }

// Supervisor is implemented by actors that supervise the children they
// spawn. When a child fails, the bus suspends the child's mailbox (its
// messages keep queueing), dead-letters the message that failed it, and calls
// ChildFailed on the parent's own goroutine. The parent answers with
// c.Restart, c.Resume or c.StopChild for that child (now or later, for
// example after a backoff), or returns an error to fail itself and escalate.
//
// A child whose parent is not a Supervisor, and an actor registered at the
// top level, are resumed by default: the failure is logged, the message that
// caused it is dead-lettered, and the actor goes on with its next message.
type Supervisor interface {
	Actor
	ChildFailed(c *Context, f Failure) error
}

// Lifecycle messages, delivered to Receive like any other message.
type (
	// Started is the first message an actor receives, and the first one a
	// restarted actor's new instance receives.
	Started struct{}
	// Stopping is the last message an actor receives before it stops.
	Stopping struct{}
	// Restarting is received by the failed instance before it is replaced.
	Restarting struct{ Reason error }
	// Terminated tells a watcher (see Context.Watch) that an actor ended.
	// Reason is nil for a normal stop.
	Terminated struct {
		Ref    Ref
		Reason error
	}
)

// Failure describes why an actor failed.
type Failure struct {
	Ref     Ref       // the actor that failed
	Reason  error     // the error returned, or a *PanicError
	Message any       // the message being handled, if any
	Time    time.Time // when it failed
}

// PanicError is the Reason of a failure caused by a panic.
//
// The stack is captured as program counters, which is cheap, and formatted
// only when Stack is called: formatting it eagerly (debug.Stack) was half of
// the time from a panic to the restarted actor's next message.
type PanicError struct {
	Value any
	PCs   []uintptr // the panicking goroutine's stack, innermost first
}

func newPanicError(v any) *PanicError {
	pcs := make([]uintptr, 64)
	n := runtime.Callers(3, pcs)
	return &PanicError{Value: v, PCs: pcs[:n]}
}

// Stack formats the stack at the panic, one "function\n\tfile:line" pair per
// frame, like a goroutine dump.
func (e *PanicError) Stack() []byte {
	var buf bytes.Buffer
	frames := runtime.CallersFrames(e.PCs)
	for {
		f, more := frames.Next()
		fmt.Fprintf(&buf, "%s\n\t%s:%d\n", f.Function, f.File, f.Line)
		if !more {
			return buf.Bytes()
		}
	}
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Unwrap returns the panic value if it is an error.
func (e *PanicError) Unwrap() error {
	err, _ := e.Value.(error)
	return err
}
