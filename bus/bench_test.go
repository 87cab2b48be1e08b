package bus_test

import (
	"runtime"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/internal/busbench"
)

// The in-process benchmarks of docs/performance.md, through
// internal/busbench (which `xbus bench inproc` calls too). Each one measures
// xbus and then, with the timer stopped, a plain-Go baseline doing the same work
// in the same run, and reports both with their ratio:
//
//	go test -run '^$' -bench . -benchtime 2000000x ./bus   # Tell, Ask
//	go test -run '^$' -bench SpawnIdle -benchtime 1000000x ./bus
//
// Metrics: msgs/s, p50-ns, p99-ns, s/1M and B/actor are xbus's figures;
// the same name with a "chan-" or "goroutine-" prefix is the baseline's; x-
// metrics are xbus divided by the baseline (for msgs/s higher is better, for
// latencies, times, bytes and CPU lower is better). cpu-ns/msg is the
// process's CPU time per message (on Unix), which load from elsewhere on the
// machine skews less than a rate; with -cpu 1 it is the whole cost of a
// message, sender and actor on one processor.

func benchTell(b *testing.B, senders, actors int) {
	b.ReportAllocs()
	total := max(b.N-b.N%senders, senders)
	c0 := benchkit.CPUTime()
	d, err := busbench.Tell(total, senders, actors)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	c1 := benchkit.CPUTime()
	base := benchkit.ChanPipeline(busbench.Msg, total, senders, actors, busbench.MailboxCap)
	c2 := benchkit.CPUTime()
	rate, baseRate := float64(total)/d.Seconds(), float64(total)/base.Seconds()
	b.ReportMetric(rate, "msgs/s")
	b.ReportMetric(baseRate, "chan-msgs/s")
	b.ReportMetric(rate/baseRate, "x-chan")
	if c2 > 0 {
		// CPU per message, both sides together: what other load on the
		// machine changes least.
		cpu, baseCPU := float64(c1-c0)/float64(total), float64(c2-c1)/float64(total)
		b.ReportMetric(cpu, "cpu-ns/msg")
		b.ReportMetric(baseCPU, "chan-cpu-ns/msg")
		b.ReportMetric(cpu/baseCPU, "x-chan-cpu")
	}
}

// BenchmarkTell: messages per second from senders to actors, against a
// buffered channel of the same capacity feeding one goroutine per receiver.
func BenchmarkTell(b *testing.B) {
	n := runtime.GOMAXPROCS(0)
	b.Run("1to1", func(b *testing.B) { benchTell(b, 1, 1) })
	b.Run("2to1", func(b *testing.B) { benchTell(b, 2, 1) })
	b.Run("NtoN", func(b *testing.B) { benchTell(b, n, n) })
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
	lat, err := busbench.AskLatencies(b.N, opts...)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	base := benchkit.ChanPingPong(busbench.Msg, b.N)
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

// BenchmarkSpawnIdle: spawning b.N idle actors, in seconds per million (and
// the process's CPU seconds per million over the same time, which other
// load on the machine skews less) and live bytes per actor, against one
// goroutine blocked on a channel per actor.
// Run it with -benchtime 1000000x for the million actors; it is a
// benchmark only, never part of a plain go test run.
func BenchmarkSpawnIdle(b *testing.B) {
	d, cpu, per, err := busbench.SpawnIdle(b.N)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	gd, gper := benchkit.GoroutinesIdle(b.N)
	perM := func(d time.Duration) float64 { return d.Seconds() * 1e6 / float64(b.N) }
	b.ReportMetric(perM(d), "s/1M")
	b.ReportMetric(perM(cpu), "cpu-s/1M")
	b.ReportMetric(per, "B/actor")
	b.ReportMetric(perM(gd), "goroutine-s/1M")
	b.ReportMetric(gper, "goroutine-B/actor")
	b.ReportMetric(d.Seconds()/gd.Seconds(), "x-goroutine-time")
	b.ReportMetric(per/gper, "x-goroutine-bytes")
}
