package supervisor

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/xbus-dev/xbus/bus"
)

// flaky panics on every 100th number and records the others.
type flaky struct {
	mu   *sync.Mutex
	got  *[]int
	gens *int
}

func (f *flaky) Receive(c *bus.Context, msg any) error {
	switch m := msg.(type) {
	case bus.Started:
		f.mu.Lock()
		*f.gens++
		f.mu.Unlock()
	case int:
		if m%100 == 0 {
			panic(fmt.Sprintf("bad number %d", m))
		}
		f.mu.Lock()
		*f.got = append(*f.got, m)
		f.mu.Unlock()
	case string:
		return c.Reply("synced")
	}
	return nil
}

// TestRestartKeepsMailbox: 10,000 messages to an actor that panics on every
// 100th; exactly the other 9,900 are processed, in order, by the restarted
// instances, and the 100 that failed are dead letters with their reasons.
// The same holds for a child that runs inline on its senders.
func TestRestartKeepsMailbox(t *testing.T) {
	for _, inline := range []bool{false, true} {
		t.Run(fmt.Sprintf("inline=%v", inline), func(t *testing.T) { restartKeepsMailbox(t, inline) })
	}
}

func restartKeepsMailbox(t *testing.T, inline bool) {
	before := runtime.NumGoroutine()
	b := newBus(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dl, err := b.Subscribe(ctx, bus.DeadLetterSubject, bus.WithWindow(1024))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var got []int
	gens := 0
	spec := Spec{
		Name:      "root",
		Intensity: Intensity{MaxRestarts: -1},
		Backoff:   Backoff{Disabled: true},
		Children: []ChildSpec{{Name: "flaky", New: func() bus.Actor {
			return &flaky{mu: &mu, got: &got, gens: &gens}
		}}},
	}
	if inline {
		spec.Children[0].Options = []bus.ActorOption{bus.WithInline()}
	}
	sup, _, err := Start(ctx, b, spec)
	_ = sup
	if err != nil {
		t.Fatal(err)
	}
	const n = 10_000
	for i := 1; i <= n; i++ {
		if err := b.Tell("flaky", i); err != nil {
			t.Fatalf("tell %d: %v", i, err)
		}
	}
	if r := ask(t, b, "flaky", "sync"); r != "synced" {
		t.Fatalf("sync reply %v", r)
	}

	mu.Lock()
	if len(got) != n-n/100 {
		t.Errorf("processed %d messages, want %d", len(got), n-n/100)
	}
	want := 1
	for _, v := range got {
		if want%100 == 0 {
			want++
		}
		if v != want {
			t.Fatalf("processed %d where %d was due: order broken", v, want)
		}
		want++
	}
	if gens != n/100+1 {
		t.Errorf("%d instances started, want %d (the first and one per failure)", gens, n/100+1)
	}
	mu.Unlock()

	for k := 1; k <= n/100; k++ {
		m, err := dl.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		d := m.Msg.(bus.DeadLetter)
		if d.Msg != k*100 {
			t.Fatalf("dead letter %d is %v, want %d", k, d.Msg, k*100)
		}
		var pe *bus.PanicError
		if !errors.Is(d.Reason, bus.ErrActorFailed) || !errors.As(d.Reason, &pe) {
			t.Fatalf("dead letter reason %v: want ErrActorFailed wrapping a *bus.PanicError", d.Reason)
		}
		if pe.Value != fmt.Sprintf("bad number %d", k*100) || len(pe.Stack()) == 0 {
			t.Fatalf("panic value %v, stack %d bytes", pe.Value, len(pe.Stack()))
		}
	}
	if c := b.DeadLetterCount(bus.ErrActorFailed); c != n/100 {
		t.Errorf("DeadLetterCount(ErrActorFailed) = %d, want %d", c, n/100)
	}
	cs, ok := status(t, b, "root").Child("flaky")
	if !ok || cs.Restarts != n/100 || cs.State != Running || cs.LastFailure == nil {
		t.Errorf("child status %+v, want 100 restarts, running, a last failure", cs)
	}
	dl.Close()
	cancel()
	if err := b.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkGoroutines(t, before)
}
