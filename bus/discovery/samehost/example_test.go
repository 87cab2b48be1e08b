//go:build linux

package samehost_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/discovery/samehost"
)

// Two nodes started the same way, with one option, find each other through
// the runtime directory and link over shared memory. Real programs leave
// Config zero (the user's runtime directory); the example uses a directory
// of its own.
func Example() {
	tmp, _ := os.MkdirTemp("", "samehost-example")
	defer os.RemoveAll(tmp)
	cfg := samehost.Config{Dir: filepath.Join(tmp, "xbus")}

	node := func() *bus.Bus {
		b, err := bus.New(bus.WithLogger(slog.New(slog.DiscardHandler)), samehost.Enable(cfg))
		if err != nil {
			panic(err)
		}
		return b
	}
	server := node()
	defer server.Close(context.Background())
	server.Register("greet", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if name, ok := msg.(string); ok {
			return c.Reply("hello, " + name)
		}
		return nil
	}))

	client := node()
	defer client.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := client.WaitFor(ctx, "greet"); err != nil {
		panic(err)
	}
	reply, err := client.Ask(ctx, "greet", "gopher")
	fmt.Println(reply, err)
	fmt.Println("link:", client.Links()[0].Scheme)
	// Output:
	// hello, gopher <nil>
	// link: shm
}
