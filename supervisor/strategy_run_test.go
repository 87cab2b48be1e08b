package supervisor

import (
	"context"
	"errors"
	"testing"

	"github.com/xbus-dev/xbus/bus"
)

func threeProbes(j *journal) []ChildSpec {
	return []ChildSpec{
		{Name: "a", New: newProbe("a", j)},
		{Name: "b", New: newProbe("b", j)},
		{Name: "c", New: newProbe("c", j)},
	}
}

func TestStrategies(t *testing.T) {
	tests := []struct {
		s      Strategy
		starts map[string]int // instances started per child after b fails
	}{
		{OneForOne, map[string]int{"a": 1, "b": 2, "c": 1}},
		{OneForAll, map[string]int{"a": 2, "b": 2, "c": 2}},
		{RestForOne, map[string]int{"a": 1, "b": 2, "c": 2}},
	}
	for _, tt := range tests {
		t.Run(tt.s.String(), func(t *testing.T) {
			b := newBus(t, nil)
			j := &journal{}
			sup, ref, err := Start(context.Background(), b, Spec{Name: "sup", Strategy: tt.s, Backoff: Backoff{Disabled: true}, Children: threeProbes(j)})
			if err != nil {
				t.Fatal(err)
			}
			before := sup.Status()
			if got := j.all(); len(got) != 3 || got[0] != "a:started" || got[1] != "b:started" || got[2] != "c:started" {
				t.Fatalf("start order %v, want a, b, c", got)
			}
			if err := b.Tell("b", "panic"); err != nil {
				t.Fatal(err)
			}
			for name, n := range tt.starts {
				eventually(t, name+" started enough times", func() bool { return j.count(name+":started") >= n })
			}
			// Every child answers, and the ones restarted kept their Refs.
			for _, name := range []string{"a", "b", "c"} {
				if r := ask(t, b, name, "ping"); r != "pong" {
					t.Fatalf("%s answered %v", name, r)
				}
			}
			after := status(t, b, ref)
			for name, n := range tt.starts {
				if got := j.count(name + ":started"); got != n {
					t.Errorf("%s started %d times, want %d", name, got, n)
				}
				cb, _ := before.Child(name)
				ca, _ := after.Child(name)
				if ca.Ref != cb.Ref {
					t.Errorf("%s: Ref changed across the restart: %v -> %v", name, cb.Ref, ca.Ref)
				}
				if ca.Restarts != n-1 {
					t.Errorf("%s: status says %d restarts, want %d", name, ca.Restarts, n-1)
				}
			}
			if after.Restarts != 1 {
				t.Errorf("intensity window holds %d restarts, want 1 (a group restart counts once)", after.Restarts)
			}
		})
	}
}

func TestRestartTypes(t *testing.T) {
	b := newBus(t, nil)
	j := &journal{}
	_, ref, err := Start(context.Background(), b, Spec{Name: "types", Backoff: Backoff{Disabled: true}, Children: []ChildSpec{
		{Name: "perm", New: newProbe("perm", j), Restart: Permanent},
		{Name: "trans", New: newProbe("trans", j), Restart: Transient},
		{Name: "trans2", New: newProbe("trans2", j), Restart: Transient},
		{Name: "temp", New: newProbe("temp", j), Restart: Temporary},
	}})
	if err != nil {
		t.Fatal(err)
	}
	before := status(t, b, ref)

	// A permanent child that stops on its own is started again (a new Ref).
	_ = b.Tell("perm", "stop")
	eventually(t, "perm started again", func() bool { return j.count("perm:started") == 2 })
	if r := ask(t, b, "perm", "ping"); r != "pong" {
		t.Fatalf("perm answered %v", r)
	}
	// A transient child that stops normally stays stopped...
	_ = b.Tell("trans", "stop")
	eventually(t, "trans seen stopped", func() bool {
		c, _ := status(t, b, ref).Child("trans")
		return c.State == Stopped
	})
	// ...but is restarted after a failure.
	_ = b.Tell("trans2", "panic")
	eventually(t, "trans2 restarted", func() bool { return j.count("trans2:started") == 2 })
	// A temporary child is not restarted after a failure.
	_ = b.Tell("temp", "panic")
	eventually(t, "temp seen stopped", func() bool {
		c, _ := status(t, b, ref).Child("temp")
		return c.State == Stopped
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5e9)
	defer cancel()
	if _, err := b.Ask(ctx, "temp", "ping"); !errors.Is(err, bus.ErrNoRoute) {
		t.Errorf("ask to the stopped temporary child: %v, want ErrNoRoute", err)
	}
	if _, err := b.Ask(ctx, "trans", "ping"); !errors.Is(err, bus.ErrNoRoute) {
		t.Errorf("ask to the stopped transient child: %v, want ErrNoRoute", err)
	}

	st := status(t, b, ref)
	pb, _ := before.Child("perm")
	pa, _ := st.Child("perm")
	if pa.Ref == pb.Ref || pa.Ref.IsZero() || pa.Restarts != 1 || pa.State != Running {
		t.Errorf("perm status %+v: want a new Ref, 1 restart, running", pa)
	}
	if c, _ := st.Child("trans2"); c.Restarts != 1 || c.State != Running || c.LastFailure == nil {
		t.Errorf("trans2 status %+v", c)
	}
	if c, _ := st.Child("temp"); c.Restarts != 0 || !c.Ref.IsZero() {
		t.Errorf("temp status %+v", c)
	}
	if j.count("temp:started") != 1 || j.count("trans:started") != 1 {
		t.Errorf("journal %v: temp and trans must have started once", j.all())
	}
}
