package rpc_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/netbus"
	"github.com/xbus-dev/xbus/rpc"
	"github.com/xbus-dev/xbus/shmbus"
)

// BenchmarkCall measures a unary rpc.Call against the plain bus.Ask of the
// same request to an actor that answers it alike, on one bus, in rounds
// that alternate the two so that the machine's load falls on both alike.
// ns/op covers one of each; call-ns and ask-ns are each alone, x-ask the
// call's time over the Ask's.
func BenchmarkCall(b *testing.B) {
	bb, err := bus.New()
	if err != nil {
		b.Fatal(err)
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		bb.Close(ctx)
	}()
	benchCall(b, bb, bb)
}

// BenchmarkCallUnix is BenchmarkCall across a netbus link over a Unix
// socket between two buses of this process.
func BenchmarkCallUnix(b *testing.B) {
	trB := netbus.New(netbus.Config{Listen: []string{"unix://" + filepath.Join(b.TempDir(), "b.sock")}})
	quiet := bus.WithLogger(slog.New(slog.DiscardHandler))
	server := bustest.NewBus(b, trB, bus.WithName("b"), quiet)
	client := bustest.NewBus(b, netbus.New(netbus.Config{Peers: trB.Addrs()}), bus.WithName("a"), quiet)
	benchCall(b, client, server)
}

// BenchmarkCallTCP is BenchmarkCall across a netbus link over TCP
// loopback between two buses of this process.
func BenchmarkCallTCP(b *testing.B) {
	trB := netbus.New(netbus.Config{Listen: []string{"tcp://127.0.0.1:0"}})
	quiet := bus.WithLogger(slog.New(slog.DiscardHandler))
	server := bustest.NewBus(b, trB, bus.WithName("b"), quiet)
	client := bustest.NewBus(b, netbus.New(netbus.Config{Peers: trB.Addrs()}), bus.WithName("a"), quiet)
	benchCall(b, client, server)
}

// BenchmarkCallShm is BenchmarkCall across a shared-memory link (shmbus)
// between two buses of this process. Between two processes:
// `go test -bench . ./internal/bench/rpcbench` or `xbus bench rpc`.
func BenchmarkCallShm(b *testing.B) {
	if runtime.GOOS != "linux" {
		b.Skip("shmbus needs Linux")
	}
	path := filepath.Join(b.TempDir(), "b.sock")
	quiet := bus.WithLogger(slog.New(slog.DiscardHandler))
	server := bustest.NewBus(b, shmbus.New(shmbus.Config{Listen: path}), bus.WithName("b"), quiet)
	client := bustest.NewBus(b, shmbus.New(shmbus.Config{Dial: []string{path}}), bus.WithName("a"), quiet)
	benchCall(b, client, server)
}

// benchCall times calls and asks from a to handlers on bb.
func benchCall(b *testing.B, a, bb *bus.Bus) {
	if _, err := bb.Register("plain", bus.ActorFunc(func(c *bus.Context, msg any) error {
		if a, ok := msg.(Add); ok {
			return c.Reply(Sum{a.A + a.B})
		}
		return nil
	})); err != nil {
		b.Fatal(err)
	}
	if _, err := rpc.Handle(bb, "typed", func(_ context.Context, a Add) (Sum, error) { return Sum{a.A + a.B}, nil }); err != nil {
		b.Fatal(err)
	}
	// The plain Ask's types are registered by hand, as it needs.
	for _, ts := range []*bus.Types{a.Types(), bb.Types()} {
		_ = bus.RegisterType[Add](ts, "")
		_ = bus.RegisterType[Sum](ts, "")
	}
	for _, n := range []string{"plain", "typed"} {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := a.WaitFor(ctx, n)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	ctx := context.Background()
	const round = 1000
	b.ReportAllocs()
	b.ResetTimer()
	asks := func(n int) time.Duration {
		start := time.Now()
		for i := range n {
			if _, err := bus.AskAs[Sum](ctx, a, "plain", Add{i, 1}); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	calls := func(n int) time.Duration {
		start := time.Now()
		for i := range n {
			if _, err := rpc.Call[Sum](ctx, a, "typed", Add{i, 1}); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	tAsk, tCall := interleave(b, round, asks, calls)
	b.StopTimer()
	b.ReportMetric(float64(tCall.Nanoseconds())/float64(b.N), "call-ns")
	b.ReportMetric(float64(tAsk.Nanoseconds())/float64(b.N), "ask-ns")
	b.ReportMetric(float64(tCall)/float64(max(tAsk, 1)), "x-ask")
}
