// Package actorbench measures an actor runtime on the rows that
// `xbus bench inproc` prints for xbus: Tell 1→1 and 2→1, Ask p50 and p99,
// and spawning idle actors, each beside the same plain-Go baseline in the
// same run (a buffered channel, a channel ping-pong, blocked goroutines).
// Each runtime is a program of its own, since some cannot link into one
// binary together; their ratios to the baseline compare across programs.
package actorbench

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"time"

	"github.com/xbus-dev/xbus/internal/benchkit"
)

// Msg is the message every row sends: a pointer to 64 bytes, as in
// `xbus bench inproc`.
var Msg any = &struct{ _ [64]byte }{}

// MailboxCap is the capacity of the runtimes' mailboxes, where they can be
// bounded, and of the baselines' channels: xbus's default.
const MailboxCap = 1024

// Runtime is one actor runtime under measurement.
type Runtime interface {
	// Counter spawns an actor that closes done once it has handled want
	// copies of Msg, and returns a function that tells it Msg once.
	Counter(want int, done chan struct{}) (tell func() error, err error)
	// Echo spawns an actor that answers an ask with its message, and
	// returns a function that asks it Msg and waits for the answer.
	Echo() (ask func() error, err error)
	// Idle spawns n actors that do nothing and returns once all are up.
	Idle(n int) error
	// Close stops the runtime and its actors.
	Close() error
}

type counts struct{ tell, ask, spawn, reps int }

func countsFor(quick bool) counts {
	if quick {
		return counts{tell: 20_000, ask: 2_000, spawn: 10_000, reps: 1}
	}
	return counts{tell: 2_000_000, ask: 300_000, spawn: 1_000_000, reps: 3}
}

// Run measures the runtime that start makes (a fresh one for each
// measurement) and reports its rows to out.
func Run(out benchkit.Out, start func() (Runtime, error), quick bool) error {
	c := countsFor(quick)
	for _, t := range []struct {
		name    string
		senders int
	}{
		{"Tell to a Ref 1→1 (buffered chan → 1 goroutine)", 1},
		{"Tell to a Ref 2→1 (2 senders → 1 buffered chan)", 2},
	} {
		out.Progress("%s, %d messages, %d runs", t.name, c.tell, c.reps)
		var rates, baseRates []float64
		for range c.reps {
			d, err := tell(start, c.tell, t.senders)
			if err != nil {
				return err
			}
			rates = append(rates, float64(c.tell)/d.Seconds())
			base := benchkit.ChanPipeline(Msg, c.tell, t.senders, 1, MailboxCap)
			baseRates = append(baseRates, float64(c.tell)/base.Seconds())
		}
		out.Row(benchkit.Row{Name: t.name, Unit: benchkit.PerSec, Xbus: benchkit.Median(rates), Baseline: benchkit.Median(baseRates)})
	}

	out.Progress("Ask round trips, %d asks", c.ask)
	lat, err := askLatencies(start, c.ask)
	if err != nil {
		return err
	}
	base := benchkit.ChanPingPong(Msg, c.ask)
	for _, q := range []float64{50, 99} {
		out.Row(benchkit.Row{Name: fmt.Sprintf("Ask round trip p%g (chan ping-pong)", q), Unit: benchkit.Nanos,
			Xbus: float64(benchkit.Percentile(lat, q)), Baseline: float64(max(benchkit.Percentile(base, q), 1))})
	}

	out.Progress("spawning %s idle actors, then as many goroutines", benchkit.Abbrev(c.spawn))
	rt, err := start()
	if err != nil {
		return err
	}
	d, per, err := benchkit.Footprint(c.spawn, func() error { return rt.Idle(c.spawn) })
	if cerr := rt.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	gd, gper := benchkit.GoroutinesIdle(c.spawn)
	perM := func(d time.Duration) float64 { return d.Seconds() * 1e6 / float64(c.spawn) }
	out.Row(benchkit.Row{Name: fmt.Sprintf("spawn %s idle actors, per 1M (goroutines blocked on a chan)", benchkit.Abbrev(c.spawn)),
		Unit: benchkit.Seconds, Xbus: perM(d), Baseline: perM(gd)})
	out.Row(benchkit.Row{Name: "bytes per idle actor (per blocked goroutine)", Unit: benchkit.Bytes, Xbus: per, Baseline: gper})
	return nil
}

// tell sends total copies of Msg from senders goroutines to one counting
// actor and returns the time until it has handled them all.
func tell(start func() (Runtime, error), total, senders int) (time.Duration, error) {
	rt, err := start()
	if err != nil {
		return 0, err
	}
	defer rt.Close()
	per, want := benchkit.Shares(total, senders, 1)
	done := []chan struct{}{make(chan struct{})}
	send, err := rt.Counter(want[0], done[0])
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return benchkit.Fanout(ctx, senders, per, func(_, n int) error {
		for range n {
			if err := send(); err != nil {
				return err
			}
		}
		return nil
	}, done)
}

func askLatencies(start func() (Runtime, error), n int) ([]time.Duration, error) {
	rt, err := start()
	if err != nil {
		return nil, err
	}
	defer rt.Close()
	ask, err := rt.Echo()
	if err != nil {
		return nil, err
	}
	return benchkit.Latencies(n, ask)
}

// Main is a runtime's program: it measures the runtime and prints the
// table (or with -json the rows), progress on stderr.
func Main(who string, start func() (Runtime, error)) {
	fs := flag.NewFlagSet(who, flag.ExitOnError)
	quick := fs.Bool("quick", false, "shrink every count a hundredfold (a smoke test, not a measurement)")
	asJSON := fs.Bool("json", false, "print the rows as JSON")
	fs.Parse(os.Args[1:])
	rows, err := Measure(os.Stderr, who, start, *quick)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		os.Exit(1)
	}
	if err := Print(os.Stdout, who, rows, *asJSON); err != nil {
		fmt.Fprintf(os.Stderr, "%s: %v\n", who, err)
		os.Exit(1)
	}
}

// Measure runs Run with progress on w.
func Measure(w io.Writer, who string, start func() (Runtime, error), quick bool) ([]benchkit.Row, error) {
	p := &progress{w: w, who: who, start: time.Now()}
	err := Run(p, start, quick)
	return p.rows, err
}

// Print writes rows as a table headed by the build, or as JSON.
func Print(w io.Writer, who string, rows []benchkit.Row, asJSON bool) error {
	if asJSON {
		return jsonRows(w, who, rows)
	}
	fmt.Fprintf(w, "%s, %s %s/%s, GOMAXPROCS=%d\nratio = %s ÷ baseline: for a rate above 1× is %s faster; for a time or a size below 1× is.\n\n",
		who, runtime.Version(), runtime.GOOS, runtime.GOARCH, runtime.GOMAXPROCS(0), who, who)
	return benchkit.WriteTable(w, who, rows)
}

type progress struct {
	w     io.Writer
	who   string
	start time.Time
	rows  []benchkit.Row
}

func (p *progress) Row(r benchkit.Row) {
	p.rows = append(p.rows, r)
	p.Progress("%s: %s", r.Name, r.Unit.Format(r.Xbus))
}

func (p *progress) Progress(format string, args ...any) {
	fmt.Fprintf(p.w, "%s [%3.0fs] %s\n", p.who, time.Since(p.start).Seconds(), fmt.Sprintf(format, args...))
}
