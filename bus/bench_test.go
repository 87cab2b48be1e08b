package bus_test

import (
	"context"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
)

// The in-process benchmarks of docs/performance.md. Each one measures xbus
// and then, with the timer stopped, a plain-Go baseline doing the same work
// in the same run, and reports both with their ratio:
//
//	go test -run '^$' -bench . -benchtime 2000000x ./bus   # Tell, Ask
//	go test -run '^$' -bench SpawnIdle -benchtime 1000000x ./bus
//
// Metrics: msgs/s, p50-ns, p99-ns, s/1M and B/actor are xbus's figures;
// the same name with a "chan-" or "goroutine-" prefix is the baseline's; x-
// metrics are xbus divided by the baseline (for msgs/s higher is better, for
// latencies, times and bytes lower is better).

// benchCap is the actors' mailbox capacity and the baseline channels'
// buffer: the bus's default.
const benchCap = 1024

// counting returns an actor that counts payload messages and closes done when
// it has seen want of them. Receive runs on one goroutine at a time, so the
// count needs no atomic.
func counting(want int, done chan struct{}) bus.Actor {
	n := 0
	return bus.ActorFunc(func(_ *bus.Context, m any) error {
		if _, ok := m.(*payload); ok {
			if n++; n == want {
				close(done)
			}
		}
		return nil
	})
}

// tellRun sends total messages split over senders goroutines, sender i to
// actor i%actors, and returns the time until every actor has handled its
// share.
func tellRun(tb testing.TB, total, senders, actors int) time.Duration {
	b, err := bus.New()
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close(context.Background())
	per, want := benchkit.Shares(total, senders, actors)
	refs := make([]bus.Ref, actors)
	dones := make([]chan struct{}, actors)
	for i := range actors {
		dones[i] = make(chan struct{})
		if refs[i], err = b.Spawn(counting(want[i], dones[i])); err != nil {
			tb.Fatal(err)
		}
	}
	d, err := benchkit.Fanout(context.Background(), senders, per, func(i, n int) error {
		ref := refs[i%actors]
		for range n {
			if err := b.Tell(ref, msg); err != nil {
				return err
			}
		}
		return nil
	}, dones)
	if err != nil {
		tb.Fatal(err)
	}
	return d
}

func benchTell(b *testing.B, senders, actors int) {
	b.ReportAllocs()
	total := max(b.N-b.N%senders, senders)
	d := tellRun(b, total, senders, actors)
	b.StopTimer()
	base := benchkit.ChanPipeline(msg, total, senders, actors, benchCap)
	rate, baseRate := float64(total)/d.Seconds(), float64(total)/base.Seconds()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(baseRate, "chan-msgs/s")
	b.ReportMetric(rate/baseRate, "x-chan")
}

// BenchmarkTell: messages per second from senders to actors, against a
// buffered channel of the same capacity feeding one goroutine per receiver.
func BenchmarkTell(b *testing.B) {
	n := runtime.GOMAXPROCS(0)
	b.Run("1to1", func(b *testing.B) { benchTell(b, 1, 1) })
	b.Run("2to1", func(b *testing.B) { benchTell(b, 2, 1) })
	b.Run("NtoN", func(b *testing.B) { benchTell(b, n, n) })
}

// askLatencies times n round trips of Ask to an echo actor, one at a time,
// and returns them sorted.
func askLatencies(tb testing.TB, n int, opts ...bus.ActorOption) []time.Duration {
	b, err := bus.New()
	if err != nil {
		tb.Fatal(err)
	}
	defer b.Close(context.Background())
	ref, err := b.Register("echo", bus.ActorFunc(echo), opts...)
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	lat, err := benchkit.Latencies(n, func() error {
		_, err := b.Ask(ctx, ref, msg)
		return err
	})
	if err != nil {
		tb.Fatal(err)
	}
	return lat
}

// BenchmarkAsk: the round trip of one Ask to an actor that replies at once,
// against a channel ping-pong between two goroutines. Its 8 B/op is the
// benchmark's own slice of latencies; the Ask itself allocates nothing (see
// TestAskAllocationBudget).
func BenchmarkAsk(b *testing.B) { benchAsk(b) }

// BenchmarkAskInline is BenchmarkAsk to an actor registered WithInline:
// Receive runs on the asking goroutine.
func BenchmarkAskInline(b *testing.B) { benchAsk(b, bus.WithInline()) }

func benchAsk(b *testing.B, opts ...bus.ActorOption) {
	b.ReportAllocs()
	lat := askLatencies(b, b.N, opts...)
	b.StopTimer()
	base := benchkit.ChanPingPong(msg, b.N)
	for _, q := range []struct {
		p    float64
		name string
	}{{50, "p50"}, {99, "p99"}} {
		x, y := benchkit.Percentile(lat, q.p), benchkit.Percentile(base, q.p)
		b.ReportMetric(float64(x.Nanoseconds()), q.name+"-ns")
		b.ReportMetric(float64(y.Nanoseconds()), "chan-"+q.name+"-ns")
		b.ReportMetric(float64(x)/float64(max(y, 1)), "x-chan-"+q.name)
	}
}

// spawnIdle spawns n actors that do nothing, waits until each has handled
// Started, and returns the time taken and the live bytes per actor.
func spawnIdle(tb testing.TB, n int) (time.Duration, float64) {
	b, err := bus.New()
	if err != nil {
		tb.Fatal(err)
	}
	var started atomic.Int64
	all := make(chan struct{})
	idle := bus.ActorFunc(func(_ *bus.Context, m any) error {
		if _, ok := m.(bus.Started); ok && started.Add(1) == int64(n) {
			close(all)
		}
		return nil
	})
	d, per, err := benchkit.Footprint(n, func() error {
		for range n {
			if _, err := b.Spawn(idle); err != nil {
				return err
			}
		}
		<-all
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	// Closing stops each idle actor through its system lane (no ring is
	// allocated) and lets the bus's worker goroutines go.
	if err := b.Close(context.Background()); err != nil {
		tb.Fatal(err)
	}
	return d, per
}

// BenchmarkSpawnIdle: spawning b.N idle actors, in seconds per million and
// live bytes per actor, against one goroutine blocked on a channel per actor.
// Run it with -benchtime 1000000x for the million actors; it is a
// benchmark only, never part of a plain go test run.
func BenchmarkSpawnIdle(b *testing.B) {
	d, per := spawnIdle(b, b.N)
	b.StopTimer()
	gd, gper := benchkit.GoroutinesIdle(b.N)
	perM := func(d time.Duration) float64 { return d.Seconds() * 1e6 / float64(b.N) }
	b.ReportMetric(perM(d), "s/1M")
	b.ReportMetric(per, "B/actor")
	b.ReportMetric(perM(gd), "goroutine-s/1M")
	b.ReportMetric(gper, "goroutine-B/actor")
	b.ReportMetric(d.Seconds()/gd.Seconds(), "x-goroutine-time")
	b.ReportMetric(per/gper, "x-goroutine-bytes")
}
