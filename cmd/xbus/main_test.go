package main

import (
	"bytes"
	"encoding/json"
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
	if !strings.Contains(out.String(), "ratio = xbus ÷ baseline") {
		t.Errorf("no statement of the ratio's direction in:\n%s", out.String())
	}
	rows := tableRows(out.String())
	if h, ok := rows["row"]; !ok || len(h) != 6 || h[3] != "xbus ÷ baseline" {
		t.Fatalf("no table header with the ratio's direction (%q) in:\n%s", h, out.String())
	}
	n := runtime.GOMAXPROCS(0)
	for _, c := range []struct {
		prefix   string
		baseline bool
	}{
		{"Tell to a Ref 1→1", true},
		{"Tell to a Ref 2→1", true},
		{"Tell " + strconv.Itoa(n) + "→" + strconv.Itoa(n), true},
		{"Tell by name 1→1", true},
		{"Tell by name to 3 instances", true},
		{"Ask round trip p50 (chan", true},
		{"Ask round trip p99 (chan", true},
		{"Ask round trip p50, actor WithInline", true},
		{"Ask round trip p99, actor WithInline", true},
		{"spawn 10k idle actors", true},
		{"bytes per idle actor", true},
		{"allocations per Tell", false},
		{"allocations per Ask", false},
	} {
		var cells []string
		for name, cs := range rows {
			if strings.HasPrefix(name, c.prefix) {
				cells = cs
			}
		}
		if cells == nil {
			t.Errorf("no row %q in:\n%s", c.prefix, out.String())
			continue
		}
		if len(cells) != 6 {
			t.Errorf("row %q has %d cells, want 6: %q", c.prefix, len(cells), cells)
			continue
		}
		if cells[1] == "" || c.baseline && (cells[2] == "" || !strings.HasSuffix(cells[3], "×")) {
			t.Errorf("row %q lacks the xbus figure, the baseline or the ratio: %q", c.prefix, cells)
		}
		if cells[4] != "" && cells[5] != "ok" && cells[5] != "MISS" {
			t.Errorf("row %q has a target but no status: %q", c.prefix, cells)
		}
	}
	if !strings.Contains(errb.String(), "xbus bench inproc") || !strings.Contains(errb.String(), "Tell to a Ref 1→1") {
		t.Errorf("no progress on stderr:\n%s", errb.String())
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
		args   []string
		code   int
		stdout string // in stdout, or ""
		stderr string // in stderr, or ""
	}{
		{nil, 2, "", "Usage:"},
		{[]string{"help"}, 0, "xbus bench", ""},
		{[]string{"-h"}, 0, "xbus bench", ""},
		{[]string{"frobnicate"}, 2, "", `unknown command "frobnicate"`},
		{[]string{"bench", "-h"}, 0, "Usage: xbus bench", ""},
		{[]string{"bench", "--help"}, 0, "-json", ""},
		{[]string{"bench", "shm", "-h"}, 0, "Suites: inproc", ""},
		{[]string{"bench", "warp"}, 2, "", `unknown suite "warp"`},
		{[]string{"bench", "-nope"}, 2, "", "flag provided but not defined"},
		{[]string{"bench", "supervisor", "-nope"}, 2, "", "flag provided but not defined"},
		{[]string{"bench", "inproc", "net"}, 2, "", "one suite at most"},
		{[]string{"bench", "inproc", "-quick", "net"}, 2, "", "one suite at most"},
		{[]string{benchkit.PeerArg}, 2, "", "want a peer's name"},
		{[]string{benchkit.PeerArg, "nobody", "x"}, 2, "", `no benchmark peer "nobody"`},
	} {
		o, e, code := command(t, c.args...)
		if code != c.code || !strings.Contains(o, c.stdout) || !strings.Contains(e, c.stderr) {
			t.Errorf("xbus %v: exit %d (want %d), stdout %q (want %q), stderr %q (want %q)", c.args, code, c.code, o, c.stdout, e, c.stderr)
		}
	}
}

// TestBenchFlagsInAnyPosition runs the supervisor suite with its flags
// before and after the suite's name, in both spellings of -json, and
// checks that each prints one JSON document of that suite's rows, and
// progress on stderr.
func TestBenchFlagsInAnyPosition(t *testing.T) {
	for _, args := range [][]string{
		{"bench", "supervisor", "-quick", "-json"},
		{"bench", "--json", "-quick", "supervisor"},
		{"bench", "-quick", "supervisor", "--json"},
	} {
		var out, errb bytes.Buffer
		if code := run(args, &out, &errb); code != 0 {
			t.Fatalf("%v: exit %d\n%s", args, code, errb.String())
		}
		var doc struct {
			Build      string `json:"build"`
			GOMAXPROCS int    `json:"gomaxprocs"`
			Ratio      string `json:"ratio"`
			Suites     []struct {
				Name  string `json:"name"`
				Title string `json:"title"`
				Rows  []struct {
					Row      string   `json:"row"`
					Unit     string   `json:"unit"`
					Xbus     float64  `json:"xbus"`
					Baseline float64  `json:"baseline"`
					Ratio    *float64 `json:"ratio"`
					Target   string   `json:"target"`
					Status   string   `json:"status"`
				} `json:"rows"`
			} `json:"suites"`
		}
		dec := json.NewDecoder(&out)
		dec.DisallowUnknownFields()
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("%v: output is not the JSON document: %v", args, err)
		}
		if dec.More() {
			t.Errorf("%v: more after the JSON document", args)
		}
		if !strings.HasPrefix(doc.Build, "xbus ") || doc.Ratio != "xbus ÷ baseline" {
			t.Errorf("%v: build %q, ratio %q", args, doc.Build, doc.Ratio)
		}
		if len(doc.Suites) != 1 || doc.Suites[0].Name != "supervisor" || len(doc.Suites[0].Rows) != 4 {
			t.Fatalf("%v: want the supervisor suite's 4 rows, got %+v", args, doc.Suites)
		}
		r := doc.Suites[0].Rows[0]
		if r.Unit != "ns" || r.Xbus <= 0 || r.Baseline <= 0 || r.Ratio == nil || *r.Ratio != r.Xbus/r.Baseline || r.Target == "" || r.Status == "" {
			t.Errorf("%v: first row %+v", args, r)
		}
		if last := doc.Suites[0].Rows[3]; last.Ratio != nil || last.Baseline != 0 {
			t.Errorf("%v: a row without a baseline has a ratio: %+v", args, last)
		}
		if !strings.Contains(errb.String(), "xbus bench supervisor") || !strings.Contains(errb.String(), "restart") {
			t.Errorf("%v: no progress on stderr: %q", args, errb.String())
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
	for _, prefix := range []string{"Ask round trip p50, 64 B", "Ask at 1,000/s p50", "one-way Tell, 64 B, 1 sender", "raw floor"} {
		var cells []string
		for name, c := range rows {
			if strings.HasPrefix(name, prefix) {
				cells = c
			}
		}
		if len(cells) != 6 || cells[1] == "" || prefix != "raw floor" && cells[2] == "" {
			t.Errorf("row %q missing or empty (%q) in:\n%s", prefix, cells, out.String())
		}
	}
}
