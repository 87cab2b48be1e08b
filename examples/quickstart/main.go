// Command quickstart is a tour of xbus in one process: actors registered by
// name, Ask and the typed AskAs, Tell, a wildcard subscription, an actor that
// panics while the program goes on, and the dead letters that record it.
//
//	go run ./examples/quickstart
//
// Everything it prints to stdout is deterministic (its test checks it word
// for word); the bus's own log lines go to stderr.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// Messages are plain Go values. In one process they are handed over as they
// are: nothing is encoded.
type (
	Hello struct{ Name string }
	Add   struct{ A, B int }
	Inc   struct{}
	Count struct{}
	Div   struct{ A, B int }
	Tick  struct {
		Pair  string
		Price float64
	}
)

// greeter is an actor with state. Receive runs on one goroutine at a time,
// so n needs no lock.
type greeter struct{ n int }

func (g *greeter) Receive(c *bus.Context, msg any) error {
	switch m := msg.(type) {
	case bus.Started:
		// The first message every actor gets.
	case Hello:
		g.n++
		return c.Reply(fmt.Sprintf("hello, %s (greeting #%d)", m.Name, g.n))
	}
	return nil
}

func main() {
	// The bus logs to stderr (for example when an actor fails); stdout is
	// the tour.
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		},
	}))
	if err := run(os.Stdout, log); err != nil {
		fmt.Fprintln(os.Stderr, "quickstart:", err)
		os.Exit(1)
	}
}

func run(out io.Writer, log *slog.Logger) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	// A bus is one node. bus.Default() gives a process-wide one with no
	// setup; here we make our own so that we can close it at the end.
	b, err := bus.New(bus.WithName("quickstart"), bus.WithLogger(log))
	if err != nil {
		return err
	}

	// 1. Register actors under names. An actor is a value with a Receive
	// method, or a function wrapped in bus.ActorFunc.
	if _, err := b.Register("greeter", &greeter{}); err != nil {
		return err
	}
	if _, err := b.Register("calc", bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch m := msg.(type) {
		case Add:
			return c.Reply(m.A + m.B)
		case Div:
			return c.Reply(m.A / m.B) // panics when B is 0
		}
		return nil
	})); err != nil {
		return err
	}
	tells := 0
	counter, err := b.Register("counter", bus.ActorFunc(func(c *bus.Context, msg any) error {
		switch msg.(type) {
		case Inc:
			tells++
		case Count:
			return c.Reply(tells)
		}
		return nil
	}))
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "== actors")
	fmt.Fprintln(out, "registered greeter, calc and counter")

	// 2. Ask by name: send a message, wait for the reply (bounded by ctx).
	fmt.Fprintln(out, "== ask")
	for _, name := range []string{"Ada", "Grace"} {
		reply, err := b.Ask(ctx, "greeter", Hello{Name: name})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "greeter replied: %v\n", reply)
	}

	// 3. AskAs: the same, with the reply's type checked.
	sum, err := bus.AskAs[int](ctx, b, "calc", Add{A: 2, B: 3})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "calc: 2 + 3 = %d\n", sum)
	if _, err := bus.AskAs[string](ctx, b, "calc", Add{A: 1, B: 1}); errors.Is(err, bus.ErrWrongType) {
		fmt.Fprintf(out, "AskAs[string] of an int reply fails: %v\n", err)
	}

	// 4. Tell: fire and forget, in order from one sender. An address that
	// cannot be reached is an error, never a silent drop.
	fmt.Fprintln(out, "== tell")
	for range 1000 {
		if err := b.Tell(counter, Inc{}); err != nil {
			return err
		}
	}
	n, err := bus.AskAs[int](ctx, b, counter, Count{})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "counter handled %d tells, then answered the ask sent after them\n", n)
	if err := b.Tell("nobody", Inc{}); errors.Is(err, bus.ErrNoRoute) {
		fmt.Fprintf(out, "tell to an unknown name: %v\n", err)
	}

	// 5. Publish/Subscribe with NATS-style wildcards: "*" is one token,
	// ">" the rest.
	fmt.Fprintln(out, "== subscribe")
	sub, err := b.Subscribe(ctx, "prices.>")
	if err != nil {
		return err
	}
	defer sub.Close()
	for _, p := range []struct {
		subject string
		tick    Tick
	}{
		{"prices.eur", Tick{"EUR/USD", 1.08}},
		{"news.today", Tick{"not a price", 0}},
		{"prices.gbp.spot", Tick{"GBP/USD", 1.27}},
	} {
		if err := b.Publish(p.subject, p.tick); err != nil {
			return err
		}
	}
	for range 2 {
		m, err := sub.Next(ctx)
		if err != nil {
			return err
		}
		t := m.Msg.(Tick)
		fmt.Fprintf(out, "prices.> got %s: %s at %.2f\n", m.Subject, t.Pair, t.Price)
	}
	fmt.Fprintln(out, "(news.today matched nobody: publishing to no subscriber is not an error)")

	// 6. A failing actor. The bus recovers the panic, fails the Ask with
	// ErrActorFailed, dead-letters the message with the reason, and, with
	// no supervisor above it, lets the actor go on with its next message.
	fmt.Fprintln(out, "== failure")
	dead, err := b.Subscribe(ctx, bus.DeadLetterSubject)
	if err != nil {
		return err
	}
	defer dead.Close()
	_, err = b.Ask(ctx, "calc", Div{A: 1, B: 0})
	fmt.Fprintf(out, "ask calc 1/0: %v\n", err)
	fmt.Fprintf(out, "errors.Is(err, bus.ErrActorFailed) = %v\n", errors.Is(err, bus.ErrActorFailed))
	q, err := bus.AskAs[int](ctx, b, "calc", Div{A: 42, B: 6})
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "calc is still there: 42 / 6 = %d\n", q)

	// 7. Dead letters: every message the bus could not deliver or process,
	// with the reason, counted and observable.
	fmt.Fprintln(out, "== dead letters")
	m, err := dead.Next(ctx)
	if err != nil {
		return err
	}
	dl := m.Msg.(bus.DeadLetter)
	fmt.Fprintf(out, "dead letter: %#v to %s: %v\n", dl.Msg, dl.To.Name, dl.Reason)
	fmt.Fprintf(out, "dead letters counted: %d (actor failed: %d)\n",
		b.DeadLetters(), b.DeadLetterCount(bus.ErrActorFailed))

	// 8. Close drains: queued messages are handled, actors stop in reverse
	// start order, later calls get ErrClosed.
	fmt.Fprintln(out, "== close")
	if err := b.Close(ctx); err != nil {
		return err
	}
	_, err = b.Ask(ctx, "greeter", Hello{Name: "late"})
	fmt.Fprintf(out, "ask after close: %v\n", err)
	return nil
}
