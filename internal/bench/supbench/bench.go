// Package supbench measures how long a supervised actor is out of service
// after a panic, for `xbus bench supervisor` and
// `go test -bench RestartLatency ./internal/bench/supbench`.
package supbench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/supervisor"
)

// RunBench measures how long a failed actor is out of service: the time from
// a panic in Receive to the restarted instance handling the next message
// (queued before the panic), with backoff off. The baseline, in the same
// run, is a panic in an actor with no supervisor (the bus logs it and
// resumes the actor): the bus's own share of the failure path, so the
// ratio is what supervision adds. Beside them it measures the same gap
// with the Resume directive and with no failure. quick runs 200 rounds
// instead of 5,000.
func RunBench(out benchkit.Out, quick bool) error {
	n := 5000
	if quick {
		n = 200
	}
	return runBench(out, n)
}

// Latencies is the outcome of one measured case.
type Latencies struct {
	Case     string
	P50, P99 time.Duration
}

func runBench(out benchkit.Out, n int) error {
	cases := []struct {
		name string
		d    supervisor.Directive
		fail bool
	}{
		{"no failure", supervisor.Restart, false},
		{"no supervisor", unsupervised, true},
		{"resume", supervisor.Resume, true},
		{"restart", supervisor.Restart, true},
	}
	res := make(map[string]Latencies, len(cases))
	for _, c := range cases {
		out.Progress("%s, %d rounds", c.name, n)
		l, err := measureRecovery(n, c.d, c.fail)
		if err != nil {
			return err
		}
		res[c.name] = percentiles(c.name, l)
	}
	base := res["no supervisor"]
	ns := func(d time.Duration) float64 { return float64(max(d, 1)) }
	restart := res["restart"]
	out.Row(benchkit.Row{Name: "panic → restarted instance's next message p50 (panic, no supervisor)", Unit: benchkit.Nanos,
		Xbus: ns(restart.P50), Baseline: ns(base.P50), Target: "< 20µs", Status: benchkit.Verdict(restart.P50 < 20*time.Microsecond)})
	out.Row(benchkit.Row{Name: "panic → restarted instance's next message p99 (panic, no supervisor)", Unit: benchkit.Nanos,
		Xbus: ns(restart.P99), Baseline: ns(base.P99)})
	resume := res["resume"]
	out.Row(benchkit.Row{Name: "panic → resumed instance's next message p50 (panic, no supervisor)", Unit: benchkit.Nanos,
		Xbus: ns(resume.P50), Baseline: ns(base.P50)})
	out.Row(benchkit.Row{Name: "no failure: one message to the next p50", Unit: benchkit.Nanos, Xbus: ns(res["no failure"].P50)})
	return nil
}

func percentiles(name string, l []time.Duration) Latencies {
	slices.Sort(l)
	return Latencies{Case: name, P50: l[len(l)/2], P99: l[len(l)*99/100]}
}

var errBench = errors.New("bench failure")

// recoveryProbe fails (or not) on "fail", stamping the time, and reports on
// "next" how long it has been.
type recoveryProbe struct {
	epoch time.Time
	t0    *atomic.Int64
	fail  bool
	out   chan<- time.Duration
}

func (p *recoveryProbe) Receive(c *bus.Context, msg any) error {
	switch msg {
	case "fail":
		p.t0.Store(int64(time.Since(p.epoch)))
		if p.fail {
			panic(errBench)
		}
	case "next":
		p.out <- time.Since(p.epoch) - time.Duration(p.t0.Load())
	}
	return nil
}

// unsupervised, as measureRecovery's directive, registers the probe at the
// top level with no supervisor.
const unsupervised supervisor.Directive = 255

// measureRecovery runs n rounds of "fail" then "next" against a supervised
// child and returns the gap of each round.
func measureRecovery(n int, d supervisor.Directive, fail bool) ([]time.Duration, error) {
	b, err := bus.New(bus.WithLogger(slog.New(slog.NewTextHandler(io.Discard, nil))))
	if err != nil {
		return nil, err
	}
	defer b.Close(context.Background())
	out := make(chan time.Duration, 1)
	var t0 atomic.Int64
	epoch := time.Now()
	spec := supervisor.Spec{
		Name:      "bench",
		Intensity: supervisor.Intensity{MaxRestarts: -1},
		Backoff:   supervisor.Backoff{Disabled: true},
		Decider:   func(bus.Failure) supervisor.Directive { return d },
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
		Children: []supervisor.ChildSpec{{Name: "probe", New: func() bus.Actor {
			return &recoveryProbe{epoch: epoch, t0: &t0, fail: fail, out: out}
		}}},
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if d == unsupervised {
		_, err = b.Register("probe", spec.Children[0].New())
	} else {
		_, _, err = supervisor.Start(ctx, b, spec)
	}
	if err != nil {
		return nil, err
	}
	lat := make([]time.Duration, 0, n)
	for range n {
		if err := b.Tell("probe", "fail"); err != nil {
			return nil, err
		}
		if err := b.Tell("probe", "next"); err != nil {
			return nil, err
		}
		select {
		case l := <-out:
			lat = append(lat, l)
		case <-ctx.Done():
			return nil, fmt.Errorf("supervisor bench: %w after %d rounds", ctx.Err(), len(lat))
		}
	}
	return lat, nil
}
