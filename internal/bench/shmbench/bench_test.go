//go:build linux

package shmbench

import (
	"slices"
	"testing"
	"time"

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
