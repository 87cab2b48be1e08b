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

// TestRunBenchQuick runs the suite shortened: a unary row and a stream
// row per place, each with both figures measured (the unary one with its
// target), and the peer process gone after it.
func TestRunBenchQuick(t *testing.T) {
	var rows benchkit.Rows
	if err := RunBench(&rows, true); err != nil {
		t.Fatal(err)
	}
	places := []string{"in process", "TCP, two processes"}
	if runtime.GOOS == "linux" {
		places = append(places, "shm, two processes")
	}
	if len(rows) != 2*len(places) {
		t.Fatalf("rows %+v, want two for each of %v", rows, places)
	}
	for i, r := range rows {
		place, unary := places[i/2], i%2 == 0
		if !strings.HasPrefix(r.Name, place) || r.Xbus <= 0 || r.Baseline <= 0 {
			t.Fatalf("row %d: %+v, want %s with both figures", i, r, place)
		}
		if unary != strings.Contains(r.Name, "unary") || unary != (r.Target != "") ||
			!unary && (!strings.Contains(r.Name, "stream") || r.Unit != benchkit.PerSec) {
			t.Fatalf("row %d: %+v, want the %s row (unary: %v) of %s", i, r, map[bool]string{true: "unary", false: "stream"}[unary], unary, place)
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
			what := "-x-ask"
			if r.Unit == benchkit.PerSec {
				what = "-stream-x-baseline"
			}
			b.ReportMetric(r.Ratio(), strings.ReplaceAll(strings.SplitN(r.Name, ":", 2)[0], " ", "")+what)
		}
	}
}
