// Command rpc_client_server runs a typed rpc service in one process and
// calls it from another, over TCP or a Unix socket.
//
// In one terminal:
//
//	go run ./examples/rpc_client_server server -addr tcp://127.0.0.1:7401
//
// In another:
//
//	go run ./examples/rpc_client_server client -addr tcp://127.0.0.1:7401
//
// (or -addr unix:///tmp/arith.sock on both). The server registers the
// methods of Arith as calls "arith.Add" and "arith.Div", with no type
// registered by hand; the client calls them with types, reads the trailer
// the server sends back, and matches a coded error with errors.Is. On
// SIGINT or SIGTERM the server shuts down gracefully: calls running finish,
// new ones are refused as unavailable, so a client's call goes to another
// instance if there is one.
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
	"strconv"
	"syscall"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/rpc"
)

// Args are the operands of a call.
type Args struct{ A, B int }

// Result is its answer.
type Result struct{ N int }

// Arith is the service: each exported method is one call.
type Arith struct{ calls int }

// Add returns A+B and, in its trailer, how many calls this server took.
func (a *Arith) Add(ctx context.Context, x Args) (Result, error) {
	a.calls++ // one call at a time per method: no lock needed
	rpc.SetTrailer(ctx, rpc.MD{{Key: "served", Value: strconv.Itoa(a.calls)}})
	return Result{x.A + x.B}, nil
}

// Div returns A/B, or CodeInvalidArgument for a division by zero.
func (a *Arith) Div(_ context.Context, x Args) (Result, error) {
	if x.B == 0 {
		return Result{}, rpc.Errorf(rpc.CodeInvalidArgument, "%d / 0: division by zero", x.A)
	}
	return Result{x.A / x.B}, nil
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "rpc_client_server:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("usage: rpc_client_server server|client [-addr tcp://host:port|unix:///path]")
	}
	fs := flag.NewFlagSet(args[0], flag.ContinueOnError)
	addr := fs.String("addr", "tcp://127.0.0.1:7401", "the server's address")
	n := fs.Int("n", 3, "client: calls to make")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	switch args[0] {
	case "server":
		return server(ctx, *addr, out)
	case "client":
		return client(ctx, *addr, *n, out)
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func newBus(name string, tr *netbus.Transport) (*bus.Bus, error) {
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	return bus.New(bus.WithName(name), bus.WithTransport(tr), bus.WithLogger(log))
}

func server(ctx context.Context, addr string, out io.Writer) error {
	tr := netbus.New(netbus.Config{Listen: []string{addr}})
	b, err := newBus("arith-server", tr)
	if err != nil {
		return err
	}
	srv := rpc.NewServer(b)
	if _, err := rpc.Register(b, "arith", &Arith{}, rpc.WithServer(srv)); err != nil {
		return err
	}
	// Catch the signals before saying so: one sent right after the line
	// must not find the default action, which kills the process.
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	fmt.Fprintf(out, "listening on %s\n", tr.Addrs()[0])
	<-ctx.Done()
	shutCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(shutCtx) // running calls finish; new ones are refused
	return errors.Join(err, b.Close(shutCtx))
}

func client(ctx context.Context, addr string, n int, out io.Writer) error {
	b, err := newBus("arith-client", netbus.New(netbus.Config{}))
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
	if err := b.Connect(addr); err != nil { // the bus dials, and redials if the link drops
		return err
	}
	// The server's names arrive just after the link comes up.
	if err := b.WaitFor(ctx, "arith.Add"); err != nil {
		return err
	}
	for i := 1; i <= n; i++ {
		var md rpc.MD
		r, err := rpc.Call[Result](ctx, b, "arith.Add", Args{i, i * 10}, rpc.Trailer(&md))
		if err != nil {
			return err
		}
		served, _ := md.Get("served")
		fmt.Fprintf(out, "%d + %d = %d (call %s on the server)\n", i, i*10, r.N, served)
	}
	// A future: the call runs while the client does something else.
	f := rpc.Go[Result](ctx, b, "arith.Div", Args{84, 2})
	r, err := f.Wait()
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "84 / 2 = %d\n", r.N)
	_, err = rpc.Call[Result](ctx, b, "arith.Div", Args{1, 0})
	fmt.Fprintf(out, "%v; invalid argument: %v\n", err, errors.Is(err, rpc.ErrInvalidArgument))
	return nil
}
