// Package rpcbench measures a unary rpc call against the bus's plain Ask of
// the same request, for `xbus bench rpc` and `go test ./internal/bench/rpcbench`:
// in process, and between this process and a peer process over TCP and
// shared memory, each pair measured in alternating rounds of the same run.
//
// The peer process is the running executable started again through
// benchkit.StartPeer; the xbus command's hidden bench-peer subcommand and
// this package's TestMain run Peer in it.
package rpcbench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/rpc"
	"github.com/xbus-dev/xbus/shmbus"
)

// PeerName is the peer's name for benchkit.StartPeer.
const PeerName = "rpc"

// Add is the request, Sum the response, of both the plain actor and the
// typed handler.
type (
	Add struct{ A, B int }
	Sum struct{ N int }
)

var quiet = bus.WithLogger(slog.New(slog.DiscardHandler))

// serve registers on b the actor "plain", which answers an Add with its
// Sum, and the rpc handler "typed", which does the same.
func serve(b *bus.Bus) error {
	if _, err := b.Register("plain", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if a, ok := msg.(Add); ok {
			return c.Reply(Sum{a.A + a.B})
		}
		return nil
	})); err != nil {
		return err
	}
	_, err := rpc.Handle(b, "typed", func(_ context.Context, a Add) (Sum, error) { return Sum{a.A + a.B}, nil })
	return err
}

// newBus returns a bus on tr (none: nil) with the types of the plain Ask
// registered by hand, as it needs; rpc registers them itself for a call.
func newBus(name string, tr bus.Transport) (*bus.Bus, error) {
	types := bus.NewTypes()
	if err := errors.Join(bus.RegisterType[Add](types, ""), bus.RegisterType[Sum](types, "")); err != nil {
		return nil, err
	}
	opts := []bus.Option{bus.WithName(name), bus.WithTypes(types), quiet}
	if tr != nil {
		opts = append(opts, bus.WithTransport(tr))
	}
	return bus.New(opts...)
}

// Compare makes asks to "plain" and calls to "typed" from a, rounds of
// round each, alternating which goes first, total of each in all; it
// returns the median time per ask and per call over the rounds.
func Compare(a *bus.Bus, total, round int) (ask, call time.Duration, err error) {
	ctx := context.Background()
	asks := func(n int) (time.Duration, error) {
		start := time.Now()
		for i := range n {
			if _, err := bus.AskAs[Sum](ctx, a, "plain", Add{i, 1}); err != nil {
				return 0, err
			}
		}
		return time.Since(start) / time.Duration(n), nil
	}
	calls := func(n int) (time.Duration, error) {
		start := time.Now()
		for i := range n {
			if _, err := rpc.Call[Sum](ctx, a, "typed", Add{i, 1}); err != nil {
				return 0, err
			}
		}
		return time.Since(start) / time.Duration(n), nil
	}
	var tAsk, tCall []time.Duration
	for r, n := range slices.Collect(benchkit.Rounds(total, round, 1)) {
		first, second := asks, calls
		if r%2 == 1 {
			first, second = calls, asks
		}
		x, err := first(n)
		if err != nil {
			return 0, 0, err
		}
		y, err := second(n)
		if err != nil {
			return 0, 0, err
		}
		if r%2 == 1 {
			x, y = y, x
		}
		tAsk, tCall = append(tAsk, x), append(tCall, y)
	}
	slices.Sort(tAsk)
	slices.Sort(tCall)
	return benchkit.Percentile(tAsk, .5), benchkit.Percentile(tCall, .5), nil
}

// waitNames waits until a reaches both of the peer's names.
func waitNames(a *bus.Bus) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(a.WaitFor(ctx, "plain"), a.WaitFor(ctx, "typed"))
}

func closeBus(b *bus.Bus) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	b.Close(ctx)
}

