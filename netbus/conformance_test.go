package netbus_test

import (
	"context"
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
// listen returns, A keeps it linked (its bus links again after Heal).
func conformance(listen func(t *testing.T) string) bustest.Maker {
	return func(t *testing.T, a, b []bus.Option) bustest.Pair {
		trB := netbus.New(netbus.Config{Listen: []string{listen(t)}})
		tapB := bustest.NewTap(trB)
		B := startBus(t, tapB, b)
		trA := netbus.New(netbus.Config{Peers: trB.Addrs()})
		tapA := bustest.NewTap(trA)
		A := startBus(t, tapA, append(a, bus.WithBackoff(time.Millisecond, 20*time.Millisecond)))
		return bustest.Pair{A: A, B: B,
			Break: func() { bustest.Break(errBroken, tapA, tapB) },
			Heal:  func() { bustest.Heal(tapA, tapB) },
		}
	}
}

func startBus(t *testing.T, tr bus.Transport, opts []bus.Option) *bus.Bus {
	t.Helper()
	b, err := bus.New(append(opts, bus.WithTransport(tr))...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		b.Close(ctx)
	})
	return b
}

func TestConformanceTCP(t *testing.T) {
	bustest.TestTransport(t, conformance(func(*testing.T) string { return "tcp://127.0.0.1:0" }))
}

func TestConformanceUnix(t *testing.T) {
	bustest.TestTransport(t, conformance(func(t *testing.T) string {
		return "unix://" + filepath.Join(t.TempDir(), "b.sock")
	}))
}
