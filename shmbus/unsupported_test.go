//go:build !linux

package shmbus_test

import (
	"context"
	"errors"
	"testing"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/shmbus"
)

// TestUnsupported checks that off Linux a bus with shmbus fails to start,
// and a dial fails, with an error wrapping bus.ErrUnsupported.
func TestUnsupported(t *testing.T) {
	_, err := bus.New(bus.WithTransport(shmbus.New(shmbus.Config{})))
	if !errors.Is(err, shmbus.ErrUnsupported) || !errors.Is(err, bus.ErrUnsupported) {
		t.Fatalf("bus.New with shmbus: %v, want ErrUnsupported", err)
	}
	if _, err := shmbus.New(shmbus.Config{}).Dial(context.Background(), "shm:///x"); !errors.Is(err, bus.ErrUnsupported) {
		t.Fatalf("Dial: %v, want ErrUnsupported", err)
	}
}
