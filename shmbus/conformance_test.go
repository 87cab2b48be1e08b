//go:build linux

package shmbus_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/shmbus"
)

// TestConformance runs the bustest suite over shared memory: B listens, A
// keeps it linked (its bus links again after Heal).
func TestConformance(t *testing.T) {
	bustest.TestTransport(t, conformance(shmbus.Config{}))
}

// TestConformanceSmallRing runs the suite over the smallest rings, where
// most bodies are fragmented and a full ring is the common case.
func TestConformanceSmallRing(t *testing.T) {
	bustest.TestTransport(t, conformance(shmbus.Config{RingSize: shmbus.MinRingSize}))
}

func conformance(cfg shmbus.Config) bustest.Maker {
	return func(t *testing.T, a, b []bus.Option) bustest.Pair {
		path := filepath.Join(t.TempDir(), "b.sock")
		cb, ca := cfg, cfg
		cb.Listen, ca.Dial = path, []string{path}
		tapB := bustest.NewTap(shmbus.New(cb))
		B := bustest.NewBus(t, tapB, b...)
		tapA := bustest.NewTap(shmbus.New(ca))
		A := bustest.NewBus(t, tapA, append(a, bus.WithBackoff(time.Millisecond, 20*time.Millisecond))...)
		broken := errors.New("link broken by the test")
		return bustest.Pair{A: A, B: B,
			Break: func() { bustest.Break(broken, tapA, tapB) },
			Heal:  func() { bustest.Heal(tapA, tapB) },
		}
	}
}
