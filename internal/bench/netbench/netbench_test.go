package netbench

import (
	"errors"
	"os"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/internal/benchkit"
)

// TestMain serves the peer process that this test binary is started as.
func TestMain(m *testing.M) {
	if code, ok := benchkit.ServePeer(os.Args[1:], map[string]func(string) int{PeerName: Peer}); ok {
		os.Exit(code)
	}
	os.Exit(m.Run())
}

// TestPeerRounds starts the peer process, makes interleaved rounds over
// both kinds of socket, and checks that every round trip was measured and
// that closing ends the peer process and leaves no goroutine behind.
func TestPeerRounds(t *testing.T) {
	base := runtime.NumGoroutine()
	p, err := startPeer()
	if err != nil {
		t.Fatal(err)
	}
	proc := p.child.Process()
	for _, kind := range []string{"TCP", "Unix"} {
		s, err := p.ends[kind].measure(0, 50)
		if err != nil {
			p.close()
			t.Fatalf("%s: %v", kind, err)
		}
		for i, l := range [][]time.Duration{s.raw, s.floor, s.ask, s.inline} {
			if len(l) != 50 {
				t.Errorf("%s: series %d has %d round trips, want 50", kind, i, len(l))
			}
			if len(l) > 0 && (l[0] <= 0 || l[len(l)-1] < l[0]) {
				t.Errorf("%s: series %d is not sorted positive durations: %v", kind, i, l)
			}
		}
	}
	p.close()
	if err := proc.Signal(syscall.Signal(0)); !errors.Is(err, os.ErrProcessDone) {
		t.Errorf("peer process %d still there after close: %v", proc.Pid, err)
	}
	if _, err := os.Stat(p.dir); !os.IsNotExist(err) {
		t.Errorf("socket directory %s left behind: %v", p.dir, err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<16)
		t.Errorf("%d goroutines before, %d after:\n%s", base, n, buf[:runtime.Stack(buf, true)])
	}
}

// TestRunBenchQuick runs the whole `xbus bench net` table in its quick form
// and checks the two-process rows are there and filled.
func TestRunBenchQuick(t *testing.T) {
	if testing.Short() {
		t.Skip("benchmark table")
	}
	var rows benchkit.Rows
	if err := RunBench(&rows, true); err != nil {
		t.Fatalf("%v\n%+v", err, rows)
	}
	for _, kind := range []string{"TCP", "Unix"} {
		for _, row := range []string{"ask round trip p50 (raw ping-pong)", "ask round trip p99 (raw ping-pong)", "ask round trip p50, actor WithInline (raw ping-pong)", "hand-off floor p50 (raw ping-pong)", "ask round trip p50 (hand-off floor)",
			"one-way tells (raw buffered stream)", "CPU per tell, sending process (raw stream)", "CPU per tell, receiving process (raw stream)"} {
			r, ok := rows.Find(kind + ", two processes: " + row)
			if !ok {
				t.Errorf("no %q row for %s in %+v", row, kind, rows)
				continue
			}
			if r.Xbus <= 0 || r.Baseline <= 0 {
				t.Errorf("row %q is not filled: %+v", r.Name, r)
			}
		}
	}
}

// BenchmarkAskTwoProcesses measures ask round trips to a peer process, each round
// interleaved with a raw ping-pong of the same bytes and the hand-off floor
// (see measure). ns/op is a whole round of four; the figures to read are
// the p50s and their ratios.
func BenchmarkAskTwoProcesses(b *testing.B) {
	p, err := startPeer()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.close)
	for _, kind := range []string{"TCP", "Unix"} {
		b.Run(strings.ToLower(kind), func(b *testing.B) {
			e := p.ends[kind]
			var s samples
			for b.Loop() {
				r, err := e.measure(0, 1)
				if err != nil {
					b.Fatal(err)
				}
				s.raw, s.floor = append(s.raw, r.raw...), append(s.floor, r.floor...)
				s.ask, s.inline = append(s.ask, r.ask...), append(s.inline, r.inline...)
			}
			s.sort()
			b.ReportMetric(float64(at(s.ask, .5).Nanoseconds()), "ask-p50-ns")
			b.ReportMetric(float64(at(s.ask, .5))/float64(at(s.raw, .5)), "x-raw-pingpong")
			b.ReportMetric(float64(at(s.ask, .5))/float64(at(s.floor, .5)), "x-handoff-floor")
			b.ReportMetric(float64(at(s.inline, .5))/float64(at(s.raw, .5)), "inline-x-raw-pingpong")
			b.ReportMetric(float64(at(s.floor, .5))/float64(at(s.raw, .5)), "floor-x-raw-pingpong")
		})
	}
}

// BenchmarkTellTwoProcesses sends b.N one-way tells of a 64-byte []byte
// body to a sink in a peer process over each kind of socket, and as many
// frames of the same size as a raw buffered stream, in alternating rounds
// of up to 200,000 (see end.tells). Besides both rates it reports the CPU
// time per message of the sending and the receiving process, which other
// load on the machine skews much less than a rate. The borrowed rows send
// to a sink that borrows its bodies (bus.WithBorrowedBytes), the inline
// rows to one that also runs on the link's reader (bus.WithInline).
func BenchmarkTellTwoProcesses(b *testing.B) {
	p, err := startPeer()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.close)
	for _, kind := range []string{"TCP", "Unix", "TCP/borrowed", "Unix/borrowed", "TCP/inline", "Unix/inline"} {
		b.Run(strings.ToLower(kind), func(b *testing.B) {
			kind, sink := kind, "sink"
			if k, ok := strings.CutSuffix(kind, "/borrowed"); ok {
				kind, sink = k, "sink-borrowed"
			} else if k, ok := strings.CutSuffix(kind, "/inline"); ok {
				kind, sink = k, "sink-inline"
			}
			f, err := p.ends[kind].tells(sink, b.N, 200_000)
			if err != nil {
				b.Fatal(err)
			}
			b.ReportMetric(f.Tells/1e6, "M-tells/s")
			b.ReportMetric(f.Stream/1e6, "M-raw/s")
			b.ReportMetric(f.Tells/f.Stream, "x-raw-stream")
			b.ReportMetric(f.TellSend, "send-cpu-ns/msg")
			b.ReportMetric(f.TellRecv, "recv-cpu-ns/msg")
			b.ReportMetric(f.StreamSend, "raw-send-cpu-ns/msg")
			b.ReportMetric(f.StreamRecv, "raw-recv-cpu-ns/msg")
			b.ReportMetric(float64(f.Dropped), "dropped")
		})
	}
}
