// Package rpcbench measures a unary rpc call against the bus's plain Ask of
// the same request, and a server stream's items per second against a Go
// channel (in process) or the same peer's tells over the same link (between
// processes), for `xbus bench rpc` and `go test ./internal/bench/rpcbench`:
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
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/mailbox"
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

// Watch asks the stream handler "ticks" for N Ticks; Blast asks the actor
// "blast" to tell To N Ticks, the one-way baseline of a stream.
type (
	Watch struct{ N int }
	Tick  struct{ I int }
	Blast struct {
		N  int
		To bus.Ref
	}
)

// sinkRoom is the capacity of the mailbox that counts a round's tells: more
// than a round, so that no tell is refused.
const sinkRoom = 8192

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
	if _, err := rpc.Handle(b, "typed", func(_ context.Context, a Add) (Sum, error) { return Sum{a.A + a.B}, nil }); err != nil {
		return err
	}
	if _, err := rpc.HandleServerStream(b, "ticks", func(ctx context.Context, w Watch, send func(Tick) error) error {
		for i := range w.N {
			if err := send(Tick{i}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		return err
	}
	_, err := b.Register("blast", bus.ActorFunc(func(c *bus.Context, msg any) error {
		bl, ok := msg.(Blast)
		if !ok {
			return nil
		}
		for i := range bl.N {
			if err := c.Tell(bl.To, Tick{i}); err != nil {
				return c.Reply(err.Error())
			}
		}
		return c.Reply("")
	}))
	return err
}

// newBus returns a bus on tr (none: nil) with the types of the plain Ask
// registered by hand, as it needs; rpc registers them itself for a call.
func newBus(name string, tr bus.Transport) (*bus.Bus, error) {
	types := bus.NewTypes()
	if err := registerTypes(types); err != nil {
		return nil, err
	}
	opts := []bus.Option{bus.WithName(name), bus.WithTypes(types), quiet}
	if tr != nil {
		opts = append(opts, bus.WithTransport(tr))
	}
	return bus.New(opts...)
}

// registerTypes registers the types of the plain Ask and of the tells.
func registerTypes(types *bus.Types) error {
	return errors.Join(bus.RegisterType[Add](types, ""), bus.RegisterType[Sum](types, ""),
		bus.RegisterType[Blast](types, ""), bus.RegisterType[Tick](types, ""))
}

// alternateRounds runs total items through x and y in rounds of round,
// alternating which goes first, and returns the median time per item of
// each over the rounds.
func alternateRounds(total, round int, x, y func(n int) (time.Duration, error)) (tx, ty time.Duration, err error) {
	var xs, ys []time.Duration
	for r, n := range slices.Collect(benchkit.Rounds(total, round, 1)) {
		first, second := x, y
		if r%2 == 1 {
			first, second = y, x
		}
		a, err := first(n)
		if err != nil {
			return 0, 0, err
		}
		b, err := second(n)
		if err != nil {
			return 0, 0, err
		}
		if r%2 == 1 {
			a, b = b, a
		}
		xs, ys = append(xs, a/time.Duration(n)), append(ys, b/time.Duration(n))
	}
	slices.Sort(xs)
	slices.Sort(ys)
	return benchkit.Percentile(xs, .5), benchkit.Percentile(ys, .5), nil
}

// streamItems receives a server stream of n Ticks from "ticks" on a.
func streamItems(a *bus.Bus, n int) (time.Duration, error) {
	start := time.Now()
	got := 0
	for _, err := range rpc.CallServerStream[Tick](context.Background(), a, "ticks", Watch{n}) {
		if err != nil {
			return 0, err
		}
		got++
	}
	if got != n {
		return 0, fmt.Errorf("rpcbench: %d of %d stream items", got, n)
	}
	return time.Since(start), nil
}

// channelItems passes n Ticks in interfaces, as a stream hands them over,
// through a channel of a stream window's capacity between two goroutines.
func channelItems(n int) (time.Duration, error) {
	start := time.Now()
	ch := make(chan any, bus.DefaultStreamWindow)
	go func() {
		for i := range n {
			ch <- Tick{i}
		}
		close(ch)
	}()
	got := 0
	for m := range ch {
		if _, ok := m.(Tick); ok {
			got++
		}
	}
	if got != n {
		return 0, fmt.Errorf("rpcbench: %d of %d channel items", got, n)
	}
	return time.Since(start), nil
}

// tellItems returns a round of the one-way baseline across a link: it asks
// the peer's "blast" to tell n Ticks to an actor on a, and times them until
// the last arrives.
func tellItems(a *bus.Bus) (func(n int) (time.Duration, error), error) {
	// Atomics: what orders the sink's reads after a round's start is the
	// link between the processes, which the race detector does not see.
	var got, want atomic.Int64
	done := make(chan struct{}, 1)
	sink, err := a.Register("sink", bus.ActorFunc(func(_ *bus.Context, msg any) error {
		if _, ok := msg.(Tick); ok && got.Add(1) == want.Load() {
			done <- struct{}{}
		}
		return nil
	}), bus.WithMailbox(mailbox.Options{Capacity: sinkRoom}))
	if err != nil {
		return nil, err
	}
	return func(n int) (time.Duration, error) {
		got.Store(0)
		want.Store(int64(n))
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		start := time.Now()
		r, err := a.Ask(ctx, "blast", Blast{N: n, To: sink})
		if err != nil || r != "" {
			return 0, fmt.Errorf("rpcbench: blast: %v %v", r, err)
		}
		select {
		case <-done:
		case <-ctx.Done():
			return 0, fmt.Errorf("rpcbench: %d of %d tells of a round arrived", got.Load(), n)
		}
		return time.Since(start), nil
	}, nil
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
		return time.Since(start), nil
	}
	calls := func(n int) (time.Duration, error) {
		start := time.Now()
		for i := range n {
			if _, err := rpc.Call[Sum](ctx, a, "typed", Add{i, 1}); err != nil {
				return 0, err
			}
		}
		return time.Since(start), nil
	}
	return alternateRounds(total, round, asks, calls)
}

// waitNames waits until a reaches each of the peer's names.
func waitNames(a *bus.Bus) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return errors.Join(a.WaitFor(ctx, "plain"), a.WaitFor(ctx, "typed"), a.WaitFor(ctx, "ticks"), a.WaitFor(ctx, "blast"))
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
	streamRow := func(name, baseline string, stream, base time.Duration) {
		out.Row(benchkit.Row{Name: name + ": server stream items (" + baseline + ")", Unit: benchkit.PerSec,
			Xbus: float64(time.Second) / float64(max(stream, 1)), Baseline: float64(time.Second) / float64(max(base, 1))})
	}
	items, itemRound := 400_000, 2_000
	if quick {
		items, itemRound = 4_000, 400
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
	if err == nil {
		out.Progress("in process: %d stream items and %d through a channel, in alternating rounds of %d", items, items, itemRound)
		var st, ch time.Duration
		st, ch, err = alternateRounds(items, itemRound, func(n int) (time.Duration, error) { return streamItems(b, n) }, channelItems)
		if err == nil {
			streamRow("in process", "a Go channel of the window's capacity", st, ch)
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
		var ask, call, st, tl time.Duration
		if err == nil {
			ask, call, err = Compare(a, total, round)
		}
		if err == nil {
			out.Progress("%s: %d stream items and %d tells, in alternating rounds of %d", k.name, items/4, items/4, itemRound)
			var tells func(int) (time.Duration, error)
			if tells, err = tellItems(a); err == nil {
				st, tl, err = alternateRounds(items/4, itemRound, func(n int) (time.Duration, error) { return streamItems(a, n) }, tells)
			}
		}
		closeBus(a)
		if err != nil {
			return fmt.Errorf("rpcbench: %s: %w", k.name, err)
		}
		row(k.name, ask, call, 1.1)
		streamRow(k.name, "the peer's tells over the same link", st, tl)
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
	if err := registerTypes(types); err != nil {
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
