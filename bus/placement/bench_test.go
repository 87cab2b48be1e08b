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

// BenchmarkPickFast measures the default strategy's choice on a Tell by
// name's path: among idle instances that tie, among instances whose loads
// differ, and among idle ones of which only some are near.
func BenchmarkPickFast(b *testing.B) {
	R, P := Remote, SameProcess
	for _, c := range []struct {
		name  string
		loads []int64
		locs  []Locality
	}{
		{"ties=3", []int64{0, 0, 0}, nil},
		{"ties=8", make([]int64, 8), nil},
		{"least=1of3", []int64{2, 0, 1}, nil},
		{"ties=2of3", []int64{1, 0, 0}, nil},
		{"near=2of3", []int64{0, 0, 0}, []Locality{P, R, P}},
	} {
		b.Run(c.name, func(b *testing.B) {
			in := set(c.loads, c.locs)
			var sink int
			for b.Loop() {
				i, _ := PickFast(LeastConnections{}, in, nil)
				sink += i
			}
			_ = sink
		})
	}
}
