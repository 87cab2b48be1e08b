package busbench

import (
	"context"
	"fmt"
	"runtime"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
)

// The in-process suite: the same measurements as bus/bench_test.go, with
// fixed counts so that the whole suite takes well under a minute.
// Throughput rows report the median of three runs, each xbus run followed
// by its baseline run, so a noisy neighbour hurts both alike.

type counts struct {
	tell, ask, spawn, reps int
}

func countsFor(quick bool) counts {
	if quick {
		return counts{tell: 20_000, ask: 2_000, spawn: 10_000, reps: 1}
	}
	return counts{tell: 2_000_000, ask: 300_000, spawn: 1_000_000, reps: 3}
}

// RunBench is the suite of `xbus bench inproc`: Tell throughput, Ask
// latency, spawning idle actors and allocations, each beside a plain-Go
// baseline doing the same work in the same run. quick shrinks every count
// a hundredfold.
func RunBench(out benchkit.Out, quick bool) error {
	c := countsFor(quick)
	n := runtime.GOMAXPROCS(0)
	for _, t := range []struct {
		name            string
		senders, actors int
		target          float64 // minimum ratio, or 0
	}{
		{"Tell to a Ref 1→1 (buffered chan → 1 goroutine)", 1, 1, 1.0},
		{"Tell to a Ref 2→1 (2 senders → 1 buffered chan)", 2, 1, 1.0},
		{fmt.Sprintf("Tell %d→%d (%d buffered chans)", n, n, n), n, n, 0},
	} {
		out.Progress("%s, %d messages, %d runs", t.name, c.tell, c.reps)
		var rates, baseRates []float64
		for range c.reps {
			d, err := Tell(c.tell, t.senders, t.actors)
			if err != nil {
				return err
			}
			rates = append(rates, float64(c.tell)/d.Seconds())
			base := benchkit.ChanPipeline(Msg, c.tell, t.senders, t.actors, MailboxCap)
			baseRates = append(baseRates, float64(c.tell)/base.Seconds())
		}
		r := benchkit.Row{Name: t.name, Unit: benchkit.PerSec, Xbus: benchkit.Median(rates), Baseline: benchkit.Median(baseRates)}
		if t.target > 0 {
			r.Target = fmt.Sprintf("≥ %.1f×", t.target)
			r.Status = benchkit.Verdict(r.Ratio() >= t.target)
		}
		out.Row(r)
	}

	for _, t := range []struct {
		name      string
		instances int
	}{
		{"Tell by name 1→1, time per message (Tell to a Ref)", 1},
		{"Tell by name to 3 instances, time per message (Tell to their Refs in turn)", 3},
	} {
		out.Progress("%s, %d messages, %d runs each, alternating", t.name, c.tell, c.reps)
		var byName, byRef []float64
		for range c.reps {
			d, err := TellSpread(c.tell, t.instances, true)
			if err != nil {
				return err
			}
			byName = append(byName, float64(d)/float64(c.tell))
			if d, err = TellSpread(c.tell, t.instances, false); err != nil {
				return err
			}
			byRef = append(byRef, float64(d)/float64(c.tell))
		}
		r := benchkit.Row{Name: t.name, Unit: benchkit.Nanos,
			Xbus: benchkit.Median(byName), Baseline: benchkit.Median(byRef), Target: "≤ 1.15×"}
		r.Status = benchkit.Verdict(r.Ratio() <= 1.15)
		out.Row(r)
	}

	for _, a := range []struct {
		name    string // a format of the percentile
		opts    []bus.ActorOption
		targets map[float64]float64 // percentile: maximum ratio
	}{
		{"Ask round trip p%g (chan ping-pong)", nil, map[float64]float64{50: 1.5, 99: 3}},
		{"Ask round trip p%g, actor WithInline (chan ping-pong)", []bus.ActorOption{bus.WithInline()}, nil},
	} {
		out.Progress("%s, %d asks", fmt.Sprintf(a.name, 50.0), c.ask)
		lat, err := AskLatencies(c.ask, a.opts...)
		if err != nil {
			return err
		}
		base := benchkit.ChanPingPong(Msg, c.ask)
		for _, q := range []float64{50, 99} {
			r := benchkit.Row{
				Name:     fmt.Sprintf(a.name, q),
				Unit:     benchkit.Nanos,
				Xbus:     float64(benchkit.Percentile(lat, q)),
				Baseline: float64(max(benchkit.Percentile(base, q), 1)),
			}
			if max, ok := a.targets[q]; ok {
				r.Target = fmt.Sprintf("≤ %g×", max)
				r.Status = benchkit.Verdict(r.Ratio() <= max)
			}
			out.Row(r)
		}
	}

	out.Progress("spawning %s idle actors, then as many goroutines", benchkit.Abbrev(c.spawn))
	d, _, per, err := SpawnIdle(c.spawn)
	if err != nil {
		return err
	}
	gd, gper := benchkit.GoroutinesIdle(c.spawn)
	perM := func(d time.Duration) float64 { return d.Seconds() * 1e6 / float64(c.spawn) }
	out.Row(benchkit.Row{
		Name: fmt.Sprintf("spawn %s idle actors, per 1M (goroutines blocked on a chan)", benchkit.Abbrev(c.spawn)),
		Unit: benchkit.Seconds, Xbus: perM(d), Baseline: perM(gd),
		Target: "< 1 s", Status: benchkit.Verdict(perM(d) < 1),
	})
	out.Row(benchkit.Row{
		Name: "bytes per idle actor (per blocked goroutine)",
		Unit: benchkit.Bytes, Xbus: per, Baseline: gper,
		Target: "< 600 B", Status: benchkit.Verdict(per < 600),
	})

	out.Progress("allocations per Tell and per Ask")
	tellAllocs, askAllocs, err := allocs()
	if err != nil {
		return err
	}
	out.Row(benchkit.Row{Name: "allocations per Tell, steady state", Unit: benchkit.Count, Xbus: tellAllocs, Target: "0", Status: benchkit.Verdict(tellAllocs == 0)})
	out.Row(benchkit.Row{Name: "allocations per Ask, steady state", Unit: benchkit.Count, Xbus: askAllocs, Target: "0", Status: benchkit.Verdict(askAllocs == 0)})
	return nil
}

// allocs measures allocations per Tell and per Ask in steady state, as the
// AllocsPerRun tests of package bus do.
func allocs() (tell, ask float64, err error) {
	b, err := bus.New(bus.WithName("xbus-bench"))
	if err != nil {
		return 0, 0, err
	}
	defer b.Close(context.Background())
	sink, err := b.Spawn(bus.ActorFunc(func(*bus.Context, any) error { return nil }))
	if err != nil {
		return 0, 0, err
	}
	echoRef, err := b.Spawn(bus.ActorFunc(Echo))
	if err != nil {
		return 0, 0, err
	}
	ctx := context.Background()
	for range 10_000 {
		if err = b.Tell(sink, Msg); err != nil {
			return 0, 0, err
		}
		if _, err = b.Ask(ctx, echoRef, Msg); err != nil {
			return 0, 0, err
		}
	}
	tell = benchkit.AllocsPerRun(10_000, func() {
		if e := b.Tell(sink, Msg); e != nil {
			err = e
		}
	})
	ask = benchkit.AllocsPerRun(10_000, func() {
		if _, e := b.Ask(ctx, echoRef, Msg); e != nil {
			err = e
		}
	})
	return tell, ask, err
}
