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
	"github.com/xbus-dev/xbus/supervisor"
)

// RunBench measures how long a failed actor is out of service: the time from
// a panic in Receive to the restarted instance handling the next message
// (queued before the panic), with backoff off. Beside it, in the same run,
// it measures the same gap with no failure (one message to the next) and
// with the Resume directive (the failed instance goes on), and writes p50
// and p99 of each to w. A fourth case, a panic in an actor with no
// supervisor (the bus logs it and resumes the actor), shows the bus's own
// share of the failure path; what the supervisor adds is the difference.
func RunBench(w io.Writer) error { return runBench(w, 5000) }

// Latencies is the outcome of one measured case.
type Latencies struct {
	Case     string
	P50, P99 time.Duration
}

func runBench(w io.Writer, n int) error {
	cases := []struct {
		name string
		d    supervisor.Directive
		fail bool
	}{
		{"no failure (baseline)", supervisor.Restart, false},
		{"panic, no supervisor", unsupervised, true},
		{"panic, resume", supervisor.Resume, true},
		{"panic, restart", supervisor.Restart, true},
	}
	res := make([]Latencies, len(cases))
	for i, c := range cases {
		l, err := measureRecovery(n, c.d, c.fail)
		if err != nil {
			return err
		}
		res[i] = percentiles(c.name, l)
	}
	fmt.Fprintf(w, "supervisor: panic -> restarted instance handles its next message (backoff off, %d rounds)\n", n)
	fmt.Fprintf(w, "%-24s %10s %10s\n", "case", "p50", "p99")
	for _, r := range res {
		fmt.Fprintf(w, "%-24s %10v %10v\n", r.Case, r.P50, r.P99)
	}
	fmt.Fprintf(w, "restart p50 / no-supervisor p50: %.2f\n", float64(res[3].P50)/float64(max(res[1].P50, 1)))
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
