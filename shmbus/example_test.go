//go:build linux

package shmbus_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/shmbus"
)

// Two nodes joined by shared memory, set up over a Unix socket. They are in
// one process here for the example's sake; across processes (see
// examples/shm) the calls are the same.
func Example() {
	dir, _ := os.MkdirTemp("", "shmbus-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "server.shm")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	server, _ := bus.New(bus.WithName("server"), bus.WithTransport(shmbus.New(shmbus.Config{Listen: path})))
	defer server.Close(ctx)
	server.Register("greet", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if name, ok := msg.(string); ok {
			return c.Reply("hello, " + name)
		}
		return nil
	}))

	client, _ := bus.New(bus.WithName("client"), bus.WithTransport(shmbus.New(shmbus.Config{Dial: []string{path}})))
	defer client.Close(ctx)
	client.WaitFor(ctx, "greet") // the server's names arrive just after the link comes up
	reply, err := client.Ask(ctx, "greet", "world")
	fmt.Println(reply, err)
	// Output: hello, world <nil>
}
