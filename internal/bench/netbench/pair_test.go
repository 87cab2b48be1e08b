package netbench

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/internal/benchkit"
)

func benchPair(b *testing.B, listen string) *BenchPair {
	p, err := NewBenchPair(listen, 64)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { p.Close() })
	return p
}

func listens(b *testing.B) map[string]string {
	return map[string]string{"tcp": "tcp://127.0.0.1:0", "unix": "unix://" + filepath.Join(b.TempDir(), "b.sock")}
}

// BenchmarkAsk measures an ask round trip between two buses over netbus and
// reports it as a ratio of a raw ping-pong of the same bytes on the same
// kind of socket, and of that ping-pong with a goroutine hand-off on each
// end (RawPingPongHandoff), both measured in the same run.
func BenchmarkAsk(b *testing.B) {
	for name, listen := range listens(b) {
		b.Run(name, func(b *testing.B) {
			p := benchPair(b, listen)
			raw, err := RawPingPong(listen, p.FrameSize, 500*time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			floor, err := RawPingPongHandoff(listen, p.FrameSize, 500*time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			for b.Loop() {
				if err := p.Ask(ctx); err != nil {
					b.Fatal(err)
				}
			}
			per := time.Since(start) / time.Duration(b.N)
			rawMean := raw.Elapsed / time.Duration(raw.N)
			b.ReportMetric(float64(per)/float64(rawMean), "x-raw-pingpong")
			b.ReportMetric(float64(per)/float64(floor.Elapsed/time.Duration(floor.N)), "x-handoff-floor")
		})
	}
}

// BenchmarkAskParallel measures asks per second with 128 callers.
func BenchmarkAskParallel(b *testing.B) {
	p := benchPair(b, "tcp://127.0.0.1:0")
	ctx := context.Background()
	b.ReportAllocs()
	b.SetParallelism(64) // 128 callers on 2 CPUs
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := p.Ask(ctx); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkTell measures one-way tells until all have arrived, as a ratio
// of a raw buffered stream of the same bytes.
func BenchmarkTell(b *testing.B) {
	for name, listen := range listens(b) {
		b.Run(name, func(b *testing.B) {
			p := benchPair(b, listen)
			raw, err := RawStream(listen, p.FrameSize, 300*time.Millisecond)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.ResetTimer()
			base := p.taken()
			start := time.Now()
			for b.Loop() {
				if err := p.Client.Tell("sink", p.body); err != nil {
					b.Fatal(err)
				}
			}
			for p.taken()-base < int64(b.N) {
				time.Sleep(50 * time.Microsecond)
			}
			rate := float64(b.N) / time.Since(start).Seconds()
			b.ReportMetric(rate, "msgs/s")
			b.ReportMetric(rate/raw, "x-raw-stream")
		})
	}
}

// TestOneProcess runs the one-process table briefly.
func TestOneProcess(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark table")
	}
	var rows benchkit.Rows
	if err := OneProcess(&rows, BenchOptions{Duration: 50 * time.Millisecond, Concurrency: []int{1, 16}}); err != nil {
		t.Fatal(err)
	}
	for _, nw := range []string{"TCP", "Unix"} {
		for _, row := range []string{"ask round trip p50 (raw ping-pong)", "ask round trip p50, actor WithInline (raw ping-pong)", "hand-off floor p50 (raw ping-pong)", "asks, 16 callers (raw ping-pong, 1 caller)", "one-way tells (raw buffered stream)"} {
			r, ok := rows.Find(nw + ", one process: " + row)
			if !ok {
				t.Errorf("no %q row for %s in %+v", row, nw, rows)
			} else if r.Xbus <= 0 || r.Baseline <= 0 {
				t.Errorf("row %q is not filled: %+v", r.Name, r)
			}
		}
	}
}
