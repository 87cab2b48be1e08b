package supervisor

import (
	"context"
	"errors"
	"testing"

	"github.com/xbus-dev/xbus/bus"
)

func TestPool(t *testing.T) {
	b := newBus(t, nil)
	j := &journal{}
	ctx := context.Background()
	_, ref, err := Start(ctx, b, Spec{Name: "pool", Strategy: SimpleOneForOne, Backoff: Backoff{Disabled: true},
		Children: []ChildSpec{{Name: "member", New: newProbe("member", j)}}})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(status(t, b, ref).Children); n != 0 {
		t.Fatalf("pool starts with %d members, want 0", n)
	}
	var refs []bus.Ref
	for range 3 {
		r, err := StartChild(ctx, b, "pool")
		if err != nil {
			t.Fatal(err)
		}
		refs = append(refs, r)
	}
	for _, r := range refs {
		if got := ask(t, b, r, "ping"); got != "pong" {
			t.Fatalf("member %v answered %v", r, got)
		}
	}
	if got := ask(t, b, "member", "ping"); got != "pong" { // the name is a service
		t.Fatalf("the pool's name answered %v", got)
	}
	// A failed member is restarted alone, in place.
	_ = b.Tell(refs[1], "panic")
	eventually(t, "member restarted", func() bool { return j.count("member:started") == 4 })
	st := status(t, b, ref)
	if len(st.Children) != 3 || st.Children[1].Ref != refs[1] || st.Children[1].Restarts != 1 || st.Children[0].Restarts != 0 {
		t.Fatalf("pool status after a failure: %+v", st.Children)
	}
	if err := TerminateChild(ctx, b, ref, refs[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Ask(ctx, refs[0], "ping"); !errors.Is(err, bus.ErrNoRoute) {
		t.Fatalf("ask to a removed member: %v, want ErrNoRoute", err)
	}
	if err := TerminateChild(ctx, b, ref, refs[0]); !errors.Is(err, ErrUnknownChild) {
		t.Fatalf("removing it twice: %v, want ErrUnknownChild", err)
	}
	// A member that stops on its own is started again (permanent template).
	_ = b.Tell(refs[2], "stop")
	eventually(t, "member replaced", func() bool { return j.count("member:started") == 5 })
	st = status(t, b, ref)
	if len(st.Children) != 2 || st.Children[1].Ref == refs[2] || st.Children[1].Ref.IsZero() {
		t.Fatalf("pool status: %+v", st.Children)
	}
	if _, err := StartChild(ctx, b, "nonexistent"); !errors.Is(err, bus.ErrNoRoute) {
		t.Fatalf("StartChild to no one: %v", err)
	}
}

func TestPoolRequestsToOtherStrategies(t *testing.T) {
	b := newBus(t, nil)
	ctx := context.Background()
	_, ref, err := Start(ctx, b, Spec{Name: "fixed", Children: []ChildSpec{{Name: "x", New: newProbe("x", &journal{})}}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := StartChild(ctx, b, ref); !errors.Is(err, ErrNotPool) {
		t.Fatalf("AddChild to one-for-one: %v, want ErrNotPool", err)
	}
}

func TestSpecValidation(t *testing.T) {
	p := newProbe("p", &journal{})
	tests := []Spec{
		{Strategy: SimpleOneForOne},
		{Strategy: SimpleOneForOne, Children: []ChildSpec{{New: p}, {New: p}}},
		{Children: []ChildSpec{{Name: "a"}}},
		{Children: []ChildSpec{{Name: "a", New: p}, {Name: "a", New: p}}},
		{Children: []ChildSpec{{Name: "a", New: p, Restart: 9}}},
		{Children: []ChildSpec{{Name: "a", New: p, Shutdown: -1}}},
		{Strategy: 42},
	}
	for i, s := range tests {
		if _, err := New(s); err == nil {
			t.Errorf("spec %d: New accepted %+v", i, s)
		}
	}
	if _, err := New(Spec{}); err != nil {
		t.Errorf("an empty spec is a valid supervisor of nothing: %v", err)
	}
	// A factory that panics or returns nil fails the start, with a reason.
	b := newBus(t, nil)
	_, _, err := Start(context.Background(), b, Spec{Name: "bad", Children: []ChildSpec{{Name: "nil", New: func() bus.Actor { return nil }}}})
	if !errors.Is(err, ErrStartFailed) {
		t.Fatalf("start with a nil factory result: %v, want ErrStartFailed", err)
	}
}
