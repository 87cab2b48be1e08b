// Command byte_transports makes the same calls over each transport the bus
// has: in process (a pointer handed to a mailbox), a Unix socket and TCP
// (package netbus). Only the speed differs; the calls and their results do
// not.
//
//	go run ./examples/byte_transports
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
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

// transport is one way of reaching the node that hosts "greet": it returns
// the bus to call from and a cleanup.
type transport struct {
	name  string
	setup func(server *bus.Bus, serverT *netbus.Transport) (client *bus.Bus, err error)
	// listen is the address the serving node listens on ("" for none).
	listen func(dir string) string
}

func run(out io.Writer) error {
	dir, err := os.MkdirTemp("", "byte-transports")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	transports := []transport{
		{name: "in-process", listen: func(string) string { return "" },
			setup: func(server *bus.Bus, _ *netbus.Transport) (*bus.Bus, error) { return server, nil }},
		// Shared memory (package shmbus) goes here, between in-process and
		// the Unix socket, once it exists: a client bus with
		// bus.WithTransport(shmbus.New(...)) connected to the server.
		{name: "unix socket", listen: func(dir string) string { return "unix://" + filepath.Join(dir, "greet.sock") }, setup: dialed},
		{name: "tcp", listen: func(string) string { return "tcp://127.0.0.1:0" }, setup: dialed},
	}
	for _, tr := range transports {
		if err := demo(out, dir, tr); err != nil {
			return fmt.Errorf("%s: %w", tr.name, err)
		}
	}
	return nil
}

func newTypes() *bus.Types {
	types := bus.NewTypes()
	bus.RegisterType[Greet](types, "example.Greet")
	bus.RegisterType[Greeting](types, "example.Greeting")
	return types
}

var quiet = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

// dialed starts a second bus whose netbus transport dials the server.
func dialed(_ *bus.Bus, serverT *netbus.Transport) (*bus.Bus, error) {
	ct := netbus.New(netbus.Config{})
	client, err := bus.New(bus.WithName("client"), bus.WithTransport(ct), bus.WithTypes(newTypes()), bus.WithLogger(quiet))
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := ct.Dial(ctx, serverT.Addrs()[0]); err != nil {
		return nil, err
	}
	return client, nil
}

func demo(out io.Writer, dir string, tr transport) error {
	var opts []bus.Option
	var st *netbus.Transport
	if addr := tr.listen(dir); addr != "" {
		st = netbus.New(netbus.Config{Listen: []string{addr}})
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
	client, err := tr.setup(server, st)
	if err != nil {
		return err
	}
	if client != server {
		defer client.Close(ctx)
	}
	// The same call on every transport. Over a socket the server's names
	// arrive just after the link comes up.
	var g Greeting
	for {
		g, err = bus.AskAs[Greeting](ctx, client, "greet", Greet{"world"})
		if !errors.Is(err, bus.ErrNoRoute) {
			break
		}
		time.Sleep(time.Millisecond)
	}
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
