//go:build linux

package shmbench_test

import (
	"bytes"
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
	var out bytes.Buffer
	if err := shmbench.RunBench(&out, true); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	for _, row := range []string{
		"Ask round trip, 64 B p50", "Ask round trip, 4096 B p99.9", "Ask at 1,000/s p99",
		"CPU per ask", "one-way Tell, 64 B, 1 sender", "one-way Tell, 64 B, 4 sender",
		"raw floor: cache-line", "raw: futex", "raw: eventfd",
		"ring 4 KiB: Ask p50", "ring 1024 KiB: Ask p50",
		"Ask round trip, 64 B, actor WithInline p50", "one-way Tell, 64 B, 1 sender, actor WithInline",
	} {
		i := strings.Index(out.String(), "| "+row)
		if i < 0 {
			t.Errorf("no row %q in:\n%s", row, out.String())
			continue
		}
		line, _, _ := strings.Cut(out.String()[i:], "\n")
		if cells := strings.Split(strings.Trim(line, "|"), "|"); len(cells) != 6 || strings.TrimSpace(cells[1]) == "" || strings.TrimSpace(cells[2]) == "" {
			t.Errorf("row %q is not filled: %q", row, line)
		}
	}
	t.Log("\n" + out.String())
	for i := 0; runtime.NumGoroutine() > base; i++ {
		if i == 200 {
			t.Fatalf("goroutines leaked: %d > %d", runtime.NumGoroutine(), base)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
