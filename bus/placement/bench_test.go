package placement

import (
	"fmt"
	"testing"
	"time"
)

// BenchmarkPick measures one placement per call beside the map lookup that
// finds a name's instances, for 2, 16 and 1,000 instances.
func BenchmarkPick(b *testing.B) {
	for _, n := range []int{2, 16, 1000} {
		in := set(make([]int64, n), nil)
		for i := range in {
			in[i].Stats.Add(int64(i % 7))
			in[i].Locality = Locality(i % 3)
			in[i].Stats.Observe(time.Duration(1000 + i))
		}
		names := make(map[string][]Instance, 64)
		for k := range 64 {
			names[fmt.Sprint("svc-", k)] = in
		}
		b.Run(fmt.Sprintf("n=%d/map-lookup", n), func(b *testing.B) {
			b.ReportAllocs()
			var sink int
			for b.Loop() {
				sink += len(names["svc-17"])
			}
			_ = sink
		})
		for _, s := range []struct {
			name string
			s    Strategy
		}{
			{"least-connections", LeastConnections{}},
			{"round-robin", RoundRobin{}},
			{"random", Random{}},
			{"weighted", &WeightedRoundRobin{}},
			{"hash", &ConsistentHash{}},
			{"latency", Latency{}},
		} {
			b.Run(fmt.Sprintf("n=%d/%s", n, s.name), func(b *testing.B) {
				b.ReportAllocs()
				var seq uint64
				r := rng(3)
				Pick(s.s, in, Call{Key: "order-17"}, time.Now, HealthPolicy{}) // builds the hash ring
				for b.Loop() {
					seq++
					Pick(s.s, in, Call{Key: "order-17", Seq: seq, Rand: r.next()}, time.Now, HealthPolicy{})
				}
			})
		}
	}
}
