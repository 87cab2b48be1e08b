package supbench

import (
	"testing"
	"time"

	"github.com/xbus-dev/xbus/internal/benchkit"
	"github.com/xbus-dev/xbus/supervisor"
)

// BenchmarkRestartLatency reports p50 and p99 of the time from a panic to
// the restarted instance handling its next message, beside the same gap for
// an actor with no supervisor (the bus resumes it), measured in the same
// run, and their ratio: what supervision adds to the bus's failure path.
func BenchmarkRestartLatency(b *testing.B) {
	n := max(b.N, 200)
	base, err := measureRecovery(n, unsupervised, true)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	lat, err := measureRecovery(n, supervisor.Restart, true)
	if err != nil {
		b.Fatal(err)
	}
	b.StopTimer()
	bl, rl := percentiles("baseline", base), percentiles("restart", lat)
	b.ReportMetric(float64(rl.P50.Nanoseconds()), "p50-ns")
	b.ReportMetric(float64(rl.P99.Nanoseconds()), "p99-ns")
	b.ReportMetric(float64(bl.P50.Nanoseconds()), "unsupervised-p50-ns")
	b.ReportMetric(float64(rl.P50)/float64(max(bl.P50, 1)), "x-unsupervised")
}

// TestRunBench runs the suite cmd/xbus prints, briefly, and checks its
// rows.
func TestRunBench(t *testing.T) {
	var rows benchkit.Rows
	if err := runBench(&rows, 50); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want 4: %+v", len(rows), rows)
	}
	for _, r := range rows {
		if r.Xbus <= 0 || r.Unit != benchkit.Nanos {
			t.Errorf("row %q: %v %s", r.Name, r.Xbus, r.Unit)
		}
	}
	if r := rows[0]; r.Baseline <= 0 || r.Target == "" || (r.Status != "ok" && r.Status != "MISS") {
		t.Errorf("restart row lacks its baseline or verdict: %+v", r)
	}
	l := percentiles("x", []time.Duration{5, 1, 4, 2, 3})
	if l.P50 != 3 || l.P99 != 5 {
		t.Errorf("percentiles of 1..5: p50 %v p99 %v", l.P50, l.P99)
	}
}
