package rpc_test

import (
	"context"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/race"
	"github.com/xbus-dev/xbus/rpc"
)

// TestCallAllocs: a typed call in process allocates no more than the plain
// Ask of the same request: no wrapping, no encoding, no context per call.
// The request is built at run time and past Go's cache of small boxed
// integers, as a real one is: a generic function boxes even a constant.
func TestCallAllocs(t *testing.T) {
	b := newBus(t)
	if _, err := b.Register("plain", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if a, ok := msg.(Add); ok {
			return c.Reply(Sum{a.A + a.B})
		}
		return nil
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := rpc.Handle(b, "typed", func(_ context.Context, a Add) (Sum, error) { return Sum{a.A + a.B}, nil }); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	n := 1000
	ask := testing.AllocsPerRun(1000, func() {
		if _, err := bus.AskAs[Sum](ctx, b, "plain", Add{n, n}); err != nil {
			t.Fatal(err)
		}
		n++
	})
	call := testing.AllocsPerRun(1000, func() {
		if _, err := rpc.Call[Sum](ctx, b, "typed", Add{n, n}); err != nil {
			t.Fatal(err)
		}
		n++
	})
	budget := ask
	if race.Enabled {
		// Under -race sync.Pool drops a quarter of what is put back, so
		// some calls build a fresh ask (the struct and its channel).
		budget += 2
	}
	if call > budget {
		t.Fatalf("rpc.Call allocates %.1f per call, bus.Ask %.1f", call, ask)
	}
}

// TestHandlerErrAllocatesNothing: a handler's ctx.Err() on a call its
// caller cannot give up (in process, context.Background()) polls whether
// the actor is asked to stop without making anything: not even the
// actor's StopContext, on the first call the actor serves. The handler is
// a Server's, so the call gets a ctx of its own rather than that
// StopContext.
func TestHandlerErrAllocatesNothing(t *testing.T) {
	b := newBus(t)
	srv := rpc.NewServer(b)
	polls := make(chan float64, 1)
	if _, err := rpc.Handle(b, "polls", func(ctx context.Context, a Add) (Sum, error) {
		first := true
		polls <- testing.AllocsPerRun(1, func() {
			if first { // AllocsPerRun's warm-up run: the poll measured is the first
				first = false
				return
			}
			if ctx.Err() != nil {
				t.Error("the ctx of a running handler ended")
			}
		})
		return Sum{a.A + a.B}, nil
	}, rpc.WithServer(srv)); err != nil {
		t.Fatal(err)
	}
	if _, err := rpc.Call[Sum](context.Background(), b, "polls", Add{1, 2}); err != nil {
		t.Fatal(err)
	}
	if n := <-polls; n != 0 {
		t.Fatalf("ctx.Err() allocates %.0f on a call that cannot be canceled", n)
	}
}
