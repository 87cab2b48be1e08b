// Command load_balancing shows how the bus spreads asks to a name over its
// instances with each placement strategy: three instances of one service,
// one of them slow, asked by eight callers at once. It prints how many asks
// each instance answered per strategy.
//
//	go run ./examples/load_balancing
//
// The counts vary from run to run; their order does not: least connections
// and the latency score send the slow instance the fewest asks, round robin
// and random about a third each, consistent hash one instance per key.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/placement"
)

// strategies are the ones shown, each placing a name of its own.
var strategies = []struct {
	name string
	s    placement.Strategy
}{
	{"least-connections", placement.LeastConnections{}},
	{"round-robin", placement.RoundRobin{}},
	{"random", placement.Random{}},
	{"consistent-hash", &placement.ConsistentHash{}},
	{"latency", placement.Latency{}},
}

// instances are the three instances of each name, by what they answer;
// "slow" takes slowFor per ask.
var instances = []string{"fast-a", "fast-b", "slow"}

const (
	slowFor = 2 * time.Millisecond
	callers = 8
	asks    = 600
)

func main() {
	if _, err := run(os.Stdout, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
}

// run places the asks with each strategy and prints the counts; it returns
// them too, strategy → instance → asks answered.
func run(out io.Writer, log *slog.Logger) (map[string]map[string]int, error) {
	opts := []bus.Option{bus.WithLogger(log)}
	for _, st := range strategies {
		opts = append(opts, bus.WithPlacementFor(st.name, st.s))
	}
	b, err := bus.New(opts...)
	if err != nil {
		return nil, err
	}
	defer b.Close(context.Background())
	for _, st := range strategies {
		for _, who := range instances {
			if _, err := b.Register(st.name, worker(who)); err != nil {
				return nil, err
			}
		}
	}

	all := map[string]map[string]int{}
	fmt.Fprintf(out, "%d asks from %d callers to 3 instances; %q takes %v per ask\n\n", asks, callers, "slow", slowFor)
	fmt.Fprintf(out, "%-18s %8s %8s %8s\n", "strategy", instances[0], instances[1], instances[2])
	for _, st := range strategies {
		counts, err := spread(b, st.name)
		if err != nil {
			return nil, err
		}
		all[st.name] = counts
		fmt.Fprintf(out, "%-18s %8d %8d %8d\n", st.name, counts[instances[0]], counts[instances[1]], counts[instances[2]])
	}
	fmt.Fprintln(out, "\nconsistent-hash places by the caller's key (bus.WithKey): here one key per caller,")
	fmt.Fprintln(out, "so each caller's asks all go to one instance.")
	return all, nil
}

// worker answers every ask with its name, after slowFor if it is "slow".
func worker(who string) bus.Actor {
	return bus.ActorFunc(func(c *bus.Context, msg any) error {
		if !c.IsAsk() {
			return nil
		}
		if strings.HasPrefix(who, "slow") {
			time.Sleep(slowFor)
		}
		return c.Reply(who)
	})
}

// spread sends asks to name from callers at once, each caller with a key
// of its own, and counts the answers by instance.
func spread(b *bus.Bus, name string) (map[string]int, error) {
	var mu sync.Mutex
	counts := map[string]int{}
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for c := range callers {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			ctx = bus.WithKey(ctx, fmt.Sprint("customer-", c))
			for range asks / callers {
				r, err := bus.AskAs[string](ctx, b, name, "work")
				if err != nil {
					errs <- err
					return
				}
				mu.Lock()
				counts[r]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	return counts, <-errs
}
