package bus_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

type Add struct{ A, B int }

// Register an actor under a name and Ask it; AskAs checks the reply's type.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := bus.New()
	if err != nil {
		panic(err)
	}
	defer b.Close(ctx)

	_, err = b.Register("calc", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if m, ok := msg.(Add); ok {
			return c.Reply(m.A + m.B)
		}
		return nil // Started, Stopping: nothing to do
	}))
	if err != nil {
		panic(err)
	}

	reply, err := b.Ask(ctx, "calc", Add{2, 3})
	fmt.Println(reply, err)

	sum, err := bus.AskAs[int](ctx, b, "calc", Add{40, 2})
	fmt.Println(sum, err)

	_, err = bus.AskAs[string](ctx, b, "calc", Add{1, 1})
	fmt.Println(errors.Is(err, bus.ErrWrongType))

	_, err = b.Ask(ctx, "nobody", Add{})
	fmt.Println(err)
	// Output:
	// 5 <nil>
	// 42 <nil>
	// true
	// bus: no route to actor: "nobody"
}

// Tell queues messages without waiting; from one sender they arrive in the
// order sent, so an Ask sent after them sees their effect.
func ExampleBus_Tell() {
	ctx := context.Background()
	b, _ := bus.New()
	defer b.Close(ctx)

	var seen []string // owned by the actor
	ref, _ := b.Spawn(bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch m := msg.(type) {
		case string:
			seen = append(seen, m)
		case struct{}:
			return c.Reply(fmt.Sprint(seen))
		}
		return nil
	}))
	for _, s := range []string{"a", "b", "c"} {
		if err := b.Tell(ref, s); err != nil {
			panic(err)
		}
	}
	got, _ := bus.AskAs[string](ctx, b, ref, struct{}{})
	fmt.Println(got)
	// Output: [a b c]
}

// Subscribe with NATS-style wildcards: "*" matches one token, ">" one or
// more.
func ExampleBus_Subscribe() {
	ctx := context.Background()
	b, _ := bus.New()
	defer b.Close(ctx)

	all, _ := b.Subscribe(ctx, "prices.>")
	one, _ := b.Subscribe(ctx, "prices.*")
	defer all.Close()
	defer one.Close()

	b.Publish("prices.eur", 1.08)
	b.Publish("prices.gbp.spot", 1.27)
	b.Publish("news.today", "ignored") // no subscriber: not an error

	for range 2 {
		m, _ := all.Next(ctx)
		fmt.Println("prices.>", m.Subject, m.Msg)
	}
	m, _ := one.Next(ctx)
	fmt.Println("prices.*", m.Subject, m.Msg)
	// Output:
	// prices.> prices.eur 1.08
	// prices.> prices.gbp.spot 1.27
	// prices.* prices.eur 1.08
}

// Without a supervisor, an actor that panics is recovered: its Ask fails
// with ErrActorFailed, the message becomes a dead letter with the reason,
// and the actor goes on with its next message, its state intact.
func Example_supervisionDefault() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, _ := bus.New(bus.WithLogger(slog.New(slog.DiscardHandler))) // the failure is logged; not here
	defer b.Close(ctx)

	dead, _ := b.Subscribe(ctx, bus.DeadLetterSubject)
	defer dead.Close()

	handled := 0
	b.Register("div", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if m, ok := msg.([2]int); ok {
			handled++
			return c.Reply(m[0] / m[1]) // panics on a zero divisor
		}
		return nil
	}))

	_, err := b.Ask(ctx, "div", [2]int{1, 0})
	fmt.Println(err)
	var pe *bus.PanicError
	fmt.Println(errors.Is(err, bus.ErrActorFailed), errors.As(err, &pe))

	q, err := bus.AskAs[int](ctx, b, "div", [2]int{42, 6})
	fmt.Println(q, err)

	m, _ := dead.Next(ctx)
	dl := m.Msg.(bus.DeadLetter)
	fmt.Println(dl.Msg, dl.To.Name, errors.Is(dl.Reason, bus.ErrActorFailed))
	fmt.Println(b.DeadLetterCount(bus.ErrActorFailed))
	// Output:
	// bus: actor failed: panic: runtime error: integer divide by zero
	// true true
	// 7 <nil>
	// [1 0] div true
	// 1
}

// The package-level functions act on bus.Default(), a process-wide bus
// created on first use: a small program needs no setup.
func ExampleRegister() {
	bus.Register("greeter", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if name, ok := msg.(string); ok {
			return c.Reply("hello, " + name)
		}
		return nil
	}))
	reply, err := bus.Ask(context.Background(), "greeter", "world")
	fmt.Println(reply, err)
	// Output: hello, world <nil>
}

// An actor whose Receive is short and never blocks can run on its senders:
// WithInline. The actor still handles one message at a time; a message that
// finds it busy waits in its mailbox as usual.
func ExampleWithInline() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b, err := bus.New()
	if err != nil {
		panic(err)
	}
	defer b.Close(ctx)

	prices := map[string]int{"EUR": 108, "GBP": 127}
	_, err = b.Register("quote", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if cur, ok := msg.(string); ok {
			return c.Reply(prices[cur]) // a map lookup: short, never blocks
		}
		return nil
	}), bus.WithInline())
	if err != nil {
		panic(err)
	}
	p, err := bus.AskAs[int](ctx, b, "quote", "GBP")
	fmt.Println(p, err)
	// Output: 127 <nil>
}
