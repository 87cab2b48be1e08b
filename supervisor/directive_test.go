package supervisor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

var errFatal = errors.New("fatal")
var errFlaky = errors.New("flaky")

func TestByError(t *testing.T) {
	d := ByError(Restart,
		Rule{Err: errFlaky, Directive: Resume},
		Rule{Err: ErrPanic, Directive: Stop},
		Rule{Err: errFatal, Directive: Escalate})
	tests := []struct {
		reason error
		want   Directive
	}{
		{errFlaky, Resume},
		{&bus.PanicError{Value: "x"}, Stop},
		{&bus.PanicError{Value: errFatal}, Stop}, // the first matching rule wins
		{errors.Join(errors.New("ctx"), errFatal), Escalate},
		{errors.New("other"), Restart},
	}
	for _, tt := range tests {
		if got := d(bus.Failure{Reason: tt.reason}); got != tt.want {
			t.Errorf("ByError(%v) = %v, want %v", tt.reason, got, tt.want)
		}
	}
}

func TestDirectives(t *testing.T) {
	b := newBus(t, nil)
	j := &journal{}
	_, ref, err := Start(context.Background(), b, Spec{
		Name:    "dirs",
		Backoff: Backoff{Disabled: true},
		Decider: ByError(Restart, Rule{Err: errFlaky, Directive: Resume}),
		Children: []ChildSpec{
			{Name: "keeper", New: newProbe("keeper", j)},
			{Name: "quitter", New: newProbe("quitter", j), Decider: func(bus.Failure) Directive { return Stop }},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ask(t, b, "keeper", "ping")
	}
	_ = b.Tell("keeper", errFlaky) // resumed: same instance, state kept
	if n := ask(t, b, "keeper", "count"); n != 3 {
		t.Fatalf("after Resume the instance counts %v messages, want 3", n)
	}
	_ = b.Tell("keeper", errors.New("other")) // restarted: fresh state
	if n := ask(t, b, "keeper", "count"); n != 0 {
		t.Fatalf("after Restart the instance counts %v messages, want 0", n)
	}
	_ = b.Tell("quitter", "panic")
	eventually(t, "quitter stopped", func() bool {
		c, _ := status(t, b, ref).Child("quitter")
		return c.State == Stopped
	})
	st := status(t, b, ref)
	if c, _ := st.Child("keeper"); c.Restarts != 1 || !strings.Contains(c.LastFailure.Error(), "other") {
		t.Errorf("keeper status %+v: want 1 restart (resumes do not count), last failure \"other\"", c)
	}
	if j.count("quitter:started") != 1 || j.count("quitter:stopping") != 1 {
		t.Errorf("journal %v: quitter must have started and stopped once", j.all())
	}
}

// TestEscalation nests a supervisor under another: when the inner one gives
// up (a child's failure escalated, or too many restarts), it stops its
// children and fails to the outer one, which restarts it; the new inner
// instance starts its children afresh.
func TestEscalation(t *testing.T) {
	for _, tc := range []struct {
		name   string
		inner  Spec
		fail   func(b *bus.Bus)
		reason error
	}{
		{"escalate directive", Spec{Decider: ByError(Restart, Rule{Err: errFatal, Directive: Escalate})}, func(b *bus.Bus) {
			_ = b.Tell("leaf", errFatal)
		}, ErrEscalated},
		{"intensity", Spec{Intensity: Intensity{MaxRestarts: 2, Period: time.Hour}}, func(b *bus.Bus) {
			for range 3 {
				_ = b.Tell("leaf", "panic")
			}
		}, ErrIntensity},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBus(t, nil)
			j := &journal{}
			inner := tc.inner
			inner.Name, inner.Backoff = "inner", Backoff{Disabled: true}
			inner.Children = []ChildSpec{{Name: "leaf", New: newProbe("leaf", j)}}
			_, ref, err := Start(context.Background(), b, Spec{Name: "outer", Backoff: Backoff{Disabled: true}, Children: []ChildSpec{
				{Name: "inner", New: func() bus.Actor { return MustNew(inner) }},
				{Name: "sibling", New: newProbe("sibling", j)},
			}})
			if err != nil {
				t.Fatal(err)
			}
			tc.fail(b)
			eventually(t, "inner restarted by outer", func() bool {
				c, _ := status(t, b, ref).Child("inner")
				return c.Restarts == 1
			})
			c, _ := status(t, b, ref).Child("inner")
			var ee *EscalationError
			if !errors.As(c.LastFailure, &ee) || !errors.Is(c.LastFailure, tc.reason) || ee.Supervisor != "inner" || ee.Child != "leaf" {
				t.Fatalf("inner's last failure %v: want an *EscalationError from inner about leaf matching %v", c.LastFailure, tc.reason)
			}
			// The leaf was stopped and started anew by the new inner instance.
			eventually(t, "leaf started again", func() bool { return j.count("leaf:started") >= 2 })
			if r := ask(t, b, "leaf", "ping"); r != "pong" {
				t.Fatalf("leaf answered %v", r)
			}
			if st := status(t, b, "inner"); st.Err != nil || st.State != Running {
				t.Fatalf("the new inner instance: %+v", st)
			}
			if n := j.count("sibling:started"); n != 1 {
				t.Errorf("sibling started %d times under one-for-one, want 1", n)
			}
		})
	}
}

// TestTopLevelGivesUp: a registered supervisor with no parent that gives up
// stops, and says why.
func TestTopLevelGivesUp(t *testing.T) {
	b := newBus(t, nil)
	j := &journal{}
	sup, ref, err := Start(context.Background(), b, Spec{Name: "top", Intensity: Intensity{MaxRestarts: 0, Period: time.Hour}, Children: []ChildSpec{
		{Name: "leaf", New: newProbe("leaf", j)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	_ = b.Tell("leaf", "panic")
	select {
	case <-b.Done(ref):
	case <-time.After(20 * time.Second):
		t.Fatal("the supervisor did not stop after giving up")
	}
	st := sup.Status()
	if !errors.Is(st.Err, ErrIntensity) || st.State != Stopped {
		t.Fatalf("status %+v: want stopped with ErrIntensity", st)
	}
	if j.count("leaf:stopping") != 1 {
		t.Errorf("journal %v: the leaf must have been stopped", j.all())
	}
}
