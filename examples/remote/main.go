// Command remote runs the bus across two processes over TCP: a server that
// hosts an "add" service and a client that calls it by name.
//
// In one terminal:
//
//	go run ./examples/remote server -listen tcp://127.0.0.1:7400 -secret s3cret
//
// In another:
//
//	go run ./examples/remote client -connect tcp://127.0.0.1:7400 -secret s3cret
//
// The client asks the server to add pairs of numbers, prints the sums, and
// shows that an error returned by the remote actor keeps its identity.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
)

// Add asks for A+B.
type Add struct{ A, B int }

// Sum is the answer to Add.
type Sum struct{ N int }

// ErrNegative is what the server answers for negative operands. Both
// binaries register it under one name, so the client matches it with
// errors.Is though it crossed a socket.
var ErrNegative = errors.New("add: negative operands")

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "remote:", err)
		os.Exit(1)
	}
}

func newBus(name string, tr *netbus.Transport) (*bus.Bus, error) {
	types := bus.NewTypes()
	// Both binaries name the types the same way, so bodies decode on the
	// far side into the right Go type.
	for _, err := range []error{
		bus.RegisterType[Add](types, "remote.Add"),
		bus.RegisterType[Sum](types, "remote.Sum"),
		types.RegisterError("remote.negative", ErrNegative),
	} {
		if err != nil {
			return nil, err
		}
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return bus.New(bus.WithName(name), bus.WithTransport(tr), bus.WithTypes(types), bus.WithLogger(log))
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: remote server|client [flags]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	listen := fs.String("listen", "tcp://127.0.0.1:7400", "server: address to listen on")
	connect := fs.String("connect", "tcp://127.0.0.1:7400", "client: address of the server")
	secret := fs.String("secret", os.Getenv("XBUS_SECRET"), "shared secret (both sides)")
	n := fs.Int("n", 3, "client: number of additions")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "server":
		return server(ctx, *listen, *secret, out)
	case "client":
		return client(ctx, *connect, *secret, *n, out)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func server(ctx context.Context, listen, secret string, out io.Writer) error {
	tr := netbus.New(netbus.Config{Listen: []string{listen}, Secret: []byte(secret)})
	b, err := newBus("adder", tr)
	if err != nil {
		return err
	}
	_, err = b.Register("add", bus.ActorFunc(func(c *bus.Context, msg any) error {
		m, ok := msg.(Add)
		if !ok {
			return nil // lifecycle messages
		}
		if m.A < 0 || m.B < 0 {
			c.ReplyError(fmt.Errorf("%d + %d: %w", m.A, m.B, ErrNegative))
			return nil
		}
		return c.Reply(Sum{m.A + m.B})
	}))
	if err != nil {
		return err
	}
	// Catch the signals before saying so: one sent right after the line
	// must not find the default action, which kills the process.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(out, "listening on %s\n", tr.Addrs()[0])
	<-ctx.Done()
	closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return b.Close(closeCtx)
}

func client(ctx context.Context, connect, secret string, n int, out io.Writer) error {
	tr := netbus.New(netbus.Config{Secret: []byte(secret)})
	b, err := newBus("caller", tr)
	if err != nil {
		return err
	}
	defer func() {
		closeCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		b.Close(closeCtx)
	}()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := b.Connect(connect); err != nil { // the bus dials, and redials if the link drops
		return err
	}
	// The server's names arrive just after the link comes up.
	if err := b.WaitFor(ctx, "add"); err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		sum, err := bus.AskAs[Sum](ctx, b, "add", Add{i, i * 10})
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%d + %d = %d\n", i, i*10, sum.N)
	}
	_, err = b.Ask(ctx, "add", Add{-1, 1})
	fmt.Fprintf(out, "%v; matches ErrNegative: %v\n", err, errors.Is(err, ErrNegative))
	return nil
}
