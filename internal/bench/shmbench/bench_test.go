//go:build linux

package shmbench

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/internal/benchkit"
)

// BenchmarkRawFloor is what the hardware and the kernel give without any
// bus: round trips between two processes that busy-poll a shared cache
// line, wait in futex and wake each other, or read an eventfd through the
// Go netpoller.
func BenchmarkRawFloor(b *testing.B) {
	for _, mode := range []string{"line", "futex", "eventfd"} {
		b.Run(mode, func(b *testing.B) {
			l, err := rawRTT(mode, 300*time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			slices.Sort(l)
			b.ReportMetric(float64(benchkit.Percentile(l, 50)), "p50-ns")
			b.ReportMetric(float64(benchkit.Percentile(l, 99)), "p99-ns")
		})
	}
}

// BenchmarkAskTail times b.N asks of 64 bytes over shared memory to the
// peer process's echo actor, in rounds of 1,000, and says where the slow
// ones lie: a histogram of the round trips, how many of those at or above
// the p99 came among the first 10 asks of a round, how many within 1 ms
// of the one before (a burst), and the vCPUs' steal time over the run.
// With alternate, a round of asks over the Unix socket follows each
// round, as in `xbus bench shm`, so that the shm link's readers idle
// between rounds; without it the shm asks run back to back.
func BenchmarkAskTail(b *testing.B) {
	p, err := newBenchPair()
	if err != nil {
		b.Fatal(err)
	}
	defer p.close()
	ctx := context.Background()
	msg := string(make([]byte, 64))
	ask := func(bb *bus.Bus) error { _, err := bb.Ask(ctx, "echo", msg); return err }
	for _, alternate := range []bool{false, true} {
		b.Run(fmt.Sprintf("alternate=%v", alternate), func(b *testing.B) {
			type sample struct {
				lat time.Duration
				at  time.Duration // since the first ask
				pos int           // in its round
			}
			ss := make([]sample, 0, b.N)
			steal0 := stealTicks()
			t0 := time.Now()
			for len(ss) < b.N {
				for k := range min(1000, b.N-len(ss)) {
					s := time.Now()
					if err := ask(p.shm); err != nil {
						b.Fatal(err)
					}
					ss = append(ss, sample{time.Since(s), s.Sub(t0), k})
				}
				for range 1000 {
					if !alternate {
						break
					}
					if err := ask(p.uds); err != nil {
						b.Fatal(err)
					}
				}
			}
			wall := time.Since(t0)
			lats := make([]time.Duration, len(ss))
			for i, s := range ss {
				lats[i] = s.lat
			}
			slices.Sort(lats)
			p99 := benchkit.Percentile(lats, 99)
			b.ReportMetric(float64(benchkit.Percentile(lats, 50)), "p50-ns")
			b.ReportMetric(float64(p99), "p99-ns")
			b.ReportMetric(float64(benchkit.Percentile(lats, 99.9)), "p99.9-ns")
			if b.N < 1000 {
				return // the round that sizes b.N: too few to place a tail
			}
			var hist strings.Builder
			lo := time.Duration(0)
			for _, hi := range []time.Duration{2, 5, 10, 20, 50, 100, 200, 500, 1000, 1 << 40} {
				hi *= time.Microsecond
				n := 0
				for _, l := range lats {
					if l >= lo && l < hi {
						n++
					}
				}
				fmt.Fprintf(&hist, " [%v,%v):%.2f%%", lo, min(hi, time.Hour), 100*float64(n)/float64(len(lats)))
				lo = hi
			}
			var tail, first, burst int
			prev := -time.Hour
			for _, s := range ss {
				if s.lat < p99 {
					continue
				}
				tail++
				if s.pos < 10 {
					first++
				}
				if s.at-prev < time.Millisecond {
					burst++
				}
				prev = s.at
			}
			steal := time.Duration(stealTicks()-steal0) * 10 * time.Millisecond // USER_HZ 100
			b.Logf("histogram:%s", hist.String())
			b.Logf("%d asks at or above the p99 (%v): %d among the first 10 of a round, %d within 1 ms of the one before; steal %v in %v of wall time",
				tail, p99, first, burst, steal, wall)
		})
	}
}

// stealTicks is the time the hypervisor ran others on this machine's
// vCPUs, in ticks of /proc/stat; 0 when it cannot be read.
func stealTicks() int64 {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	if len(f) < 9 || f[0] != "cpu" {
		return 0
	}
	v, _ := strconv.ParseInt(f[8], 10, 64)
	return v
}
