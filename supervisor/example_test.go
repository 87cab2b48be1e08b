package supervisor_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/supervisor"
)

// counter counts "add" messages and panics on "crash".
type counter struct{ n int }

func (c *counter) Receive(ctx *bus.Context, msg any) error {
	switch msg {
	case "add":
		c.n++
	case "crash":
		panic("counter crashed")
	case "get":
		return ctx.Reply(c.n)
	}
	return nil
}

func Example() {
	b, _ := bus.New(bus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	defer b.Close(context.Background())
	ctx := context.Background()

	_, _, err := supervisor.Start(ctx, b, supervisor.Spec{
		Name:    "app",
		Backoff: supervisor.Backoff{Disabled: true},
		Children: []supervisor.ChildSpec{
			{Name: "counter", New: func() bus.Actor { return &counter{} }},
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	_ = b.Tell("counter", "add")
	_ = b.Tell("counter", "crash") // dead-lettered; the counter restarts
	_ = b.Tell("counter", "add")   // queued meanwhile: the new instance gets it
	n, _ := bus.AskAs[int](ctx, b, "counter", "get")
	fmt.Println("count after the restart:", n)

	st, _ := supervisor.Query(ctx, b, "app") // or sup.Status() from any goroutine
	c, _ := st.Child("counter")
	fmt.Println("restarts:", c.Restarts, "state:", c.State, "last failure:", c.LastFailure)
	fmt.Println("dead letters:", b.DeadLetterCount(bus.ErrActorFailed))
	// Output:
	// count after the restart: 1
	// restarts: 1 state: running last failure: panic: counter crashed
	// dead letters: 1
}
