package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/internal/benchkit"
)

// TestMain lets the test binary stand in for the xbus command: run with
// XBUS_CMD_HELPER=1 it is the command, with the arguments after "--", and
// started as a benchmark peer it runs the hidden subcommand that serves it.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == benchkit.PeerArg {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	if os.Getenv("XBUS_CMD_HELPER") == "1" {
		args := os.Args[1:]
		for i, a := range args {
			if a == "--" {
				args = args[i+1:]
				break
			}
		}
		os.Exit(run(args, os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// command runs the xbus command as a process of its own.
func command(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), "XBUS_CMD_HELPER=1")
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return o.String(), e.String(), ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return o.String(), e.String(), 0
}

// tableRows returns the cells of each Markdown table row in out, keyed by
// the first cell.
func tableRows(out string) map[string][]string {
	rows := map[string][]string{}
	for line := range strings.SplitSeq(out, "\n") {
		if !strings.HasPrefix(line, "|") || strings.HasPrefix(line, "|---") {
			continue
		}
		cells := strings.Split(strings.Trim(line, "|"), "|")
		for i := range cells {
			cells[i] = strings.TrimSpace(cells[i])
		}
		rows[cells[0]] = cells
	}
	return rows
}

func TestBenchQuickPrintsEveryRow(t *testing.T) {
	before := runtime.NumGoroutine()
	var out, errb bytes.Buffer
	if code := run([]string{"bench", "-quick"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	rows := tableRows(out.String())
	if _, ok := rows["row"]; !ok {
		t.Fatalf("no table header in:\n%s", out.String())
	}
	n := runtime.GOMAXPROCS(0)
	for _, prefix := range []string{
		"Tell 1→1, msgs/s",
		"Tell 2→1, msgs/s",
		"Tell " + strconv.Itoa(n) + "→" + strconv.Itoa(n) + ", msgs/s",
		"Ask round trip p50",
		"Ask round trip p99",
		"Ask round trip p50, actor WithInline",
		"Ask round trip p99, actor WithInline",
		"spawn 10k idle actors",
		"bytes per idle actor",
		"allocations per Tell",
		"allocations per Ask",
	} {
		var cells []string
		for name, c := range rows {
			if strings.HasPrefix(name, prefix) {
				cells = c
			}
		}
		if cells == nil {
			t.Errorf("no row %q in:\n%s", prefix, out.String())
			continue
		}
		if len(cells) != 6 {
			t.Errorf("row %q has %d cells, want 6: %q", prefix, len(cells), cells)
			continue
		}
		if cells[1] == "" || cells[2] == "" {
			t.Errorf("row %q lacks the xbus figure or the baseline: %q", prefix, cells)
		}
		if cells[4] != "" && cells[5] != "ok" && cells[5] != "MISS" {
			t.Errorf("row %q has a target but no verdict: %q", prefix, cells)
		}
	}
	// The command's benchmarks leave nothing running behind them.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := runtime.NumGoroutine(); g > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left behind:\n%s", g-before, buf[:runtime.Stack(buf, true)])
	}
}

func TestCommandLine(t *testing.T) {
	stdout, _, code := command(t, "version")
	if code != 0 || !strings.HasPrefix(stdout, "xbus ") || !strings.Contains(stdout, runtime.Version()) {
		t.Errorf("version: exit %d, %q", code, stdout)
	}
	for _, c := range []struct {
		args []string
		code int
		want string // in stdout or stderr
	}{
		{nil, 2, "Usage:"},
		{[]string{"help"}, 0, "xbus bench"},
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{[]string{"bench", "warp"}, 2, `unknown suite "warp"`},
		{[]string{"bench", "-nope"}, 2, "flag provided but not defined"},
		{[]string{"bench", "inproc", "net"}, 2, "one suite at most"},
	} {
		o, e, code := command(t, c.args...)
		if code != c.code || !strings.Contains(o+e, c.want) {
			t.Errorf("xbus %v: exit %d (want %d), output %q (want %q)", c.args, code, c.code, o+e, c.want)
		}
	}
}

func TestBenchShmQuick(t *testing.T) {
	if runtime.GOOS != "linux" || testing.Short() {
		t.Skip("shared memory between processes: linux, and not in -short")
	}
	var out, errb bytes.Buffer
	prefix := filepath.Join(t.TempDir(), "cpu")
	if code := run([]string{"bench", "-quick", "-cpuprofile", prefix, "shm"}, &out, &errb); code != 0 {
		t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, out.String(), errb.String())
	}
	for _, side := range []string{".xbus.pprof", ".peer.pprof"} { // both processes wrote a profile (gzipped protobuf)
		b, err := os.ReadFile(prefix + side)
		if err != nil || len(b) < 64 || b[0] != 0x1f || b[1] != 0x8b {
			t.Errorf("profile %s: %d bytes, %v", side, len(b), err)
		}
	}
	rows := tableRows(out.String())
	for _, prefix := range []string{"Ask round trip, 64 B p50", "Ask at 1,000/s p50", "one-way Tell, 64 B, 1 sender", "raw floor"} {
		var cells []string
		for name, c := range rows {
			if strings.HasPrefix(name, prefix) {
				cells = c
			}
		}
		if len(cells) != 6 || cells[1] == "" || cells[2] == "" {
			t.Errorf("row %q missing or empty (%q) in:\n%s", prefix, cells, out.String())
		}
	}
}
