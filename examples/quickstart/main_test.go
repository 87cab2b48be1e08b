package main

import (
	"bytes"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestMain lets the test binary stand in for the quickstart program: run
// with XBUS_QUICKSTART_HELPER=1 it is the program, in a process of its own.
func TestMain(m *testing.M) {
	if os.Getenv("XBUS_QUICKSTART_HELPER") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const want = `== actors
registered greeter, calc and counter
== ask
greeter replied: hello, Ada (greeting #1)
greeter replied: hello, Grace (greeting #2)
calc: 2 + 3 = 5
AskAs[string] of an int reply fails: bus: reply of the wrong type: got int, want string
== tell
counter handled 1000 tells, then answered the ask sent after them
tell to an unknown name: bus: no route to actor: "nobody"
== subscribe
prices.> got prices.eur: EUR/USD at 1.08
prices.> got prices.gbp.spot: GBP/USD at 1.27
(news.today matched nobody: publishing to no subscriber is not an error)
== failure
ask calc 1/0: bus: actor failed: panic: runtime error: integer divide by zero
errors.Is(err, bus.ErrActorFailed) = true
calc is still there: 42 / 6 = 7
== dead letters
dead letter: main.Div{A:1, B:0} to calc: bus: actor failed: panic: runtime error: integer divide by zero
dead letters counted: 1 (actor failed: 1)
== close
ask after close: bus: closed
`

// TestQuickstartProcess runs the program as a real process and checks what
// it prints, line by line, and that the failure was logged, not fatal.
func TestQuickstartProcess(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "XBUS_QUICKSTART_HELPER=1")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("quickstart failed: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	got := strings.Split(stdout.String(), "\n")
	exp := strings.Split(want, "\n")
	for i := range max(len(got), len(exp)) {
		var g, e string
		if i < len(got) {
			g = got[i]
		}
		if i < len(exp) {
			e = exp[i]
		}
		if g != e {
			t.Fatalf("line %d:\n got  %q\n want %q\nwhole output:\n%s", i+1, g, e, stdout.String())
		}
	}
	if !strings.Contains(stderr.String(), "level=WARN") || !strings.Contains(stderr.String(), "integer divide by zero") {
		t.Errorf("the recovered panic was not logged to stderr:\n%s", stderr.String())
	}
}

// TestRunTwice runs the tour in this process twice: each run builds and
// closes its own bus, so nothing leaks from one into the next.
func TestRunTwice(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	before := runtime.NumGoroutine()
	for i := range 2 {
		var out bytes.Buffer
		if err := run(&out, log); err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if out.String() != want {
			t.Fatalf("run %d printed:\n%s", i, out.String())
		}
	}
	// Goroutines of stopped actors exit on their own; give them a moment.
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		buf := make([]byte, 1<<16)
		t.Fatalf("%d goroutines left behind:\n%s", n-before, buf[:runtime.Stack(buf, true)])
	}
}
