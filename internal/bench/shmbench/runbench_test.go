//go:build linux

package shmbench_test

import (
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/internal/bench/shmbench"
	"github.com/xbus-dev/xbus/internal/benchkit"
)

// TestMain serves the peer processes that this test binary is started as.
func TestMain(m *testing.M) {
	if code, ok := benchkit.ServePeer(os.Args[1:], map[string]func(string) int{shmbench.PeerName: shmbench.Peer}); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestRunBenchQuick runs the `xbus bench shm` suite in its quick form
// (child processes included) and checks that every row is there and filled.
func TestRunBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("starts four child processes")
	}
	base := runtime.NumGoroutine()
	var rows benchkit.Rows
	if err := shmbench.RunBench(&rows, true); err != nil {
		t.Fatalf("%v\n%+v", err, rows)
	}
	for _, prefix := range []string{
		"Ask round trip p50, 64 B", "Ask round trip p99.9, 4096 B", "Ask at 1,000/s p99",
		"CPU per ask", "one-way Tell, 64 B, 1 sender", "one-way Tell, 64 B, 4 sender",
		"ring 4 KiB: Ask p50", "ring 1024 KiB: Tell",
		"Ask round trip p50, 64 B, actor WithInline", "one-way Tell, 64 B, 1 sender, actor WithInline",
	} {
		var found bool
		for _, r := range rows {
			if strings.HasPrefix(r.Name, prefix) {
				found = true
				if r.Xbus <= 0 || r.Baseline <= 0 {
					t.Errorf("row %q lacks a figure or its baseline: %+v", r.Name, r)
				}
			}
		}
		if !found {
			t.Errorf("no row %q in %+v", prefix, rows)
		}
	}
	for _, prefix := range []string{"raw floor: cache-line", "raw: futex", "raw: eventfd"} {
		var found bool
		for _, r := range rows {
			if strings.HasPrefix(r.Name, prefix) && r.Xbus > 0 {
				found = true
			}
		}
		if !found {
			t.Errorf("no row %q with a figure in %+v", prefix, rows)
		}
	}
	for _, r := range rows {
		if r.Target != "" && r.Status != "ok" && r.Status != "MISS" {
			t.Errorf("row %q has a target but no status: %+v", r.Name, r)
		}
	}
	for i := 0; runtime.NumGoroutine() > base; i++ {
		if i == 200 {
			t.Fatalf("goroutines leaked: %d > %d", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
