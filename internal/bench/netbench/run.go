package netbench

import (
	"fmt"
	"io"
	"time"
)

// RunBench writes the table of `xbus bench net`: OneProcess (both buses
// in this process), then ask round trips between this process and a peer
// process, each beside a raw ping-pong of the same bytes and the hand-off
// floor, measured interleaved in the same run. quick shortens every
// measurement.
func RunBench(w io.Writer, quick bool) error {
	d := 2 * time.Second
	if quick {
		d = 100 * time.Millisecond
	}
	if err := OneProcess(w, BenchOptions{Duration: d}); err != nil {
		return err
	}
	p, err := startPeer()
	if err != nil {
		return err
	}
	defer p.close()
	fmt.Fprintf(w, "\nBetween two processes (rounds of a raw ping-pong, the floor, an ask and an ask to an actor WithInline, interleaved):\n\n")
	fmt.Fprintf(w, "| measurement | netbus | baseline | ratio |\n|---|---|---|---|\n")
	for _, kind := range []string{"TCP", "Unix"} {
		s, err := p.ends[kind].measure(2*d, 100)
		if err != nil {
			return err
		}
		row := func(what string, v, base time.Duration, baseName string) {
			fmt.Fprintf(w, "| %s, two processes: %s | %v | %v (%s) | %.2f× |\n", kind, what, v, base, baseName, float64(v)/float64(base))
		}
		row("ask round trip p50", at(s.ask, .5), at(s.raw, .5), "raw ping-pong")
		row("ask round trip p99", at(s.ask, .99), at(s.raw, .99), "raw ping-pong")
		row("ask round trip p50, actor WithInline", at(s.inline, .5), at(s.raw, .5), "raw ping-pong")
		row("floor: raw ping-pong with a hand-off on each end, p50", at(s.floor, .5), at(s.raw, .5), "raw ping-pong")
		row("ask round trip p50 against that floor", at(s.ask, .5), at(s.floor, .5), "floor")
	}
	return nil
}
