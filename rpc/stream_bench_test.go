package rpc_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/mailbox"
	"github.com/xbus-dev/xbus/rpc"
)

// Blast asks the helper process's "blast" actor to tell To N ticks.
type Blast struct {
	N  int
	To bus.Ref
}

// streamRound is how many items one round of a throughput benchmark moves.
const streamRound = 2000 // below the sink's mailbox (4096)

// BenchmarkStreamThroughput measures a server stream's items per second
// in process against a Go channel of the same capacity as the stream's
// window, between two goroutines, in rounds that alternate the two.
// stream-msgs/s and chan-msgs/s are each alone; x-chan is the channel's
// rate over the stream's.
func BenchmarkStreamThroughput(b *testing.B) {
	bb := benchBus(b)
	const window = bus.DefaultStreamWindow
	if _, err := rpc.HandleServerStream(bb, "ticks", func(ctx context.Context, w Watch, send func(Tick) error) error {
		for i := range w.N {
			if err := send(Tick{i}); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	stream := func(n int) time.Duration {
		start := time.Now()
		got := 0
		for _, err := range rpc.CallServerStream[Tick](ctx, bb, "ticks", Watch{n}) {
			if err != nil {
				b.Fatal(err)
			}
			got++
		}
		if got != n {
			b.Fatalf("%d of %d items", got, n)
		}
		return time.Since(start)
	}
	channel := func(n int) time.Duration {
		start := time.Now()
		ch := make(chan any, window) // items as the stream hands them: in an interface
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
			b.Fatalf("%d of %d items", got, n)
		}
		return time.Since(start)
	}
	alternate(b, stream, channel, "stream", "chan")
}

// BenchmarkStreamThroughputProcess measures a server stream's items per
// second from a peer process, over shared memory, a Unix socket and TCP,
// against the same number of tells the peer sends to an actor here over
// the same link (the link's one-way rate with no credit), in alternating
// rounds.
func BenchmarkStreamThroughputProcess(b *testing.B) {
	for _, pt := range processTransports {
		if pt.name == "shm" && runtime.GOOS != "linux" {
			continue
		}
		b.Run(pt.name, func(b *testing.B) {
			dir := b.TempDir()
			_, line := startHelper(b, "server", pt.name, "RPC_TEST_DIR="+dir)
			addr := line[len("ADDR "):]
			bb := benchBus(b, bus.WithTransport(pt.dial(addr)), bus.WithLogger(quietLog))
			_ = bus.RegisterType[Blast](bb.Types(), "rpc_test.Blast")
			_ = bus.RegisterType[Tick](bb.Types(), "rpc_test.Tick")
			var got atomic.Int64
			done := make(chan struct{}, 1)
			var want atomic.Int64 // written here, read by the sink: the link orders them, which the race detector does not see
			sink, err := bb.Register("sink", bus.ActorFunc(func(c *bus.Context, msg any) error {
				if _, ok := msg.(Tick); ok && got.Add(1) == want.Load() {
					done <- struct{}{}
				}
				return nil
			}), bus.WithMailbox(mailbox.Options{Capacity: 4096})) // a round never fills it: no tell is dropped
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
			defer cancel()
			for _, n := range []string{"ticks", "blast"} {
				if err := bb.WaitFor(wctx, n); err != nil {
					b.Fatal(err)
				}
			}
			stream := func(n int) time.Duration {
				start := time.Now()
				got := 0
				for _, err := range rpc.CallServerStream[Tick](ctx, bb, "ticks", Watch{n}) {
					if err != nil {
						b.Fatal(err)
					}
					if got++; got == n {
						break // the helper's ticks handler sends until its stream ends
					}
				}
				return time.Since(start)
			}
			tells := func(n int) time.Duration {
				got.Store(0)
				want.Store(int64(n))
				start := time.Now()
				r, err := bb.Ask(wctx, "blast", Blast{N: n, To: sink})
				if err != nil || r != "" {
					b.Fatalf("blast: %v, %v", r, err)
				}
				select {
				case <-done:
				case <-wctx.Done():
					b.Fatalf("%d of %d tells arrived", got.Load(), n)
				}
				return time.Since(start)
			}
			alternate(b, stream, tells, "stream", "tell")
		})
	}
}

// alternate runs b.N items through a and z (interleave) and reports each
// one's items per second and z's rate over a's.
func alternate(b *testing.B, a, z func(n int) time.Duration, aName, zName string) {
	b.ResetTimer()
	ta, tz := interleave(b, streamRound, a, z)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/ta.Seconds(), aName+"-msgs/s")
	b.ReportMetric(float64(b.N)/tz.Seconds(), zName+"-msgs/s")
	b.ReportMetric(ta.Seconds()/tz.Seconds(), "x-"+zName)
}

// benchBus returns a bus closed when b ends.
func benchBus(b *testing.B, opts ...bus.Option) *bus.Bus {
	b.Helper()
	bb, err := bus.New(opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		bb.Close(ctx)
	})
	return bb
}

// interleave runs b.N operations through a and z in rounds of up to round,
// alternating which goes first, and returns the time each took.
func interleave(b *testing.B, round int, a, z func(n int) time.Duration) (ta, tz time.Duration) {
	for r, done := 0, 0; done < b.N; r++ {
		n := min(round, b.N-done)
		if r%2 == 0 {
			ta += a(n)
			tz += z(n)
		} else {
			tz += z(n)
			ta += a(n)
		}
		done += n
	}
	return ta, tz
}
