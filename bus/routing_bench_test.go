package bus_test

import (
	"context"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/codec"
	"github.com/xbus-dev/xbus/internal/benchkit"
)

// BenchmarkTellByName: a Tell to a name (placed on every call) against a
// Tell to the Ref of the same actor, in alternating rounds of one run, with
// one instance of the name and with three (the baseline then turns through
// their Refs). ns/tell and ref-ns/tell are the two costs, x-ref their ratio
// (the target is at most 1.15); cpu-ns/tell, ref-cpu-ns/tell and x-ref-cpu
// the same in CPU time (zero where the platform does not report it).
//
//	go test -run '^$' -bench TellByName -benchtime 2000000x ./bus
func BenchmarkTellByName(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("instances=%d", n), func(b *testing.B) {
			bb, err := bus.New(bus.WithLogger(quiet))
			if err != nil {
				b.Fatal(err)
			}
			defer bb.Close(context.Background())
			var got atomic.Int64
			count := bus.ActorFunc(func(_ *bus.Context, m any) error {
				if m == "m" {
					got.Add(1)
				}
				return nil
			})
			refs := make([]bus.Ref, n)
			for i := range refs {
				if refs[i], err = bb.Register("svc", count); err != nil {
					b.Fatal(err)
				}
			}
			// The baseline turns through the Refs, so that both spread
			// their messages over the same actors. Each round's CPU time
			// is kept too, per tell: what other load on the machine skews
			// least.
			var cpu [2][]float64 // by name, by Ref
			round := func(byName bool, k int) time.Duration {
				c0 := benchkit.CPUTime()
				start, want := time.Now(), got.Load()+int64(k)
				for i := range k {
					var to any = "svc"
					if !byName {
						to = refs[i%n]
					}
					if err := bb.Tell(to, "m"); err != nil {
						b.Fatal(err)
					}
				}
				for got.Load() < want {
					time.Sleep(10 * time.Microsecond)
				}
				d := time.Since(start)
				i := 0
				if !byName {
					i = 1
				}
				cpu[i] = append(cpu[i], float64(benchkit.CPUTime()-c0)/float64(k))
				return d
			}
			b.ReportAllocs()
			name, byRef := alternate(b.N, func(k int) time.Duration { return round(true, k) }, func(k int) time.Duration { return round(false, k) })
			b.ReportMetric(name, "ns/tell")
			b.ReportMetric(byRef, "ref-ns/tell")
			b.ReportMetric(name/byRef, "x-ref")
			if c, r := median(cpu[0]), median(cpu[1]); r > 0 {
				b.ReportMetric(c, "cpu-ns/tell")
				b.ReportMetric(r, "ref-cpu-ns/tell")
				b.ReportMetric(c/r, "x-ref-cpu")
			}
		})
	}
}

// BenchmarkAskByNameMesh: an Ask by name across a 3-node mesh (the name
// served on the two other nodes, placed on every call) against an Ask to
// one of its Refs over the same link, in alternating rounds.
//
//	go test -run '^$' -bench AskByNameMesh -benchtime 20000x ./bus
func BenchmarkAskByNameMesh(b *testing.B) {
	n := bustest.NewNetwork()
	mk := func(addr string, peers ...string) *bus.Bus {
		bb, err := bus.New(bus.WithLogger(quiet),
			bus.WithTransport(n.Transport(bustest.Config{Addr: addr, Peers: peers, Codec: codec.Binary()})))
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { bb.Close(context.Background()) })
		return bb
	}
	s1, s2 := mk("s1"), mk("s2", "mem://s1")
	c := mk("c", "mem://s1", "mem://s2")
	echo := bus.ActorFunc(func(ctx *bus.Context, m any) error {
		if ctx.IsAsk() {
			return ctx.Reply(m)
		}
		return nil
	})
	ref, err := s1.Register("svc", echo)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := s2.Register("svc", echo); err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for len(c.Instances("svc")) < 2 {
		if ctx.Err() != nil {
			b.Fatal("instances never known")
		}
		time.Sleep(time.Millisecond)
	}
	round := func(to any, k int) time.Duration {
		start := time.Now()
		for range k {
			if _, err := c.Ask(context.Background(), to, "m"); err != nil {
				b.Fatal(err)
			}
		}
		return time.Since(start)
	}
	b.ReportAllocs()
	name, byRef := alternate(b.N, func(k int) time.Duration { return round("svc", k) }, func(k int) time.Duration { return round(ref, k) })
	b.ReportMetric(name, "ns/ask")
	b.ReportMetric(byRef, "ref-ns/ask")
	b.ReportMetric(name/byRef, "x-ref")
}

// median is the middle of xs, which it sorts; 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	slices.Sort(xs)
	return xs[len(xs)/2]
}

// alternate runs n calls split into rounds, alternating x and y (each
// timing k calls), and returns the median time per call of each: the
// machine's noise moves both alike.
func alternate(n int, x, y func(k int) time.Duration) (float64, float64) {
	const rounds = 21
	per := max(n/rounds/2, 1)
	xs, ys := make([]float64, rounds), make([]float64, rounds)
	for i := range rounds {
		if i%2 == 0 {
			xs[i], ys[i] = float64(x(per))/float64(per), float64(y(per))/float64(per)
		} else {
			ys[i], xs[i] = float64(y(per))/float64(per), float64(x(per))/float64(per)
		}
	}
	slices.Sort(xs)
	slices.Sort(ys)
	return xs[rounds/2], ys[rounds/2]
}
