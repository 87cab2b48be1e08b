package netbench

import (
	"fmt"
	"time"

	"github.com/xbus-dev/xbus/internal/benchkit"
)

// RunBench is the suite of `xbus bench net`: OneProcess (both buses in
// this process), then, between this process and a peer process, ask round
// trips beside a raw ping-pong of the same bytes and the hand-off floor,
// and one-way tells beside a raw buffered stream, each measured
// interleaved in the same run. quick shortens every measurement.
func RunBench(out benchkit.Out, quick bool) error {
	d := 2 * time.Second
	if quick {
		d = 100 * time.Millisecond
	}
	if err := OneProcess(out, BenchOptions{Duration: d}); err != nil {
		return err
	}
	out.Progress("starting the peer process")
	p, err := startPeer()
	if err != nil {
		return err
	}
	defer p.close()
	ns := func(d time.Duration) float64 { return float64(max(d, 1)) }
	for _, kind := range []string{"TCP", "Unix"} {
		out.Progress("%s, two processes: rounds of a raw ping-pong, the floor, an ask and an ask to an actor WithInline, interleaved", kind)
		s, err := p.ends[kind].measure(2*d, 100)
		if err != nil {
			return err
		}
		row := func(what string, x, base time.Duration, target float64) {
			r := benchkit.Row{Name: kind + ", two processes: " + what, Unit: benchkit.Nanos, Xbus: ns(x), Baseline: ns(base)}
			if target > 0 {
				r.Target, r.Status = fmt.Sprintf("≤ %g×", target), benchkit.Verdict(r.Ratio() <= target)
			}
			out.Row(r)
		}
		target := 0.0
		if kind == "TCP" {
			target = 2
		}
		row("ask round trip p50 (raw ping-pong)", at(s.ask, .5), at(s.raw, .5), target)
		row("ask round trip p99 (raw ping-pong)", at(s.ask, .99), at(s.raw, .99), 0)
		row("ask round trip p50, actor WithInline (raw ping-pong)", at(s.inline, .5), at(s.raw, .5), 0)
		row("hand-off floor p50 (raw ping-pong)", at(s.floor, .5), at(s.raw, .5), 0)
		row("ask round trip p50 (hand-off floor)", at(s.ask, .5), at(s.floor, .5), 0)
		total := 2_000_000
		if quick {
			total = 100_000
		}
		out.Progress("%s, two processes: %d one-way tells and as many raw stream frames, in alternating rounds", kind, total)
		f, err := p.ends[kind].tells("sink", total, 200_000)
		if err != nil {
			return err
		}
		name := kind + ", two processes: "
		out.Row(benchkit.Row{Name: name + "one-way tells (raw buffered stream)", Unit: benchkit.PerSec, Xbus: f.Tells, Baseline: f.Stream,
			Target: "≥ 10 M/s", Status: benchkit.Verdict(f.Tells >= 10e6)})
		out.Row(benchkit.Row{Name: name + "CPU per tell, sending process (raw stream)", Unit: benchkit.Nanos, Xbus: f.TellSend, Baseline: f.StreamSend})
		out.Row(benchkit.Row{Name: name + "CPU per tell, receiving process (raw stream)", Unit: benchkit.Nanos, Xbus: f.TellRecv, Baseline: f.StreamRecv})
	}
	return nil
}
