package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
)

// The test binary doubles as the example's server process.
func TestMain(m *testing.M) {
	if os.Getenv("REMOTE_EXAMPLE_SERVER") != "" {
		if err := run(context.Background(), []string{"server", "-listen", "tcp://127.0.0.1:0", "-secret", "s3cret"}, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestServerAndClient runs the server as its own process and the client
// against it, as in two terminals.
func TestServerAndClient(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "REMOTE_EXAMPLE_SERVER=1")
	cmd.Stderr = os.Stderr
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("server exited with %v", err)
		}
	}()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "listening on ") {
		t.Fatalf("server said %q: %v", line, err)
	}
	addr := strings.TrimSpace(strings.TrimPrefix(line, "listening on "))

	var out bytes.Buffer
	if err := run(context.Background(), []string{"client", "-connect", addr, "-secret", "s3cret", "-n", "3"}, &out); err != nil {
		t.Fatal(err)
	}
	want := "1 + 10 = 11\n2 + 20 = 22\n3 + 30 = 33\n-1 + 1: add: negative operands; matches ErrNegative: true\n"
	if out.String() != want {
		t.Fatalf("client printed\n%s\nwant\n%s", out.String(), want)
	}
	// A client with the wrong secret is refused.
	if err := run(context.Background(), []string{"client", "-connect", addr, "-secret", "wrong"}, &out); err == nil {
		t.Fatal("client with the wrong secret was served")
	}
}
