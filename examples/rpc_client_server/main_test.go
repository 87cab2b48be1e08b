package main

import (
	"bufio"
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// The test binary doubles as the example's server process.
func TestMain(m *testing.M) {
	if addr := os.Getenv("RPC_EXAMPLE_SERVER"); addr != "" {
		if err := run(context.Background(), []string{"server", "-addr", addr}, os.Stdout); err != nil {
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestServerAndClient runs the server as its own process and the client
// against it, as in two terminals, over TCP and over a Unix socket; the
// server then shuts down gracefully on SIGTERM.
func TestServerAndClient(t *testing.T) {
	for _, listen := range []string{"tcp://127.0.0.1:0", "unix://" + filepath.Join(t.TempDir(), "arith.sock")} {
		t.Run(strings.SplitN(listen, ":", 2)[0], func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), "RPC_EXAMPLE_SERVER="+listen)
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
			if err := run(context.Background(), []string{"client", "-addr", addr, "-n", "3"}, &out); err != nil {
				t.Fatal(err)
			}
			want := "1 + 10 = 11 (call 1 on the server)\n2 + 20 = 22 (call 2 on the server)\n3 + 30 = 33 (call 3 on the server)\n" +
				"84 / 2 = 42\n1 / 0: division by zero; invalid argument: true\n"
			if out.String() != want {
				t.Fatalf("client printed\n%s\nwant\n%s", out.String(), want)
			}
		})
	}
}
