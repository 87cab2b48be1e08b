package supervisor

import (
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// RestartType says whether a child is restarted when it ends.
type RestartType uint8

const (
	// Permanent children are always restarted: after a failure, and after
	// they stop on their own.
	Permanent RestartType = iota
	// Transient children are restarted after a failure, not after a normal
	// stop (Context.Stop, or a stop with a nil reason).
	Transient
	// Temporary children are never restarted: a failure stops them (unless
	// the decider says Resume or Escalate).
	Temporary
)

func (r RestartType) String() string {
	switch r {
	case Permanent:
		return "permanent"
	case Transient:
		return "transient"
	case Temporary:
		return "temporary"
	}
	return "restart(?)"
}

// ChildSpec describes one child of a supervisor.
type ChildSpec struct {
	// Name is what the child is registered under on the bus, so it can be
	// reached by name across restarts. Empty: an anonymous child, reachable
	// by Ref (see Status). Members of a SimpleOneForOne pool share their
	// template's name, which makes the pool a service: a message to the
	// name goes to the least loaded member.
	Name string
	// New builds a fresh instance of the child. Required. It is called on
	// the supervisor's goroutine for the first start and for each restart.
	New func() bus.Actor
	// Restart is the child's restart type. Zero: Permanent.
	Restart RestartType
	// Shutdown bounds how long the child may take to drain its mailbox and
	// stop when the supervisor stops; then it is stopped at once, and
	// abandoned with a logged error if it still does not stop within the
	// same time. Zero: bus.DefaultShutdownTimeout.
	Shutdown time.Duration
	// Decider chooses the directive for this child's failures. Nil: the
	// supervisor's Spec.Decider.
	Decider Decider
	// Options are passed to the bus when the child is spawned (for example
	// bus.WithMailbox).
	Options []bus.ActorOption
}

// Spec describes a supervisor: its children, in start order, and how it
// handles their failures. Its zero fields take the documented defaults;
// only Children (with a New for each) is required.
type Spec struct {
	// Name names the supervisor in logs, in errors, and, for Run, on the
	// bus. Zero: "supervisor".
	Name string
	// Strategy is the restart strategy. Zero: OneForOne.
	Strategy Strategy
	// Children are started in order when the supervisor starts, and
	// stopped in reverse order when it stops. For SimpleOneForOne there
	// must be exactly one: the template of the pool's members, none of
	// which is started before AddChild.
	Children []ChildSpec
	// Intensity bounds the restarts. Zero: 3 restarts in 5 seconds.
	Intensity Intensity
	// Backoff spaces out the restarts of a child that keeps failing.
	// Zero: 10ms doubling up to 10s, ±20% jitter, reset after 30s of
	// healthy running. Backoff{Disabled: true}: restart at once.
	Backoff Backoff
	// Decider chooses the directive for a child's failure when the child's
	// spec has none. Nil: Restart for every failure.
	Decider Decider
	// Logger receives the supervisor's structured logs. Nil: the bus's.
	Logger *slog.Logger
}

func (s Spec) validate() error {
	var errs []error
	if s.Strategy > SimpleOneForOne {
		errs = append(errs, fmt.Errorf("supervisor: unknown strategy %d", s.Strategy))
	}
	if s.Strategy == SimpleOneForOne && len(s.Children) != 1 {
		errs = append(errs, fmt.Errorf("supervisor: simple-one-for-one needs exactly one child spec (the template), got %d", len(s.Children)))
	}
	names := map[string]bool{}
	for i, c := range s.Children {
		if c.New == nil {
			errs = append(errs, fmt.Errorf("supervisor: child %d (%q) has no New function", i, c.Name))
		}
		if c.Restart > Temporary {
			errs = append(errs, fmt.Errorf("supervisor: child %d (%q) has unknown restart type %d", i, c.Name, c.Restart))
		}
		if c.Shutdown < 0 {
			errs = append(errs, fmt.Errorf("supervisor: child %d (%q) has a negative shutdown timeout %v", i, c.Name, c.Shutdown))
		}
		if c.Name != "" && names[c.Name] {
			errs = append(errs, fmt.Errorf("supervisor: two children named %q", c.Name))
		}
		names[c.Name] = c.Name != ""
	}
	return errors.Join(errs...)
}
