package rpc_test

import (
	"context"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/rpc"
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
	ctx := context.Background()
	const round = 1000
	var tAsk, tCall time.Duration
	b.ReportAllocs()
	b.ResetTimer()
	asks := func(n int) time.Duration {
		start := time.Now()
		for i := range n {
			if _, err := bus.AskAs[Sum](ctx, bb, "plain", Add{i, 1}); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	calls := func(n int) time.Duration {
		start := time.Now()
		for i := range n {
			if _, err := rpc.Call[Sum](ctx, bb, "typed", Add{i, 1}); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	for r, done := 0, 0; done < b.N; r++ {
		n := min(round, b.N-done)
		if r%2 == 0 { // each goes first in every other round
			tAsk += asks(n)
			tCall += calls(n)
		} else {
			tCall += calls(n)
			tAsk += asks(n)
		}
		done += n
	}
	b.StopTimer()
	b.ReportMetric(float64(tCall.Nanoseconds())/float64(b.N), "call-ns")
	b.ReportMetric(float64(tAsk.Nanoseconds())/float64(b.N), "ask-ns")
	b.ReportMetric(float64(tCall)/float64(max(tAsk, 1)), "x-ask")
}
