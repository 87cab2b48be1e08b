// Command byte_transports makes the same calls over each transport the bus
// has: in process (a pointer handed to a mailbox), shared memory (package
// shmbus), a Unix socket and TCP (package netbus). Only the speed differs;
// the calls and their results do not.
//
//	go run ./examples/byte_transports
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/shmbus"
)

// Greet asks for a greeting.
type Greet struct{ Name string }

// Greeting answers Greet.
type Greeting struct{ Text string }

func main() {
	if err := run(os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "byte_transports:", err)
		os.Exit(1)
	}
}

// transport is one way of reaching the node that hosts "greet".
type transport struct {
	name string
	// serve returns the serving node's transport (nil: the caller is in the
	// same process) and a function that starts the calling node once the
	// server is up.
	serve func(dir string) (bus.Transport, func() (*bus.Bus, error))
}

func run(out io.Writer) error {
	dir, err := os.MkdirTemp("", "byte-transports")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	transports := []transport{
		{"in-process", func(string) (bus.Transport, func() (*bus.Bus, error)) { return nil, nil }},
		{"shared mem", func(dir string) (bus.Transport, func() (*bus.Bus, error)) {
			path := filepath.Join(dir, "greet.shm")
			return shmbus.New(shmbus.Config{Listen: path}), func() (*bus.Bus, error) {
				return newClient(shmbus.New(shmbus.Config{Dial: []string{path}}))
			}
		}},
		{"unix socket", netbusAt(func(dir string) string { return "unix://" + filepath.Join(dir, "greet.sock") })},
		{"tcp", netbusAt(func(string) string { return "tcp://127.0.0.1:0" })},
	}
	for _, tr := range transports {
		if err := demo(out, dir, tr); err != nil {
			return fmt.Errorf("%s: %w", tr.name, err)
		}
	}
	return nil
}

// netbusAt serves on the address listen gives and dials the address the
// server ended up listening on.
func netbusAt(listen func(dir string) string) func(string) (bus.Transport, func() (*bus.Bus, error)) {
	return func(dir string) (bus.Transport, func() (*bus.Bus, error)) {
		st := netbus.New(netbus.Config{Listen: []string{listen(dir)}})
		return st, func() (*bus.Bus, error) {
			return newClient(netbus.New(netbus.Config{Peers: st.Addrs()}))
		}
	}
}

func newClient(t bus.Transport) (*bus.Bus, error) {
	return bus.New(bus.WithName("client"), bus.WithTransport(t), bus.WithTypes(newTypes()), bus.WithLogger(quiet))
}

func newTypes() *bus.Types {
	types := bus.NewTypes()
	bus.RegisterType[Greet](types, "example.Greet")
	bus.RegisterType[Greeting](types, "example.Greeting")
	return types
}

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

func demo(out io.Writer, dir string, tr transport) error {
	var opts []bus.Option
	st, dial := tr.serve(dir)
	if st != nil {
		opts = append(opts, bus.WithTransport(st))
	}
	server, err := bus.New(append(opts, bus.WithName("server"), bus.WithTypes(newTypes()), bus.WithLogger(quiet))...)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	defer server.Close(ctx)
	server.Register("greet", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if g, ok := msg.(Greet); ok {
			return c.Reply(Greeting{"hello, " + g.Name})
		}
		return nil
	}))
	client := server
	if dial != nil {
		if client, err = dial(); err != nil {
			return err
		}
	}
	if client != server {
		defer client.Close(ctx)
	}
	// The same call on every transport. Over a link the server's names
	// arrive just after the link comes up.
	if err := client.WaitFor(ctx, "greet"); err != nil {
		return err
	}
	g, err := bus.AskAs[Greeting](ctx, client, "greet", Greet{"world"})
	if err != nil {
		return err
	}
	const n = 1000
	start := time.Now()
	for range n {
		if _, err := bus.AskAs[Greeting](ctx, client, "greet", Greet{"world"}); err != nil {
			return err
		}
	}
	per := time.Since(start) / n
	fmt.Fprintf(out, "%-12s %q  (%d asks, %v each)\n", tr.name, g.Text, n, per.Round(100*time.Nanosecond))
	return nil
}