// RunBench is the suite of `xbus bench rpc`: a unary call beside the plain
// Ask of the same request in process, then to a peer process over TCP and
// over shared memory (Linux). quick shortens every measurement.
func RunBench(out benchkit.Out, quick bool) error {
	total, round := 200_000, 2_000
	if quick {
		total, round = 2_000, 200
	}
	row := func(name string, ask, call time.Duration, target float64) {
		r := benchkit.Row{Name: name + ": unary rpc.Call (plain bus.Ask)", Unit: benchkit.Nanos,
			Xbus: float64(max(call, 1)), Baseline: float64(max(ask, 1))}
		r.Target, r.Status = fmt.Sprintf("≤ %g×", target), benchkit.Verdict(r.Ratio() <= target)
		out.Row(r)
	}

	out.Progress("in process: %d asks and %d calls, in alternating rounds of %d", total, total, round)
	b, err := newBus("rpcbench", nil)
	if err != nil {
		return err
	}
	err = serve(b)
	if err == nil {
		var ask, call time.Duration
		if ask, call, err = Compare(b, total, round); err == nil {
			row("in process", ask, call, 1.25)
		}
	}
	closeBus(b)
	if err != nil {
		return err
	}

	out.Progress("starting the peer process")
	dir, err := os.MkdirTemp("", "rpcbench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	p, err := benchkit.StartPeer(PeerName, dir)
	if err != nil {
		return err
	}
	defer p.Stop()
	f := strings.Fields(p.Ready) // "ready", the TCP address, the shm socket or "-"
	if len(f) != 3 {
		return fmt.Errorf("rpcbench: the peer said %q", p.Ready)
	}
	kinds := []struct {
		name string
		tr   func() bus.Transport
	}{{"TCP, two processes", func() bus.Transport { return netbus.New(netbus.Config{Peers: []string{f[1]}}) }}}
	if f[2] != "-" {
		kinds = append(kinds, struct {
			name string
			tr   func() bus.Transport
		}{"shm, two processes", func() bus.Transport { return shmbus.New(shmbus.Config{Dial: []string{f[2]}}) }})
	}
	total, round = total/4, round/4
	for _, k := range kinds {
		out.Progress("%s: %d asks and %d calls, in alternating rounds of %d", k.name, total, total, round)
		a, err := newBus("rpcbench-caller", k.tr())
		if err != nil {
			return err
		}
		err = waitNames(a)
		var ask, call time.Duration
		if err == nil {
			ask, call, err = Compare(a, total, round)
		}
		closeBus(a)
		if err != nil {
			return fmt.Errorf("rpcbench: %s: %w", k.name, err)
		}
		row(k.name, ask, call, 1.1)
	}
	return nil
}

// Peer is the peer process: a bus serving "plain" and "typed" on TCP
// loopback and, on Linux, on shared memory through a Unix socket in dir. It
// prints "ready", its TCP address and its shm socket ("-" for none), and
// returns when stdin closes.
func Peer(dir string) int {
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "rpcbench peer:", err); return 1 }
	tcp := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	opts := []bus.Option{bus.WithTransport(tcp)}
	shm := "-"
	if runtime.GOOS == "linux" {
		shm = filepath.Join(dir, "shm.sock")
		opts = append(opts, bus.WithTransport(shmbus.New(shmbus.Config{Listen: shm})))
	}
	types := bus.NewTypes()
	if err := errors.Join(bus.RegisterType[Add](types, ""), bus.RegisterType[Sum](types, "")); err != nil {
		return fail(err)
	}
	b, err := bus.New(append(opts, bus.WithName("rpcbench-peer"), bus.WithTypes(types), quiet)...)
	if err != nil {
		return fail(err)
	}
	defer closeBus(b)
	if err := serve(b); err != nil {
		return fail(err)
	}
	fmt.Printf("ready %s %s\n", tcp.Addrs()[0], shm)
	_, _ = bufio.NewReader(os.Stdin).ReadString('\n') // until the parent closes stdin
	return 0
}
