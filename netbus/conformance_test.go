package netbus_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/xbus-dev/xbus/bus"
	"github.com/xbus-dev/xbus/bus/bustest"
	"github.com/xbus-dev/xbus/netbus"
)

var errBroken = errors.New("link broken by the test")

// conformance returns a bustest.Maker for netbus: B listens on the address
// listen returns, A keeps it linked (its bus links again after Heal); both
// start from cfg.
func conformance(listen func(t *testing.T) string, cfg netbus.Config) bustest.Maker {
	return func(t *testing.T, a, b []bus.Option) bustest.Pair {
		cb := cfg
		cb.Listen = []string{listen(t)}
		trB := netbus.New(cb)
		tapB := bustest.NewTap(trB)
		B := bustest.NewBus(t, tapB, b...)
		ca := cfg
		ca.Peers = trB.Addrs()
		trA := netbus.New(ca)
		tapA := bustest.NewTap(trA)
		A := bustest.NewBus(t, tapA, append(a, bus.WithBackoff(time.Millisecond, 20*time.Millisecond))...)
		return bustest.Pair{A: A, B: B,
			Break: func() { bustest.Break(errBroken, tapA, tapB) },
			Heal:  func() { bustest.Heal(tapA, tapB) },
		}
	}
}

func listenTCP(*testing.T) string { return "tcp://127.0.0.1:0" }

func listenUnix(t *testing.T) string { return "unix://" + filepath.Join(t.TempDir(), "b.sock") }

func TestConformanceTCP(t *testing.T) {
	bustest.TestTransport(t, conformance(listenTCP, netbus.Config{}))
}

func TestConformanceUnix(t *testing.T) {
	bustest.TestTransport(t, conformance(listenUnix, netbus.Config{}))
}

// TestConformanceTCPPooled runs the suite over a pool of four connections
// per link, S2-compressed: per-sender order must hold across the pool.
func TestConformanceTCPPooled(t *testing.T) {
	bustest.TestTransport(t, conformance(listenTCP, netbus.Config{PoolSize: 4, Compression: netbus.S2}))
}

// TestConformanceUnixZstd runs the suite with Zstd-compressed frames.
func TestConformanceUnixZstd(t *testing.T) {
	bustest.TestTransport(t, conformance(listenUnix, netbus.Config{Compression: netbus.Zstd}))
}
