package rpcbench

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/xbus-dev/xbus/internal/benchkit"
)

// TestMain serves the peer process that this test binary is started as.
func TestMain(m *testing.M) {
	if code, ok := benchkit.ServePeer(os.Args[1:], map[string]func(string) int{PeerName: Peer}); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestRunBenchQuick runs the suite shortened: a row per place, each with
// both figures measured, and the peer process gone after it.
func TestRunBenchQuick(t *testing.T) {
	var rows benchkit.Rows
	if err := RunBench(&rows, true); err != nil {
		t.Fatal(err)
	}
	want := []string{"in process", "TCP, two processes"}
	if runtime.GOOS == "linux" {
		want = append(want, "shm, two processes")
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %+v, want one for each of %v", rows, want)
	}
	for i, r := range rows {
		if !strings.HasPrefix(r.Name, want[i]) || r.Xbus <= 0 || r.Baseline <= 0 || r.Target == "" {
			t.Fatalf("row %d: %+v, want %s with both figures and a target", i, r, want[i])
		}
	}
}

// BenchmarkSuite runs the whole suite, printing its ratios as metrics.
func BenchmarkSuite(b *testing.B) {
	for range b.N {
		var rows benchkit.Rows
		if err := RunBench(&rows, false); err != nil {
			b.Fatal(err)
		}
		for _, r := range rows {
			b.ReportMetric(r.Ratio(), strings.ReplaceAll(strings.SplitN(r.Name, ":", 2)[0], " ", "")+"-x-ask")
		}
	}
}
