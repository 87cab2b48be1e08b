package netbus_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// Two nodes joined over a Unix socket ("tcp://127.0.0.1:7000" works the same
// way): the client asks an actor of the server by name, as it would in
// process.
func Example() {
	dir, _ := os.MkdirTemp("", "netbus-example")
	defer os.RemoveAll(dir)
	addr := "unix:" + filepath.Join(dir, "server.sock")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	server, _ := bus.New(bus.WithName("server"), bus.WithTransport(netbus.New(netbus.Config{Listen: []string{addr}})))
	defer server.Close(ctx)
	server.Register("greet", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if name, ok := msg.(string); ok {
			return c.Reply("hello, " + name)
		}
		return nil
	}))

	client, _ := bus.New(bus.WithName("client"), bus.WithTransport(netbus.New(netbus.Config{Peers: []string{addr}})))
	defer client.Close(ctx)
	client.WaitFor(ctx, "greet") // the server's names arrive just after the link comes up
	reply, err := client.Ask(ctx, "greet", "world")
	fmt.Println(reply, err)
	// Output: hello, world <nil>
}
