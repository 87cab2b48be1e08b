package natstest

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/xbus-dev/xbus/bus/bustest"
)

// TestMain runs the helper node when the test binary is re-executed as one
// (see startHelper), and otherwise the tests, failing the package if
// goroutines of ours outlive them.
func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) != "" {
		if err := runHelper(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	bustest.Main(m)
}

// runServer starts a nats-server in process on a free loopback port.
func runServer(t testing.TB) *server.Server { return runServerOn(t, -1) }

// runServerOn starts a nats-server in process on port (-1: a free one).
func runServerOn(t testing.TB, port int) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server did not start")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}
