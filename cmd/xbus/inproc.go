package main

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/internal/busbench"
)

// The in-process suite: the same measurements as bus/bench_test.go (both
// call internal/busbench, which drives the bus with the internal/benchkit
// harness and baselines), with fixed counts so that the whole suite takes
// well under a minute.
// Throughput rows report the median of three runs, each xbus run followed
// by its baseline run, so a noisy neighbour hurts both alike.

// msg is the message every row sends (busbench.Msg).
var msg = busbench.Msg

type counts struct {
	tell, ask, spawn, reps int
}

func countsFor(quick bool) counts {
	if quick {
		return counts{tell: 20_000, ask: 2_000, spawn: 10_000, reps: 1}
	}
	return counts{tell: 2_000_000, ask: 300_000, spawn: 1_000_000, reps: 3}
}

func runInProcess(out io.Writer, quick bool) error {
	t := newTable(out)
	defer t.flush()
	return inProcessRows(t, quick)
}

func inProcessRows(w io.Writer, quick bool) error {
	c := countsFor(quick)
	n := runtime.GOMAXPROCS(0)
	for _, t := range []struct {
		name             string
		senders, actors  int
		target           string
		targetVsBaseline float64 // minimum ratio, or 0
		targetRate       float64 // minimum msgs/s, or 0
	}{
		{"Tell 1→1, msgs/s (buffered chan → 1 goroutine)", 1, 1, "≥ 1.2× chan", 1.2, 0},
		{"Tell 2→1, msgs/s (2 senders → 1 chan)", 2, 1, "≥ 30 M/s", 0, 30e6},
		{fmt.Sprintf("Tell %d→%d, msgs/s (%d chans)", n, n, n), n, n, "", 0, 0},
	} {
		var rates, baseRates []float64
		for range c.reps {
			d, err := busbench.Tell(c.tell, t.senders, t.actors)
			if err != nil {
				return err
			}
			rates = append(rates, float64(c.tell)/d.Seconds())
			base := benchkit.ChanPipeline(msg, c.tell, t.senders, t.actors, busbench.MailboxCap)
			baseRates = append(baseRates, float64(c.tell)/base.Seconds())
		}
		rate, base := benchkit.Median(rates), benchkit.Median(baseRates)
		r := Row{Name: t.name, Xbus: mps(rate), Baseline: mps(base), Ratio: ratio(rate / base), Target: t.target}
		switch {
		case t.targetVsBaseline > 0:
			r.Verdict = verdict(rate/base >= t.targetVsBaseline)
		case t.targetRate > 0:
			r.Verdict = verdict(rate >= t.targetRate)
		}
		if err := r.write(w); err != nil {
			return err
		}
	}

	lat, err := busbench.AskLatencies(c.ask)
	if err != nil {
		return err
	}
	base := benchkit.ChanPingPong(msg, c.ask)
	for _, q := range []struct {
		p      float64
		target time.Duration
	}{{50, 500 * time.Nanosecond}, {99, 2 * time.Microsecond}} {
		x, y := benchkit.Percentile(lat, q.p), benchkit.Percentile(base, q.p)
		r := Row{
			Name:     fmt.Sprintf("Ask round trip p%g (chan ping-pong)", q.p),
			Xbus:     x.String(),
			Baseline: y.String(),
			Ratio:    ratio(float64(x) / float64(max(y, 1))),
			Target:   "< " + q.target.String(),
			Verdict:  verdict(x < q.target),
		}
		if err := r.write(w); err != nil {
			return err
		}
	}

	ilat, err := busbench.AskLatencies(c.ask, bus.WithInline())
	if err != nil {
		return err
	}
	ibase := benchkit.ChanPingPong(msg, c.ask)
	for _, q := range []float64{50, 99} {
		x, y := benchkit.Percentile(ilat, q), benchkit.Percentile(ibase, q)
		r := Row{
			Name:     fmt.Sprintf("Ask round trip p%g, actor WithInline (chan ping-pong)", q),
			Xbus:     x.String(),
			Baseline: y.String(),
			Ratio:    ratio(float64(x) / float64(max(y, 1))),
		}
		if err := r.write(w); err != nil {
			return err
		}
	}

	d, per, err := busbench.SpawnIdle(c.spawn)
	if err != nil {
		return err
	}
	gd, gper := benchkit.GoroutinesIdle(c.spawn)
	perM := func(d time.Duration) float64 { return d.Seconds() * 1e6 / float64(c.spawn) }
	for _, r := range []Row{
		{
			Name:     fmt.Sprintf("spawn %s idle actors, s per 1M (goroutine blocked on a chan each)", count(c.spawn)),
			Xbus:     fmt.Sprintf("%.2f s", perM(d)),
			Baseline: fmt.Sprintf("%.2f s", perM(gd)),
			Ratio:    ratio(d.Seconds() / gd.Seconds()),
			Target:   "< 1 s",
			Verdict:  verdict(perM(d) < 1),
		},
		{
			Name:     "bytes per idle actor (per blocked goroutine)",
			Xbus:     fmt.Sprintf("%.0f B", per),
			Baseline: fmt.Sprintf("%.0f B", gper),
			Ratio:    ratio(per / gper),
			Target:   "< 600 B",
			Verdict:  verdict(per < 600),
		},
	} {
		if err := r.write(w); err != nil {
			return err
		}
	}

	tellAllocs, askAllocs, err := allocs()
	if err != nil {
		return err
	}
	for _, r := range []Row{
		{Name: "allocations per Tell, steady state (chan send)", Xbus: fmt.Sprint(tellAllocs), Baseline: "0", Ratio: "", Target: "0", Verdict: verdict(tellAllocs == 0)},
		{Name: "allocations per Ask, steady state (chan ping-pong)", Xbus: fmt.Sprint(askAllocs), Baseline: "0", Ratio: "", Target: "", Verdict: ""},
	} {
		if err := r.write(w); err != nil {
			return err
		}
	}
	return nil
}

func verdict(ok bool) string {
	if ok {
		return "ok"
	}
	return "MISS"
}

func ratio(x float64) string { return fmt.Sprintf("%.2f×", x) }

func mps(rate float64) string { return fmt.Sprintf("%.1f M/s", rate/1e6) }

func count(n int) string {
	if n%1_000_000 == 0 {
		return fmt.Sprintf("%dM", n/1_000_000)
	}
	if n%1_000 == 0 {
		return fmt.Sprintf("%dk", n/1_000)
	}
	return fmt.Sprint(n)
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
	echoRef, err := b.Spawn(bus.ActorFunc(busbench.Echo))
	if err != nil {
		return 0, 0, err
	}
	ctx := context.Background()
	for range 10_000 {
		if err = b.Tell(sink, msg); err != nil {
			return 0, 0, err
		}
		if _, err = b.Ask(ctx, echoRef, msg); err != nil {
			return 0, 0, err
		}
	}
	tell = benchkit.AllocsPerRun(10_000, func() {
		if e := b.Tell(sink, msg); e != nil {
			err = e
		}
	})
	ask = benchkit.AllocsPerRun(10_000, func() {
		if _, e := b.Ask(ctx, echoRef, msg); e != nil {
			err = e
		}
	})
	return tell, ask, err
}
