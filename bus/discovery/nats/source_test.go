package nats

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
)

// TestStartFailsClearly: with no NATS server to reach, bus.New fails with
// an error that says so, and closing the source neither hangs nor panics.
func TestStartFailsClearly(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nobody listens there now
	src, err := New(Config{URL: "nats://" + addr, Secret: testSecret, Options: nil})
	if err != nil {
		t.Fatal(err)
	}
	b, err := bus.New(bus.WithDiscovery(src))
	if err == nil {
		b.Close(context.Background())
		t.Fatal("bus.New succeeded without a NATS server")
	}
	if !strings.Contains(err.Error(), "connecting to nats://"+addr) {
		t.Fatalf("bus.New: %v; want it to name the server it could not reach", err)
	}
	done := make(chan error, 1)
	go func() { done <- src.Close() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close of a source whose Start failed hangs")
	}
	// A Source serves one bus.
	if err := src.Start(context.Background(), nil); err == nil || !strings.Contains(err.Error(), "one bus") {
		t.Fatalf("second Start: %v", err)
	}
}
