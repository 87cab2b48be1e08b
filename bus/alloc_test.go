package bus_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/race"
)

// The allocation budgets of the in-process hot paths (see docs/performance.md):
//
//   - Tell allocates nothing in steady state: the message is stored by value
//     in the mailbox's ring, and starting the actor's goroutine reuses a
//     method value made once. The caller passes an already boxed message (a
//     pointer, or an interface value it keeps); boxing a fresh struct into
//     `any` is the caller's allocation, not the bus's.
//   - Ask allocates at most askAllocBudget per round trip (measured: 0). The
//     pending call is pooled and its wake-up channel reused; an actor that
//     replies with a fresh struct pays for boxing it, as a caller does.
const askAllocBudget = 0

// payload is a 64-byte message handed over by pointer.
type payload struct{ _ [64]byte }

var msg any = &payload{}

// echo answers every ask with the message it was sent.
func echo(c *bus.Context, m any) error {
	if c.IsAsk() {
		return c.Reply(m)
	}
	return nil
}

func newTestBus(tb testing.TB) *bus.Bus {
	tb.Helper()
	b, err := bus.New()
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := b.Close(ctx); err != nil {
			tb.Errorf("close: %v", err)
		}
	})
	return b
}

func TestTellAllocatesNothing(t *testing.T) {
	b := newTestBus(t)
	ref, err := b.Register("sink", bus.ActorFunc(func(*bus.Context, any) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	for range 10_000 { // steady state: the ring exists, goroutines are pooled
		if err := b.Tell(ref, msg); err != nil {
			t.Fatal(err)
		}
	}
	cases := []struct {
		name string
		tell func() error
	}{
		{"to a Ref", func() error { return b.Tell(ref, msg) }},
		{"to a name", func() error { return b.Tell("sink", msg) }},
		{"package-level Tell on Default", nil},
	}
	def, err := bus.Register("alloc-sink", bus.ActorFunc(func(*bus.Context, any) error { return nil }))
	if err != nil {
		t.Fatal(err)
	}
	cases[2].tell = func() error { return bus.Tell(def, msg) }
	for _, c := range cases {
		n := testing.AllocsPerRun(20_000, func() {
			if err := c.tell(); err != nil {
				t.Fatal(err)
			}
		})
		if n != 0 {
			t.Errorf("Tell %s: %v allocations per call, want 0", c.name, n)
		}
	}
}

func TestAskAllocationBudget(t *testing.T) {
	b := newTestBus(t)
	ref, err := b.Register("echo", bus.ActorFunc(echo))
	if err != nil {
		t.Fatal(err)
	}
	inline, err := b.Register("echo-inline", bus.ActorFunc(echo), bus.WithInline())
	if err != nil {
		t.Fatal(err)
	}
	budget := askAllocBudget
	if race.Enabled {
		// Under -race sync.Pool drops a quarter of what is put back, so
		// some asks build a fresh call (the struct and its channel).
		budget += 2
	}
	ctx := context.Background()
	for _, c := range []struct {
		name string
		to   any
	}{{"to a Ref", ref}, {"to a name", "echo"}, {"to an inline actor", inline}} {
		for range 1000 {
			if _, err := b.Ask(ctx, c.to, msg); err != nil {
				t.Fatal(err)
			}
		}
		n := testing.AllocsPerRun(5_000, func() {
			if r, err := b.Ask(ctx, c.to, msg); err != nil || r != msg {
				t.Fatalf("ask: %v, %v", r, err)
			}
		})
		t.Logf("Ask %s: %v allocations per round trip", c.name, n)
		if n > float64(budget) {
			t.Errorf("Ask %s: %v allocations per round trip, budget %d", c.name, n, budget)
		}
	}
}

// TestPublishAllocatesNothing publishes among 1,000 subscriptions, one of
// which matches: finding it (the subject index, its matches copied to the
// stack) and delivering to it allocate nothing.
func TestPublishAllocatesNothing(t *testing.T) {
	b := newTestBus(t)
	ctx := context.Background()
	for i := range 1000 {
		if _, err := b.Subscribe(ctx, fmt.Sprintf("other.%d.*", i), bus.WithWindow(1)); err != nil {
			t.Fatal(err)
		}
	}
	s, err := b.Subscribe(ctx, "prices.*", bus.WithWindow(1000))
	if err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(100, func() {
		if err := b.Publish("prices.eur", msg); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("Publish allocates %.1f times", allocs)
	}
	if n := len(s.Messages()); n != 101 {
		t.Fatalf("the matching subscription holds %d messages, want 101", n)
	}
}

// TestLinkAskAllocs holds an ask to another bus through memNet (which
// encodes and decodes each envelope, as a transport does) to what its two
// bodies cost: the ask's string decoded on the server and the reply's on
// the asker, one allocation each. Sending allocates nothing, nor does a
// reply that the link takes at once.
func TestLinkAskAllocs(t *testing.T) {
	server, client := memPair(t)
	if _, err := server.Register("echo", bus.ActorFunc(echo), bus.WithInline()); err != nil {
		t.Fatal(err)
	}
	waitForBench(t, client, "echo")
	var m any = string(make([]byte, 64))
	ctx := context.Background()
	for range 1000 {
		if _, err := client.Ask(ctx, "echo", m); err != nil {
			t.Fatal(err)
		}
	}
	budget := 2.0
	if race.Enabled {
		// Under -race sync.Pool drops a quarter of what is put back, and
		// this path pools five things (the call, the outgoing record, its
		// body buffer, the inbound record, memNet's frame) on each side.
		budget += 10
	}
	n := testing.AllocsPerRun(5_000, func() {
		if r, err := client.Ask(ctx, "echo", m); err != nil || r != m {
			t.Fatalf("ask: %v, %v", r, err)
		}
	})
	t.Logf("remote Ask: %v allocations per round trip", n)
	if n > budget {
		t.Errorf("remote Ask: %v allocations per round trip, budget %v", n, budget)
	}
}
